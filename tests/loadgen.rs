//! The load generator against a real broker: what it writes, and how it
//! follows answers. A tiny responder in the test plays the processor for the
//! login/logout cycle (the real one is exercised by the end-to-end tests).

use std::collections::HashMap;
use std::time::Duration;

use account_streams::loadgen::{self, LoadgenArgs, Mode};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use uuid::Uuid;

fn bootstrap() -> String {
    std::env::var("BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn args(suffix: &str, mode: Mode, accounts: usize, commands: u64, timeout_ms: u64) -> LoadgenArgs {
    let t = |token: &str| format!("lgtest-{suffix}-{token}");
    LoadgenArgs {
        bootstrap_servers: bootstrap(),
        command_topic_account: t("CA"),
        command_topic_account_session: t("CS"),
        event_topic_account_status: t("AS"),
        event_topic_account_session_status: t("SS"),
        command_topic_ban: t("BAN"),
        dead_letter_topic: Some(t("DLQ")),
        application_id: "unused".into(),
        mode,
        rate: 0.0,
        accounts,
        tenants: 2,
        duration: None,
        commands: Some(commands),
        seed: 3,
        name_prefix: Some(format!("n{suffix}-")),
        print_events: false,
        answer_timeout: Duration::from_millis(timeout_ms),
        max_pin_attempts: 5,
        topic_partitions: 2,
        open_loop: 0,
        strict: false,
    }
}

fn consumer(topics: &[&str]) -> StreamConsumer {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", format!("lgtest-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(topics).unwrap();
    c
}

fn header_map(m: &impl Message) -> HashMap<String, Vec<u8>> {
    m.headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_processor_logins_are_written_exactly_and_time_out() {
    let suffix = Uuid::new_v4().simple().to_string()[..10].to_owned();
    let a = args(&suffix, Mode::Logins, 4, 8, 1500);
    let cs = a.command_topic_account_session.clone();
    let report = loadgen::run(a).await.unwrap();
    let s = &report.stats;
    assert_eq!(
        s.commands.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
        vec![(("COMMAND_TOPIC_ACCOUNT_SESSION", "CREATE"), 8)]
    );
    assert_eq!(s.timeouts, 8);
    assert_eq!(s.events_total(), 0);
    assert_eq!(s.produce_errors, 0);

    let c = consumer(&[&cs]);
    let mut seen = 0;
    while seen < 8 {
        let m = tokio::time::timeout(Duration::from_secs(20), c.recv())
            .await
            .expect("the 8 logins are on the topic")
            .unwrap();
        seen += 1;
        assert_eq!(m.key(), Some(&[0u8; 8][..]), "login CREATE is keyed key(0)");
        let h = header_map(&m);
        assert_eq!(h["TENANT_ID"].len(), 36);
        assert!(Uuid::parse_str(std::str::from_utf8(&h["TENANT_ID"]).unwrap()).is_ok());
        assert_eq!(h["MAJOR_VERSION"].len(), 2);
        assert_eq!(h["MINOR_VERSION"], vec![0, 1]);
        assert!(h["REGION"] == b"GMS" || h["REGION"] == b"JMS");
        let tp = std::str::from_utf8(&h["traceparent"]).unwrap().to_owned();
        assert_eq!(tp.len(), 55, "{tp}");
        assert!(tp.starts_with("00-") && tp.ends_with("-01"), "{tp}");
        let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let text = std::str::from_utf8(m.payload().unwrap()).unwrap();
        assert!(
            text.starts_with(r#"{"sessionId":""#)
                && text.contains(
                    r#"","accountId":0,"author":"LOGIN","type":"CREATE","body":{"accountName":"n"#
                ),
            "{text}"
        );
        assert!(v["body"]["accountName"]
            .as_str()
            .unwrap()
            .starts_with(&format!("n{suffix}-")));
        assert!(v["body"]["password"].as_str().unwrap().starts_with("pw-"));
    }
}

/// Plays the processor for logins and logouts: session CREATE -> SS CREATED
/// (account ids by name), LOGOUT with an account id -> AS LOGGED_OUT, echoing
/// the tenant headers and the trace id like the processor.
async fn responder(a: LoadgenArgs) {
    let c = consumer(&[&a.command_topic_account_session]);
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    // name -> (id, password registered by the first login, as auto-register does)
    let mut accounts: HashMap<String, (u32, String)> = HashMap::new();
    loop {
        let Ok(m) = c.recv().await else { continue };
        let h = header_map(&m);
        let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let (topic, key, value) = match v["type"].as_str().unwrap() {
            "CREATE" => {
                let name = v["body"]["accountName"].as_str().unwrap().to_owned();
                let password = v["body"]["password"].as_str().unwrap().to_owned();
                let next = accounts.len() as u32 + 1;
                let (id, registered) = accounts
                    .entry(name.clone())
                    .or_insert((next, password.clone()))
                    .clone();
                let sid = v["sessionId"].as_str().unwrap();
                let value = if registered == password {
                    format!(
                        r#"{{"sessionId":"{sid}","accountId":{id},"accountName":"{name}","type":"CREATED","body":{{"ipAddress":"x","hwid":"y"}}}}"#
                    )
                } else {
                    format!(
                        r#"{{"sessionId":"{sid}","accountId":{id},"accountName":"{name}","type":"ERROR","body":{{"code":"INCORRECT_PASSWORD","reason":0,"until":0,"ipAddress":"x","hwid":"y"}}}}"#
                    )
                };
                (&a.event_topic_account_session_status, id, value)
            }
            "LOGOUT" if v["accountId"].as_u64() != Some(0) => {
                let id = v["accountId"].as_u64().unwrap() as u32;
                (
                    &a.event_topic_account_status,
                    id,
                    format!(r#"{{"account_id":{id},"name":"n","status":"LOGGED_OUT"}}"#),
                )
            }
            _ => continue,
        };
        let trace = std::str::from_utf8(&h["traceparent"]).unwrap();
        let echoed = format!("00-{}-1111111111111111-01", &trace[3..35]);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "traceparent",
                value: Some(echoed.as_bytes()),
            })
            .insert(Header {
                key: "TENANT_ID",
                value: Some(&h["TENANT_ID"][..]),
            });
        let k = key.to_le_bytes();
        p.send(
            FutureRecord::to(topic)
                .key(&[k[0], k[1], k[2], k[3], 0, 0, 0, 0][..])
                .payload(&value)
                .headers(headers),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_answers_and_measures_latency() {
    let suffix = Uuid::new_v4().simple().to_string()[..10].to_owned();
    let a = args(&suffix, Mode::Logins, 3, 30, 20_000);
    // Create the topics before the responder subscribes.
    let mut probe = a.clone();
    probe.commands = Some(0);
    loadgen::run(probe).await.unwrap();
    let responder = tokio::spawn(responder(a.clone()));
    let report = loadgen::run(a).await.unwrap();
    responder.abort();
    let s = &report.stats;
    assert_eq!(s.commands_total(), 30);
    assert_eq!(
        (s.timeouts, s.unexpected, s.produce_errors),
        (0, 0, 0),
        "{}",
        s.render(report.elapsed)
    );
    // Every login was answered: CREATED, or INCORRECT_PASSWORD for the
    // generator's deliberate wrong passwords (once an account exists).
    use account_streams::loadgen::events::OutputTopic;
    let created = s.events[&(OutputTopic::SessionStatus, "CREATED".to_owned())];
    let wrong = s.errors.get("INCORRECT_PASSWORD").copied().unwrap_or(0);
    assert_eq!(
        created + wrong,
        s.commands[&("COMMAND_TOPIC_ACCOUNT_SESSION", "CREATE")]
    );
    assert_eq!(s.logins_answered, created + wrong);
    assert!(created >= 3, "{created}");
    // Each successful login was logged out with its bound account id.
    let logged_out = s.events[&(OutputTopic::AccountStatus, "LOGGED_OUT".to_owned())];
    assert!(
        logged_out + 3 >= created && logged_out <= created,
        "{logged_out} vs {created}"
    );
    let samples: usize = s.latency_us.values().map(Vec::len).sum();
    assert_eq!(samples as u64, s.events_total());
    assert_eq!(s.traced, s.events_total());
}
