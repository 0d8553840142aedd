//! Harness of the live ops tests (`tests/ops_live.rs`, `tests/trace_propagation.rs`):
//! the real `account-streams` binary on the local broker, with its own
//! topics, group, application id and state directory; commands in, outputs
//! and `/metrics` out.
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

#[path = "../support/mod.rs"]
mod support;
pub use support::{bootstrap_servers, client_config, unique_name};

/// Creates the topics in one request, retrying on timeouts: on the shared
/// 2-core machine the broker sometimes answers slowly under load.
pub async fn create_topics(names: &[String]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::error::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> = client_config().create().expect("admin");
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    let mut pending: Vec<String> = names.to_vec();
    for attempt in 1..=4 {
        let topics: Vec<NewTopic<'_>> = pending
            .iter()
            .map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1)))
            .collect();
        let results = match admin.create_topics(&topics, &options).await {
            Ok(r) => r,
            Err(e) if attempt < 4 => {
                eprintln!("creating topics (attempt {attempt}): {e}; retrying");
                continue;
            }
            Err(e) => panic!("creating topics: {e}"),
        };
        let mut retry = Vec::new();
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((
                    t,
                    RDKafkaErrorCode::RequestTimedOut | RDKafkaErrorCode::OperationTimedOut,
                )) if attempt < 4 => retry.push(t),
                Err((t, code)) => panic!("creating topic {t}: {code}"),
            }
        }
        if retry.is_empty() {
            return;
        }
        pending = retry;
    }
}

/// Partitions of every topic of a test run (inputs, outputs, internal).
pub const PARTITIONS: i32 = 3;

pub const T1_ID: &str = "0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f";

/// T1 of SCENARIOS.md: GMS 83.1.
pub fn t1_headers() -> Vec<(String, Vec<u8>)> {
    vec![
        ("TENANT_ID".into(), T1_ID.as_bytes().to_vec()),
        ("REGION".into(), b"GMS".to_vec()),
        ("MAJOR_VERSION".into(), vec![0, 83]),
        ("MINOR_VERSION".into(), vec![0, 1]),
    ]
}

/// One test run's names: topics, group, application id, state directory.
pub struct Run {
    pub id: String,
    pub command_account: String,
    pub command_session: String,
    pub event_account: String,
    pub event_session: String,
    pub command_ban: String,
    pub dead_letters: String,
    pub dir: tempfile::TempDir,
}

impl Run {
    /// Unique names; creates the input and output topics (as the Atlas
    /// services' broker would) so the processor and the test's consumers see
    /// them from the start.
    pub async fn create(prefix: &str) -> Run {
        let id = unique_name(prefix);
        let run = Run {
            command_account: format!("{id}-CA"),
            command_session: format!("{id}-CS"),
            event_account: format!("{id}-AS"),
            event_session: format!("{id}-SS"),
            command_ban: format!("{id}-BAN"),
            dead_letters: format!("{id}-DLQ"),
            dir: tempfile::tempdir().expect("temp dir"),
            id,
        };
        create_topics(&run.all_topics()).await;
        run
    }

    fn all_topics(&self) -> Vec<String> {
        vec![
            self.command_account.clone(),
            self.command_session.clone(),
            self.event_account.clone(),
            self.event_session.clone(),
            self.command_ban.clone(),
            self.dead_letters.clone(),
        ]
    }

    pub fn output_topics(&self) -> Vec<String> {
        vec![
            self.event_account.clone(),
            self.event_session.clone(),
            self.command_ban.clone(),
            self.dead_letters.clone(),
        ]
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn changelog(&self, store: &str) -> String {
        format!("{}-{store}-changelog", self.id)
    }

    pub fn repartition_topic(&self) -> String {
        format!("{}-owner-repartition", self.id)
    }

    /// Starts the processor. The ban service is a closed local port, so
    /// every ban check fails fast and open (S39).
    pub fn start(&self, extra_env: &[(&str, &str)]) -> Processor {
        let port = free_port();
        let log_path = self.dir.path().join(format!("processor-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_account-streams"));
        cmd.arg("run")
            .current_dir(self.dir.path())
            .env_remove("CONFIG_FILE")
            .env("BOOTSTRAP_SERVERS", bootstrap_servers())
            .env("COMMAND_TOPIC_ACCOUNT", &self.command_account)
            .env("COMMAND_TOPIC_ACCOUNT_SESSION", &self.command_session)
            .env("EVENT_TOPIC_ACCOUNT_STATUS", &self.event_account)
            .env("EVENT_TOPIC_ACCOUNT_SESSION_STATUS", &self.event_session)
            .env("COMMAND_TOPIC_BAN", &self.command_ban)
            .env("DEAD_LETTER_TOPIC", &self.dead_letters)
            .env("APPLICATION_ID", &self.id)
            .env("KAFKA_CONSUMER_GROUP", format!("group-{}", self.id))
            .env("INSTANCE_ID", format!("{}-1", self.id))
            .env("STATE_DIR", self.state_dir())
            .env("INTERNAL_PARTITIONS", PARTITIONS.to_string())
            .env("REST_PORT", port.to_string())
            .env("BANS_SERVICE_URL", "http://127.0.0.1:1/")
            .env("BAN_CHECK_TIMEOUT_MS", "500")
            .env("LOG_LEVEL", "info")
            .env("LOG_FORMAT", "json");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("account-streams starts");
        Processor {
            child: Some(child),
            port,
            log_path,
        }
    }
}

/// A running processor; killed on drop (also when a test fails).
pub struct Processor {
    child: Option<Child>,
    pub port: u16,
    pub log_path: PathBuf,
}

impl Processor {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Status and body of a GET, or None while nothing listens.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let resp = reqwest::Client::new()
            .get(self.url(path))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    }

    /// Polls `/readyz` until 200; panics with the log after `timeout`.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            if let Some((200, _)) = self.get("/readyz").await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready after {timeout:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn scrape(&self) -> Scrape {
        let (status, body) = self.get("/metrics").await.expect("/metrics answers");
        assert_eq!(status, 200, "{body}");
        Scrape::parse(&body)
    }

    /// Scrapes until `done` holds; panics with the last scrape after `timeout`.
    pub async fn scrape_until(
        &mut self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            let s = self.scrape().await;
            if done(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not reached after {timeout:?}; last scrape:\n{}\nlog:\n{}",
                s.text,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("processor exited with {status}; log:\n{}", self.log());
            }
        }
    }

    /// SIGTERM (graceful: commits, flushes the stores) and waits for exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("processor did not stop on SIGTERM within 20 s");
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

// ---------------------------------------------------------------------------
// Kafka in and out
// ---------------------------------------------------------------------------

pub fn producer() -> FutureProducer {
    client_config().create().expect("producer")
}

pub async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: &[u8],
    value: &str,
    headers: &[(String, Vec<u8>)],
) {
    let mut h = OwnedHeaders::new();
    for (k, v) in headers {
        h = h.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(value).headers(h),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
}

/// One consumed output.
#[derive(Debug, Clone)]
pub struct Output {
    pub topic: String,
    pub value: serde_json::Value,
    pub raw: String,
    pub headers: BTreeMap<String, Vec<u8>>,
}

impl Output {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .get(key)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Reads committed records of `topics` from the beginning.
pub struct Outputs {
    consumer: BaseConsumer,
    pub got: Vec<Output>,
}

impl Outputs {
    pub fn new(topics: &[String]) -> Outputs {
        let consumer: BaseConsumer = client_config()
            .set("group.id", unique_name("ops-live-reader"))
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for t in topics {
            for p in 0..PARTITIONS {
                tpl.add_partition_offset(t, p, Offset::Beginning)
                    .expect("partition");
            }
        }
        consumer.assign(&tpl).expect("assign");
        Outputs {
            consumer,
            got: Vec::new(),
        }
    }

    fn poll_once(&mut self, wait: Duration) {
        if let Some(Ok(m)) = self.consumer.poll(wait) {
            let raw = m
                .payload()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default();
            let mut headers = BTreeMap::new();
            if let Some(h) = m.headers() {
                for i in 0..h.count() {
                    let hd = h.get(i);
                    headers.insert(hd.key.to_string(), hd.value.unwrap_or_default().to_vec());
                }
            }
            self.got.push(Output {
                topic: m.topic().to_string(),
                value: serde_json::from_str(&raw).unwrap_or(serde_json::Value::Null),
                raw,
                headers,
            });
        }
    }

    /// Polls until `n` outputs in total were read; panics after `timeout`.
    pub fn wait_for(&mut self, n: usize, timeout: Duration) -> &[Output] {
        let deadline = Instant::now() + timeout;
        while self.got.len() < n {
            assert!(
                Instant::now() < deadline,
                "expected {n} outputs, got {}: {:#?}",
                self.got.len(),
                self.got
            );
            self.poll_once(Duration::from_millis(100));
        }
        &self.got
    }

    /// Reads whatever else arrives within `quiet`.
    pub fn drain(&mut self, quiet: Duration) -> &[Output] {
        let deadline = Instant::now() + quiet;
        while Instant::now() < deadline {
            self.poll_once(Duration::from_millis(50));
        }
        &self.got
    }
}

/// Committed data records of `topic` (what a restore applies): reads each
/// partition up to its high watermark (transaction markers are not records).
pub fn count_committed_records(topic: &str) -> u64 {
    let consumer: BaseConsumer = client_config()
        .set("group.id", unique_name("ops-live-count"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut total = 0;
    for p in 0..PARTITIONS {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        if high <= low {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(low))
            .expect("partition");
        consumer.assign(&tpl).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "counting {topic}/{p} timed out");
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(_)) => total += 1,
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => panic!("reading {topic}/{p}: {e}"),
                None => {}
            }
        }
    }
    total
}

// ---------------------------------------------------------------------------
// /metrics
// ---------------------------------------------------------------------------

/// A parsed `/metrics` scrape: samples by name and label set.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub text: String,
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let value: f64 = value.parse().expect("sample value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_string(), labels, value));
        }
        Scrape {
            text: text.to_string(),
            samples,
        }
    }

    /// The sample of `name` with exactly these labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|(_, _, v)| *v)
    }

    /// Like [`Scrape::get`], panicking with the scrape when absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in\n{}", self.text))
    }

    /// Every sample of `name`, by label set.
    pub fn all(&self, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, l, v)| (l.clone(), *v))
            .collect()
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    // Values here never contain `",` (topic names, codes, numbers).
    let mut out = BTreeMap::new();
    for pair in s.split("\",") {
        if let Some((k, v)) = pair.split_once("=\"") {
            out.insert(k.to_string(), v.trim_end_matches('"').to_string());
        }
    }
    out
}

pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
