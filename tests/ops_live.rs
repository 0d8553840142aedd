//! The processor's `/metrics`, `/healthz` and `/readyz`, live: the real
//! binary on the local broker (`BOOTSTRAP_SERVERS`), driven with commands
//! whose outcomes SCENARIOS.md fixes, so every counter has an exact
//! expected value; then a restart from an empty state directory (restore
//! from the changelogs) for the readiness flip; and the Grafana dashboard
//! against a live scrape.

mod ops_common;
mod ops_live_harness;

use std::collections::BTreeMap;
use std::time::Duration;

use ops_common::{dashboard_families, exposition_families, read_repo_file};
use ops_live_harness::*;

const STORES: [&str; 4] = ["accounts", "names", "sessions", "sequences"];

fn login(sid: &str, name: &str, pw: &str) -> String {
    format!(
        r#"{{"sessionId":"{sid}","accountId":0,"author":"LOGIN","type":"CREATE","body":{{"accountName":"{name}","password":"{pw}","ipAddress":"10.0.0.5","hwid":"a1b2c3"}}}}"#
    )
}

fn logout(sid: &str, account_id: u64) -> String {
    format!(
        r#"{{"sessionId":"{sid}","accountId":{account_id},"author":"LOGIN","type":"LOGOUT","body":{{}}}}"#
    )
}

fn create(name: &str, pw: &str) -> String {
    format!(r#"{{"type":"CREATE","body":{{"name":"{name}","password":"{pw}"}}}}"#)
}

const S1: &str = "a0000000-0000-4000-8000-000000000001";
const S2: &str = "a0000000-0000-4000-8000-000000000002";
const S3: &str = "a0000000-0000-4000-8000-000000000003";

/// `(topic, status or type or error code)` of each output, counted.
fn outcome_counts(outputs: &[Output]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for o in outputs {
        let code = if let Some(s) = o.value["status"].as_str() {
            s.to_string()
        } else if o.value["type"] == "ERROR" {
            o.value["body"]["code"].as_str().unwrap_or("?").to_string()
        } else {
            o.value["type"].as_str().unwrap_or("?").to_string()
        };
        *out.entry((o.topic.clone(), code)).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_the_expected_amounts_and_readyz_flips_after_restore() {
    let run = Run::create("ops-live").await;
    let mut p = run.start(&[]);

    // Not ready until the first assignment's tasks are restored.
    let mut first = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while first.is_none() {
        assert!(std::time::Instant::now() < deadline, "HTTP never answered");
        p.assert_running();
        first = p.get("/readyz").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.get("/healthz").await, Some((200, "ok".to_string())));
    p.wait_ready(Duration::from_secs(60)).await;
    let s = p.scrape().await;
    assert_eq!(
        s.value("account_streams_tasks_assigned", &[]),
        PARTITIONS as f64
    );
    // A fresh application: nothing to restore, every store exported at 0.
    for store in STORES {
        assert_eq!(
            s.value("account_streams_restore_records_total", &[("store", store)]),
            0.0
        );
        assert_eq!(
            s.value(
                "account_streams_restore_remaining_records",
                &[("store", store)]
            ),
            0.0
        );
    }

    let producer = producer();
    let t1 = t1_headers();
    let mut outputs = Outputs::new(&run.output_topics());

    // Phase 1, account commands: two creates (bcrypt hash each), three
    // refused without hashing (duplicate, empty name, password > 72 bytes),
    // three dead letters (bad JSON, unknown type, no tenant headers).
    let ca = &run.command_account;
    send(&producer, ca, b"k", &create("alice", "secret"), &t1).await;
    send(&producer, ca, b"k", &create("bob", "hunter2"), &t1).await;
    outputs.wait_for(2, Duration::from_secs(30));
    send(&producer, ca, b"k", &create("alice", "other"), &t1).await;
    send(&producer, ca, b"k", &create("", "x"), &t1).await;
    send(&producer, ca, b"k", &create("long", &"p".repeat(73)), &t1).await;
    send(&producer, ca, b"k", "{nope", &t1).await;
    send(&producer, ca, b"k", r#"{"type":"RENAME","body":{}}"#, &t1).await;
    send(&producer, ca, b"k", &create("carl", "x"), &[]).await;
    // Dead letters are outputs too (on the DLQ topic).
    outputs.wait_for(5, Duration::from_secs(30));
    let alice_id = outputs
        .got
        .iter()
        .find(|o| o.value["name"] == "alice")
        .and_then(|o| o.value["account_id"].as_u64())
        .expect("alice CREATED");

    // Phase 2, logins (ban service down: each check fails open, S39):
    // alice right password (S28: tos false -> license agreement), bob wrong
    // password (S33), carol unknown -> auto-registered (S30).
    let cs = &run.command_session;
    send(&producer, cs, b"k", &login(S1, "alice", "secret"), &t1).await;
    send(&producer, cs, b"k", &login(S2, "bob", "wrong"), &t1).await;
    send(&producer, cs, b"k", &login(S3, "carol", "pw1"), &t1).await;
    outputs.wait_for(11, Duration::from_secs(30));
    // Phase 3: alice logs out.
    send(&producer, cs, b"k", &logout(S1, alice_id), &t1).await;
    outputs.wait_for(12, Duration::from_secs(30));
    let got = outputs.drain(Duration::from_millis(500)).to_vec();

    let (a, ss, dlq) = (&run.event_account, &run.event_session, &run.dead_letters);
    let expected_outputs: BTreeMap<(String, String), usize> = [
        ((a, "CREATED"), 3),
        ((a, "LOGGED_IN"), 2),
        ((a, "LOGGED_OUT"), 1),
        ((ss, "REQUEST_LICENSE_AGREEMENT"), 2),
        ((ss, "INCORRECT_PASSWORD"), 1),
    ]
    .into_iter()
    .map(|((t, c), n)| ((t.to_string(), c.to_string()), n))
    .collect();
    let mut counted = outcome_counts(&got);
    let dead: Vec<&str> = got
        .iter()
        .filter(|o| &o.topic == dlq)
        .filter_map(|o| o.header("dlq.reason"))
        .collect();
    counted.retain(|(t, _), _| t != dlq);
    assert_eq!(counted, expected_outputs, "outputs: {got:#?}");
    let mut dead_sorted = dead.clone();
    dead_sorted.sort_unstable();
    assert_eq!(dead_sorted, ["bad_json", "missing_tenant", "unknown_type"]);

    // The counters, once the last commit and a punctuation (logged-in
    // recount, lag gauges) have happened.
    let input_partitions = |topic: &str| -> Vec<(String, String)> {
        (0..PARTITIONS)
            .map(|p| (topic.to_string(), p.to_string()))
            .collect()
    };
    let s = p
        .scrape_until(Duration::from_secs(20), "settled", |s| {
            s.get("account_streams_processing_latency_seconds_count", &[]) == Some(9.0)
                && s.get("account_streams_logged_in_accounts", &[]) == Some(1.0)
                && s.all("account_streams_store_size_bytes").len() == STORES.len()
                && input_partitions(ca)
                    .iter()
                    .chain(&input_partitions(cs))
                    .all(|(t, p)| {
                        s.get(
                            "account_streams_consumer_lag",
                            &[("topic", t), ("partition", p)],
                        )
                        .is_some_and(|v| v == 0.0)
                    })
        })
        .await;

    let counter = |name: &str, labels: &[(&str, &str)]| s.value(name, labels);
    let consumed = "account_streams_commands_consumed_total";
    for (topic, ty, n) in [
        ("COMMAND_TOPIC_ACCOUNT", "CREATE", 5.0),
        ("COMMAND_TOPIC_ACCOUNT", "DELETE", 0.0),
        ("COMMAND_TOPIC_ACCOUNT", "PIN_ATTEMPT", 0.0),
        ("COMMAND_TOPIC_ACCOUNT", "PIC_ATTEMPT", 0.0),
        ("COMMAND_TOPIC_ACCOUNT_SESSION", "CREATE", 3.0),
        ("COMMAND_TOPIC_ACCOUNT_SESSION", "PROGRESS_STATE", 0.0),
        ("COMMAND_TOPIC_ACCOUNT_SESSION", "LOGOUT", 1.0),
    ] {
        assert_eq!(
            counter(consumed, &[("topic", topic), ("type", ty)]),
            n,
            "{topic} {ty}"
        );
    }
    assert_eq!(s.all(consumed).len(), 7, "no other command label sets");

    let outcomes = "account_streams_outcomes_total";
    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (kind, code, n) in [
        ("account_status", "CREATED", 3.0),
        ("account_status", "LOGGED_IN", 2.0),
        ("account_status", "LOGGED_OUT", 1.0),
        ("account_status", "DELETED", 0.0),
        ("session_status", "REQUEST_LICENSE_AGREEMENT", 2.0),
        ("session_status", "INCORRECT_PASSWORD", 1.0),
        ("rejected", "duplicate_name", 1.0),
        ("rejected", "empty_name", 1.0),
        ("rejected", "password_too_long", 1.0),
        ("ban", "CREATE", 0.0),
    ] {
        expected.insert((kind.into(), code.into()), n);
    }
    for (labels, v) in s.all(outcomes) {
        let key = (labels["kind"].clone(), labels["code"].clone());
        assert_eq!(
            v,
            expected.get(&key).copied().unwrap_or(0.0),
            "{outcomes}{labels:?}"
        );
    }
    assert_eq!(
        counter(outcomes, &[("kind", "session_status"), ("code", "CREATED")]),
        0.0
    );

    let dead_letters = "account_streams_dead_letters_total";
    for (reason, n) in [
        ("bad_json", 1.0),
        ("unknown_type", 1.0),
        ("missing_tenant", 1.0),
        ("bad_header", 0.0),
        ("too_large", 0.0),
    ] {
        assert_eq!(counter(dead_letters, &[("reason", reason)]), n, "{reason}");
    }

    // Input records are counted when routed (8 account records, 3 of them
    // dead-lettered; 4 session records), the 5 + 4 decodable ones again when
    // their task processed them from the repartition topic.
    let processed = "account_streams_records_processed_total";
    assert_eq!(counter(processed, &[("topic", ca)]), 8.0);
    assert_eq!(counter(processed, &[("topic", cs)]), 4.0);
    assert_eq!(
        counter(processed, &[("topic", &run.repartition_topic())]),
        9.0
    );

    // Slow work: 3 hashes (alice, bob, carol's auto-registration), 2
    // verifications (alice, bob), 3 ban checks, all failed open.
    let slow = "account_streams_slow_work_seconds_count";
    assert_eq!(counter(slow, &[("stage", "bcrypt_hash")]), 3.0);
    assert_eq!(counter(slow, &[("stage", "bcrypt_verify")]), 2.0);
    assert_eq!(counter(slow, &[("stage", "ban_check")]), 3.0);
    assert_eq!(
        counter("account_streams_ban_check_failures_total", &[]),
        3.0
    );
    assert_eq!(counter("account_streams_slow_inflight", &[]), 0.0);
    // carol is still logged in; alice logged out, bob never logged in.
    assert_eq!(counter("account_streams_logged_in_accounts", &[]), 1.0);

    // Transactions: every commit timed, none aborted; every routed record's
    // end-to-end latency observed once.
    let committed = counter("account_streams_transactions_committed_total", &[]);
    assert!(committed >= 1.0);
    assert_eq!(
        counter("account_streams_commit_latency_seconds_count", &[]),
        committed
    );
    assert_eq!(
        counter("account_streams_transactions_aborted_total", &[]),
        0.0
    );
    assert_eq!(
        counter("account_streams_processing_latency_seconds_count", &[]),
        9.0
    );
    for store in STORES {
        assert!(s
            .get("account_streams_store_size_bytes", &[("store", store)])
            .is_some());
        assert!(s
            .get("account_streams_store_estimated_keys", &[("store", store)])
            .is_some());
    }
    assert!(
        counter(
            "account_streams_store_estimated_keys",
            &[("store", "accounts")]
        ) >= 1.0
    );

    // ---- restart from an empty state directory: restore, then ready ----
    p.stop();
    std::fs::remove_dir_all(run.state_dir()).expect("state dir removed");
    let to_restore: BTreeMap<&str, f64> = STORES
        .iter()
        .map(|s| (*s, count_committed_records(&run.changelog(s)) as f64))
        .collect();
    assert!(to_restore["accounts"] >= 3.0, "{to_restore:?}");

    let mut p = run.start(&[]);
    // Poll /readyz from the moment the port answers. What this proves: the
    // instance answers "not ready" (503) before it is ready, and the first
    // "ready" (200) comes only after every store restored exactly the
    // committed changelog records with nothing remaining. It does not prove
    // that a 503 was seen *during* the restore itself (a few dozen records
    // restore in milliseconds; most 503s are seen while the group forms).
    let mut statuses = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let at_ready = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "not ready: {statuses:?}\n{}",
            p.log()
        );
        p.assert_running();
        match p.get("/readyz").await {
            Some((200, _)) => break p.scrape().await,
            Some((code, _)) => statuses.push(code),
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!statuses.is_empty(), "never saw not-ready before ready");
    assert!(statuses.iter().all(|c| *c == 503), "{statuses:?}");
    for store in STORES {
        assert_eq!(
            at_ready.value("account_streams_restore_records_total", &[("store", store)]),
            to_restore[store],
            "{store}"
        );
        assert_eq!(
            at_ready.value(
                "account_streams_restore_remaining_records",
                &[("store", store)]
            ),
            0.0,
            "{store}"
        );
    }
    assert_eq!(
        at_ready.value("account_streams_tasks_assigned", &[]),
        PARTITIONS as f64
    );
    // A new process: its command counters start again at 0, while the
    // logged-in gauge comes from the restored sessions.
    assert_eq!(
        at_ready.value(
            consumed,
            &[("topic", "COMMAND_TOPIC_ACCOUNT"), ("type", "CREATE")]
        ),
        0.0
    );
    p.scrape_until(Duration::from_secs(10), "logged-in after restore", |s| {
        s.get("account_streams_logged_in_accounts", &[]) == Some(1.0)
    })
    .await;
    assert_eq!(p.get("/readyz").await, Some((200, "ready".to_string())));
    p.stop();
}

/// Every metric a dashboard panel (or variable) queries exists in a live
/// scrape, with the same extraction as tests/ops_files.rs. One account
/// command is enough traffic: the labelled families whose label values are
/// known in advance are exported at 0 from startup; the topic-labelled
/// ones (records processed, consumer lag) need one record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_metric_is_in_a_live_scrape() {
    let run = Run::create("ops-live-dash").await;
    let mut p = run.start(&[]);
    p.wait_ready(Duration::from_secs(60)).await;
    let producer = producer();
    send(
        &producer,
        &run.command_account,
        b"k",
        &create("dana", "pw"),
        &t1_headers(),
    )
    .await;
    let ca = run.command_account.clone();
    let s = p
        .scrape_until(Duration::from_secs(30), "one record processed", |s| {
            s.get("account_streams_records_processed_total", &[("topic", &ca)]) == Some(1.0)
                && !s.all("account_streams_consumer_lag").is_empty()
                && !s.all("account_streams_store_size_bytes").is_empty()
                && !s.all("account_streams_store_estimated_keys").is_empty()
                && s.get("account_streams_processing_latency_seconds_count", &[]) == Some(1.0)
        })
        .await;
    let scraped = exposition_families(&s.text);
    let dashboard: serde_json::Value =
        serde_json::from_str(&read_repo_file("grafana/dashboards/account-streams.json"))
            .expect("dashboard JSON");
    let used = dashboard_families(&dashboard, &scraped).unwrap_or_else(|problems| {
        panic!(
            "dashboard queries metrics missing from /metrics:\n{}\nscrape:\n{}",
            problems.join("\n"),
            s.text
        )
    });
    // Not vacuous: the dashboard uses every exported family, and every
    // family is exported with at least one sample.
    let exported: std::collections::BTreeSet<String> = scraped.keys().cloned().collect();
    assert_eq!(used, exported);
    for family in &exported {
        assert!(
            s.samples
                .iter()
                .any(|(n, _, _)| n.starts_with(family.as_str())),
            "{family} has no sample"
        );
    }
    p.stop();
}
