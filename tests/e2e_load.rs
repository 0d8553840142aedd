//! A 10 000-command generator run (the `loadgen` module, mixed mode, two
//! tenants) against the real binary, with `kill -9` of the processor
//! mid-run and a restart on the same STATE_DIR and INSTANCE_ID; then an
//! invariant checker over every command written and every output a
//! `read_committed` consumer sees:
//!
//! * every login command is answered by exactly one session status event
//!   (CREATED, REQUEST_LICENSE_AGREEMENT or a login ERROR) of its tenant
//!   and session id: no loss and no duplicate across the crash;
//! * per account, LOGGED_OUT never starts the sequence or follows
//!   LOGGED_OUT (D3), and the number of LOGGED_IN equals the successful
//!   logins plus the channel hand-overs (STATE_CHANGED state 1);
//! * account ids are unique per tenant, and the key of every output is
//!   `key(account id)`;
//! * names are unique per tenant among live accounts (CREATED minus DELETED).

#[path = "e2e_support/mod.rs"]
mod e2e_support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use account_streams::loadgen::{self, LoadgenArgs, Mode};
use e2e_support::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

const COMMANDS: u64 = 10_000;

struct Input {
    tenant: String,
    value: Value,
}

/// Every record of the input topics, from the beginning to the end.
fn read_inputs(topics: &Topics) -> Vec<Input> {
    let consumer: BaseConsumer = client_config()
        .set("group.id", unique("e2e-load-inputs"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for t in [&topics.ca, &topics.cs] {
        let md = consumer
            .fetch_metadata(Some(t), Duration::from_secs(10))
            .unwrap();
        for p in md.topics()[0].partitions() {
            let (_, hi) = consumer
                .fetch_watermarks(t, p.id(), Duration::from_secs(10))
                .unwrap();
            if hi > 0 {
                ends.insert((t.clone(), p.id()), hi);
                tpl.add_partition_offset(t, p.id(), Offset::Beginning)
                    .unwrap();
            }
        }
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        assert!(Instant::now() < deadline, "reading inputs timed out");
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        let k = (m.topic().to_owned(), m.partition());
        if ends.get(&k).is_some_and(|hi| m.offset() + 1 >= *hi) {
            ends.remove(&k);
        }
        let tenant = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "TENANT_ID"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        let value = serde_json::from_slice(m.payload().unwrap_or(b"null")).unwrap_or(Value::Null);
        out.push(Input { tenant, value });
    }
    out
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_commands_with_kill_9_keep_the_invariants() {
    let started = Instant::now();
    let mut env = Env::start("load", 3, &[]).await;
    let t = env.topics.clone();
    let args = LoadgenArgs {
        bootstrap_servers: bootstrap_servers(),
        command_topic_account: t.ca.clone(),
        command_topic_account_session: t.cs.clone(),
        event_topic_account_status: t.as_.clone(),
        event_topic_account_session_status: t.ss.clone(),
        command_topic_ban: t.ban.clone(),
        dead_letter_topic: Some(t.dlq.clone()),
        application_id: "unused".into(),
        mode: Mode::Mixed,
        rate: 0.0,
        accounts: 200,
        tenants: 2,
        duration: None,
        commands: Some(COMMANDS),
        seed: 7,
        name_prefix: Some(format!("{}-", uuid::Uuid::new_v4().simple())),
        print_events: false,
        answer_timeout: Duration::from_secs(60),
        max_pin_attempts: 5,
        topic_partitions: 3,
        open_loop: 0,
        strict: false,
    };
    let gen = tokio::spawn(loadgen::run(args));

    // kill -9 once a good part of the run has been answered.
    let mut ok = false;
    for _ in 0..36 {
        ok = env
            .collector
            .wait_for(Duration::from_secs(5), |all| all.len() >= 4_000)
            .await;
        eprintln!(
            "{:?}: {} outputs",
            started.elapsed(),
            env.collector.all().len()
        );
        if ok {
            break;
        }
    }
    assert!(ok, "no progress before the kill:\n{}", env.log());
    let before = env.collector.all().len();
    env.processor.take().unwrap().kill9();
    eprintln!("killed after {before} outputs at {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.processor = Some(Processor::start(&env.spec).await);
    eprintln!("restarted at {:?}", started.elapsed());

    let report = gen.await.unwrap().expect("loadgen run");
    eprintln!(
        "loadgen: {} commands, {} events in {:?}",
        report.stats.commands_total(),
        report.stats.events_total(),
        report.elapsed
    );
    assert_eq!(report.stats.commands_total(), COMMANDS);
    // Let the last transactions land; then nothing more may arrive.
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let n = env.collector.all().len();
        if n == last {
            break;
        }
        last = n;
    }
    let inputs = read_inputs(&t);
    let outputs = env.collector.all();
    eprintln!(
        "{} inputs, {} outputs at {:?}",
        inputs.len(),
        outputs.len(),
        started.elapsed()
    );
    assert_eq!(inputs.len() as u64, COMMANDS);
    check_invariants(&inputs, &outputs);
    eprintln!("load test took {:?}", started.elapsed());
}

fn check_invariants(inputs: &[Input], outputs: &[Seen]) {
    let dlq: Vec<&Seen> = outputs.iter().filter(|m| m.topic == Topic::DLQ).collect();
    assert!(
        dlq.is_empty(),
        "the generator writes only valid commands: {:?}",
        dlq.iter()
            .map(|d| d.header("dlq.error"))
            .collect::<Vec<_>>()
    );
    let events: Vec<(String, &Seen, Value)> = outputs
        .iter()
        .map(|m| {
            (
                m.tenant().expect("every output carries TENANT_ID"),
                m,
                serde_json::from_slice(m.value.as_deref().unwrap()).unwrap(),
            )
        })
        .collect();

    // 1. Every login answered by exactly one session status event.
    let mut logins: HashMap<(String, String), i64> = HashMap::new();
    for i in inputs {
        if s(&i.value, "type") == "CREATE" && i.value.get("sessionId").is_some() {
            *logins
                .entry((i.tenant.clone(), s(&i.value, "sessionId")))
                .or_default() += 1;
        }
    }
    let mut answers: HashMap<(String, String), i64> = HashMap::new();
    for (tenant, m, v) in &events {
        if m.topic != Topic::SS {
            continue;
        }
        let ty = s(v, "type");
        let login_answer = ty == "CREATED"
            || ty == "REQUEST_LICENSE_AGREEMENT"
            || (ty == "ERROR"
                && !s(&v["body"], "ipAddress").is_empty()
                && s(v, "sessionId") != NIL);
        if login_answer {
            *answers
                .entry((tenant.clone(), s(v, "sessionId")))
                .or_default() += 1;
        }
    }
    let total_logins: i64 = logins.values().sum();
    assert!(total_logins > 500, "only {total_logins} logins in the run");
    let mut wrong: Vec<_> = logins
        .iter()
        .filter(|(k, n)| answers.get(*k) != Some(n))
        .map(|(k, n)| (k.clone(), *n, answers.get(k).copied().unwrap_or(0)))
        .collect();
    wrong.extend(
        answers
            .iter()
            .filter(|(k, _)| !logins.contains_key(*k))
            .map(|(k, n)| (k.clone(), 0, *n)),
    );
    assert!(
        wrong.is_empty(),
        "{} sessions with logins != answers (session, logins, answers), e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );

    // 2. LOGGED_IN / LOGGED_OUT per account.
    let mut status: BTreeMap<(String, u64), Vec<String>> = BTreeMap::new();
    let mut created: HashMap<(String, u64), usize> = HashMap::new();
    let mut names: HashMap<(String, String), (usize, usize)> = HashMap::new();
    for (tenant, m, v) in &events {
        if m.topic != Topic::AS {
            continue;
        }
        let id = v["account_id"].as_u64().unwrap();
        assert_eq!(
            m.key.as_deref(),
            Some(&key(u32::try_from(id).unwrap())[..]),
            "AS key"
        );
        let st = s(v, "status");
        match st.as_str() {
            "CREATED" => {
                *created.entry((tenant.clone(), id)).or_default() += 1;
                names.entry((tenant.clone(), s(v, "name"))).or_default().0 += 1;
            }
            "DELETED" => {
                names.entry((tenant.clone(), s(v, "name"))).or_default().1 += 1;
            }
            _ => status.entry((tenant.clone(), id)).or_default().push(st),
        }
    }
    let mut ins: HashMap<(String, u64), usize> = HashMap::new();
    for (tenant, m, v) in &events {
        if m.topic != Topic::SS {
            continue;
        }
        let id = v["accountId"].as_u64().unwrap();
        assert_eq!(
            m.key.as_deref(),
            Some(&key(u32::try_from(id).unwrap())[..]),
            "SS key"
        );
        let ty = s(v, "type");
        let hand_over = ty == "STATE_CHANGED" && v["body"]["state"].as_i64() == Some(1);
        if ty == "CREATED" || ty == "REQUEST_LICENSE_AGREEMENT" || hand_over {
            *ins.entry((tenant.clone(), id)).or_default() += 1;
        }
    }
    let mut total_in = 0;
    for (k, seq) in &status {
        let mut logged_in = false;
        for st in seq {
            match st.as_str() {
                "LOGGED_IN" => logged_in = true,
                "LOGGED_OUT" => {
                    assert!(logged_in, "{k:?}: LOGGED_OUT while logged out: {seq:?}");
                    logged_in = false;
                }
                other => panic!("unexpected status {other}"),
            }
        }
        let n_in = seq.iter().filter(|s| *s == "LOGGED_IN").count();
        total_in += n_in;
        assert_eq!(
            Some(&n_in),
            ins.get(k).or(Some(&0)),
            "{k:?}: LOGGED_IN count vs logins + hand-overs: {seq:?}"
        );
    }
    assert!(total_in > 300, "only {total_in} LOGGED_IN");

    // 3. ids unique per tenant; 4. names unique among live accounts.
    for (k, n) in &created {
        assert_eq!(*n, 1, "account id {k:?} created {n} times");
    }
    for (k, (c, d)) in &names {
        assert!(
            *c == *d || *c == *d + 1,
            "name {k:?}: {c} CREATED, {d} DELETED"
        );
    }
    assert!(created.len() >= 100, "only {} accounts", created.len());
    eprintln!(
        "invariants hold: {total_logins} logins answered once each, {total_in} LOGGED_IN, {} accounts, {} events",
        created.len(),
        events.len()
    );
}
