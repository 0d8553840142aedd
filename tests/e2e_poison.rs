//! Poison pills on the same input partition as good commands (W5, W7, D16,
//! S44/S97/S77): each lands on the dead-letter topic with its reason, the
//! `dlq.*` headers and its secrets redacted, and the good commands around
//! them get exactly their normal outputs, in order, with nothing else.

#[path = "e2e_support/mod.rs"]
mod e2e_support;

use std::time::Duration;

use e2e_support::*;

const IP: &str = "10.0.0.5";
const HWID: &str = "a1b2c3";

fn login(sid: &str, name: &str, pw: &str) -> String {
    format!(
        r#"{{"sessionId":"{sid}","accountId":0,"author":"LOGIN","type":"CREATE","body":{{"accountName":"{name}","password":"{pw}","ipAddress":"{IP}","hwid":"{HWID}"}}}}"#
    )
}

struct Pill {
    what: &'static str,
    topic: Topic,
    headers: Vec<(String, Vec<u8>)>,
    value: Option<Vec<u8>>,
    reason: &'static str,
    /// Bytes that must not occur in the dead letter (the password).
    secret: Option<&'static str>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_pills_go_to_the_dead_letter_topic_and_good_commands_flow() {
    let env = Env::start("poison", 1, &[]).await;
    let t = Tenant::fresh("GMS", 83);
    let th = t.headers();
    let send = |topic: Topic, headers: Vec<(String, Vec<u8>)>, value: Option<Vec<u8>>| {
        let sender = env.sender.clone();
        async move {
            sender
                .send(topic, Some(&key(0)), &headers, value.as_deref())
                .await
        }
    };

    // Good 1: auto-registration at login.
    send(
        Topic::CS,
        th.clone(),
        Some(login(S1, "good1", "goodpass1").into_bytes()),
    )
    .await;
    let ok = env
        .collector
        .wait_for(Duration::from_secs(30), |all| {
            all.iter().any(|m| m.topic == Topic::SS)
        })
        .await;
    assert!(ok, "first good login answered:\n{}", env.log());
    let created = env
        .collector
        .all()
        .into_iter()
        .find(|m| m.topic == Topic::AS)
        .unwrap();
    let n = as_account_id(&created.value_str());

    let big_hwid = "x".repeat(2 * 1024 * 1024);
    let t32 = t.headers().into_iter().skip(1).fold(
        vec![(
            "TENANT_ID".to_owned(),
            b"0f7a6c1e8d2b4c3a9e5f1a2b3c4d5e6f".to_vec(),
        )],
        |mut v, h| {
            v.push(h);
            v
        },
    );
    let with_tenant_id = |id: &[u8]| {
        let mut h = t.headers();
        h[0].1 = id.to_vec();
        h
    };
    let pills = vec![
        Pill {
            what: "empty value",
            topic: Topic::CS,
            headers: th.clone(),
            value: Some(Vec::new()),
            reason: "bad_json",
            secret: None,
        },
        Pill {
            what: "not json",
            topic: Topic::CS,
            headers: th.clone(),
            value: Some(b"not json".to_vec()),
            reason: "bad_json",
            secret: None,
        },
        Pill {
            what: "2 MB value",
            topic: Topic::CS,
            headers: th.clone(),
            value: Some(
                format!(
                    r#"{{"sessionId":"{S2}","accountId":0,"author":"LOGIN","type":"CREATE","body":{{"accountName":"big","password":"bigpass77","ipAddress":"{IP}","hwid":"{big_hwid}"}}}}"#
                )
                .into_bytes(),
            ),
            reason: "too_large",
            secret: Some("bigpass77"),
        },
        Pill {
            what: "invalid sessionId UUID",
            topic: Topic::CS,
            headers: th.clone(),
            value: Some(login("not-a-uuid", "good1", "uuidpass3").into_bytes()),
            reason: "bad_json",
            secret: Some("uuidpass3"),
        },
        Pill {
            what: "no headers at all (S97)",
            topic: Topic::CS,
            headers: Vec::new(),
            value: Some(login(S1, "zed", "zedpass1").into_bytes()),
            reason: "missing_tenant",
            secret: Some("zedpass1"),
        },
        Pill {
            what: "region/versions but no TENANT_ID",
            topic: Topic::CS,
            headers: th.clone().into_iter().skip(1).collect(),
            value: Some(login(S1, "zed", "zedpass1").into_bytes()),
            reason: "missing_tenant",
            secret: Some("zedpass1"),
        },
        Pill {
            what: "TENANT_ID of 32 hex digits",
            topic: Topic::CS,
            headers: t32,
            value: Some(login(S1, "zed", "zedpass1").into_bytes()),
            reason: "missing_tenant",
            secret: Some("zedpass1"),
        },
        Pill {
            what: "TENANT_ID of 36 bytes that are no UUID",
            topic: Topic::CS,
            headers: with_tenant_id(b"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"),
            value: Some(login(S1, "zed", "zedpass1").into_bytes()),
            reason: "missing_tenant",
            secret: Some("zedpass1"),
        },
        Pill {
            what: "nil TENANT_ID",
            topic: Topic::CS,
            headers: with_tenant_id(NIL.as_bytes()),
            value: Some(login(S1, "zed", "zedpass1").into_bytes()),
            reason: "missing_tenant",
            secret: Some("zedpass1"),
        },
        Pill {
            what: "CA CREATE without tenant",
            topic: Topic::CA,
            headers: Vec::new(),
            value: Some(br#"{"type":"CREATE","body":{"name":"zed","password":"zedpass1"}}"#.to_vec()),
            reason: "missing_tenant",
            secret: Some("zedpass1"),
        },
        Pill {
            what: "CA PIN_ATTEMPT without tenant",
            topic: Topic::CA,
            headers: Vec::new(),
            value: Some(
                br#"{"type":"PIN_ATTEMPT","body":{"accountId":7,"success":false,"ipAddress":"10.0.0.5","hwid":"a1b2c3"}}"#
                    .to_vec(),
            ),
            reason: "missing_tenant",
            secret: None,
        },
    ];

    // Pills interleaved with good commands of the same account, all on
    // partition 0 of the input topics.
    let goods: Vec<(Topic, String)> = vec![
        (
            Topic::CS,
            format!(
                r#"{{"sessionId":"{S1}","accountId":{n},"author":"LOGIN","type":"PROGRESS_STATE","body":{{"state":2,"params":null}}}}"#
            ),
        ),
        (
            Topic::CS,
            format!(
                r#"{{"sessionId":"{S2}","accountId":{n},"author":"CHANNEL","type":"PROGRESS_STATE","body":{{"state":1,"params":{{"characterId":1001}}}}}}"#
            ),
        ),
        (
            Topic::CS,
            format!(
                r#"{{"sessionId":"{S2}","accountId":{n},"author":"CHANNEL","type":"LOGOUT","body":{{}}}}"#
            ),
        ),
        (
            Topic::CA,
            r#"{"type":"CREATE","body":{"name":"good2","password":"goodpass2"}}"#.to_owned(),
        ),
    ];
    let mut offsets = Vec::new();
    let mut good_iter = goods.iter();
    for (i, p) in pills.iter().enumerate() {
        let (part, off) = send(p.topic, p.headers.clone(), p.value.clone()).await;
        assert_eq!(part, 0);
        offsets.push((p.topic, off));
        if i % 3 == 2 {
            if let Some((topic, v)) = good_iter.next() {
                send(*topic, th.clone(), Some(v.clone().into_bytes())).await;
            }
        }
    }
    for (topic, v) in good_iter {
        send(*topic, th.clone(), Some(v.clone().into_bytes())).await;
    }

    // The good commands' outputs, exactly.
    let as_ = |status: &str, id: u32, name: &str| {
        format!(r#"{{"account_id":{id},"name":"{name}","status":"{status}"}}"#)
    };
    let want_as_n = vec![
        as_("CREATED", n, "good1"),
        as_("LOGGED_IN", n, "good1"),
        as_("LOGGED_IN", n, "good1"),
        as_("LOGGED_OUT", n, "good1"),
    ];
    let want_ss_n = vec![
        format!(
            r#"{{"sessionId":"{S1}","accountId":{n},"accountName":"good1","type":"REQUEST_LICENSE_AGREEMENT","body":null}}"#
        ),
        format!(
            r#"{{"sessionId":"{S1}","accountId":{n},"accountName":"good1","type":"STATE_CHANGED","body":{{"state":2,"params":null}}}}"#
        ),
        format!(
            r#"{{"sessionId":"{S2}","accountId":{n},"accountName":"good1","type":"STATE_CHANGED","body":{{"state":1,"params":{{"characterId":1001}}}}}}"#
        ),
    ];
    let expected_outputs = want_as_n.len() + want_ss_n.len() + 1;
    let ok = env
        .collector
        .wait_for(Duration::from_secs(60), |all| {
            all.iter().filter(|m| m.topic != Topic::DLQ).count() >= expected_outputs
                && all.iter().filter(|m| m.topic == Topic::DLQ).count() >= pills.len()
        })
        .await;
    // Nothing else arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = env.collector.all();
    let outputs: Vec<&Seen> = all.iter().filter(|m| m.topic != Topic::DLQ).collect();
    let dlq: Vec<&Seen> = all.iter().filter(|m| m.topic == Topic::DLQ).collect();
    assert!(
        ok,
        "outputs {} of {expected_outputs}, dead letters {} of {}:\n{:#?}\n{}",
        outputs.len(),
        dlq.len(),
        pills.len(),
        outputs.iter().map(|m| m.value_str()).collect::<Vec<_>>(),
        env.log()
    );
    let of = |topic: Topic, k: &[u8]| -> Vec<String> {
        outputs
            .iter()
            .filter(|m| m.topic == topic && m.key.as_deref() == Some(k))
            .map(|m| m.value_str())
            .collect()
    };
    assert_eq!(of(Topic::AS, &key(n)), want_as_n);
    assert_eq!(of(Topic::SS, &key(n)), want_ss_n);
    let good2: Vec<&&Seen> = outputs
        .iter()
        .filter(|m| m.value_str().contains(r#""name":"good2""#))
        .collect();
    assert_eq!(good2.len(), 1);
    let g2 = as_account_id(&good2[0].value_str());
    assert_eq!(good2[0].value_str(), as_("CREATED", g2, "good2"));
    assert_eq!(good2[0].key.as_deref(), Some(&key(g2)[..]));
    assert_eq!(outputs.len(), expected_outputs, "nothing else produced");
    for m in &outputs {
        assert_eq!(
            m.tenant().as_deref(),
            Some(t.id.as_str()),
            "{}",
            m.value_str()
        );
    }

    // One dead letter per pill, matched by input offset.
    assert_eq!(dlq.len(), pills.len());
    for (p, (topic, off)) in pills.iter().zip(&offsets) {
        let name = env.topics.name(*topic);
        let d = dlq
            .iter()
            .find(|d| {
                d.header("dlq.topic") == Some(name.as_bytes())
                    && d.header("dlq.offset") == Some(off.to_string().as_bytes())
            })
            .unwrap_or_else(|| panic!("no dead letter for {} at {name}@{off}", p.what));
        let reason = String::from_utf8_lossy(d.header("dlq.reason").unwrap());
        assert_eq!(reason, p.reason, "{}", p.what);
        assert_eq!(d.header("dlq.partition"), Some(&b"0"[..]), "{}", p.what);
        assert!(d.header("dlq.error").is_some_and(|e| !e.is_empty()));
        assert_eq!(
            d.key.as_deref(),
            Some(&key(0)[..]),
            "{}: original key",
            p.what
        );
        for (k, v) in &p.headers {
            assert_eq!(d.header(k), Some(&v[..]), "{}: original header {k}", p.what);
        }
        if let Some(secret) = p.secret {
            let hay = |b: &[u8]| b.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(
                !hay(d.value.as_deref().unwrap_or_default()),
                "{}: password in dead letter value",
                p.what
            );
            for (k, v) in &d.headers {
                assert!(
                    !hay(v.as_deref().unwrap_or_default()),
                    "{}: password in header {k}",
                    p.what
                );
            }
        }
        if p.reason == "too_large" {
            // Copying 2 MB would exceed the message size limits and stall
            // the partition; the dlq.* headers locate the original.
            assert_eq!(d.value, None, "too_large dead letter carries no value");
        }
        if p.what == "invalid sessionId UUID" || p.reason == "missing_tenant" {
            // Redaction keeps the rest of the JSON as it was.
            let v = d.value_str();
            assert!(
                v.contains(r#""password":"***""#) || v.contains("PIN_ATTEMPT"),
                "{v}"
            );
        }
    }
    // Secrets never reach the processor's log either (D16).
    let log = env.log();
    for secret in [
        "zedpass1",
        "uuidpass3",
        "bigpass77",
        "goodpass1",
        "goodpass2",
    ] {
        assert!(!log.contains(secret), "{secret} in the processor log");
    }
}
