//! End-to-end harness: the real `account-streams run` binary as a child
//! process against the real broker, with uniquely named topics, a producer
//! that writes commands exactly as the Atlas services do, and a
//! `read_committed` collector over every output topic (and the dead-letter
//! topic) that keeps topic, partition, key bytes, headers and value bytes.
#![allow(dead_code)] // each e2e test binary uses a different subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

pub const S1: &str = "a0000000-0000-4000-8000-000000000001";
pub const S2: &str = "a0000000-0000-4000-8000-000000000002";
pub const S3: &str = "a0000000-0000-4000-8000-000000000003";
pub const S9: &str = "a0000000-0000-4000-8000-000000000009";
pub const NIL: &str = "00000000-0000-0000-0000-000000000000";

/// Partitions of the output topics (outputs are placed by murmur2 of the key).
pub const OUT_PARTITIONS: i32 = 3;

pub fn bootstrap_servers() -> String {
    std::env::var("BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

pub fn client_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap_servers())
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "30000");
    c
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// `key(n)` of SCENARIOS section 0: uint32 little-endian + four zero bytes.
pub fn key(n: u32) -> Vec<u8> {
    let mut k = n.to_le_bytes().to_vec();
    k.extend_from_slice(&[0; 4]);
    k
}

/// Which topic a message is on, in the notation of SCENARIOS.md.
#[allow(clippy::upper_case_acronyms)] // the names SCENARIOS.md uses
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    CA,
    CS,
    AS,
    SS,
    BAN,
    DLQ,
}

#[derive(Debug, Clone)]
pub struct Topics {
    pub ca: String,
    pub cs: String,
    pub as_: String,
    pub ss: String,
    pub ban: String,
    pub dlq: String,
}

impl Topics {
    pub fn unique(tag: &str) -> Self {
        let s = uuid::Uuid::new_v4().simple().to_string();
        let t = |n: &str| format!("e2e-{tag}-{n}-{s}");
        Topics {
            ca: t("CA"),
            cs: t("CS"),
            as_: t("AS"),
            ss: t("SS"),
            ban: t("BAN"),
            dlq: t("DLQ"),
        }
    }
    pub fn name(&self, t: Topic) -> &str {
        match t {
            Topic::CA => &self.ca,
            Topic::CS => &self.cs,
            Topic::AS => &self.as_,
            Topic::SS => &self.ss,
            Topic::BAN => &self.ban,
            Topic::DLQ => &self.dlq,
        }
    }
    fn token(&self, name: &str) -> Option<Topic> {
        [
            Topic::AS,
            Topic::SS,
            Topic::BAN,
            Topic::DLQ,
            Topic::CA,
            Topic::CS,
        ]
        .into_iter()
        .find(|t| self.name(*t) == name)
    }
}

/// Creates the topics: inputs with `input_partitions` (and a 3 MB message
/// limit so a 2 MB poison pill reaches the processor), outputs with
/// [`OUT_PARTITIONS`].
pub async fn create_topics(topics: &Topics, input_partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client_config().create().unwrap();
    let mut list = Vec::new();
    for t in [&topics.ca, &topics.cs] {
        list.push(
            NewTopic::new(t, input_partitions, TopicReplication::Fixed(1))
                .set("max.message.bytes", "3000000"),
        );
    }
    for t in [&topics.as_, &topics.ss, &topics.ban, &topics.dlq] {
        list.push(
            NewTopic::new(t, OUT_PARTITIONS, TopicReplication::Fixed(1))
                .set("max.message.bytes", "3000000"),
        );
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.create_topics(list.iter(), &opts).await.unwrap() {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// Tenant headers of SCENARIOS section 0, with a fresh id per scenario so
/// scenarios sharing one processor cannot see each other's state.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub region: String,
    pub major: u16,
    pub minor: u16,
}

impl Tenant {
    pub fn fresh(region: &str, major: u16) -> Self {
        Tenant {
            id: uuid::Uuid::new_v4().to_string(),
            region: region.into(),
            major,
            minor: 1,
        }
    }
    /// Same tenant id, other region/version (D11).
    pub fn with(&self, region: &str, major: u16) -> Self {
        Tenant {
            id: self.id.clone(),
            region: region.into(),
            major,
            minor: self.minor,
        }
    }
    pub fn headers(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            ("TENANT_ID".into(), self.id.as_bytes().to_vec()),
            ("REGION".into(), self.region.as_bytes().to_vec()),
            ("MAJOR_VERSION".into(), self.major.to_be_bytes().to_vec()),
            ("MINOR_VERSION".into(), self.minor.to_be_bytes().to_vec()),
        ]
    }
}

/// One message as a `read_committed` consumer saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub topic: Topic,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub value: Option<Vec<u8>>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }
    pub fn tenant(&self) -> Option<String> {
        self.header("TENANT_ID")
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Background `read_committed` reader of AS, SS, BAN and DLQ.
pub struct Collector {
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    pub fn start(topics: &Topics) -> Self {
        let consumer: BaseConsumer = client_config()
            .set("group.id", unique("e2e-collector"))
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("fetch.message.max.bytes", "4000000")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for t in [&topics.as_, &topics.ss, &topics.ban, &topics.dlq] {
            for p in 0..OUT_PARTITIONS {
                tpl.add_partition_offset(t, p, Offset::Beginning).unwrap();
            }
        }
        consumer.assign(&tpl).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2, topics2) = (seen.clone(), stop.clone(), topics.clone());
        let thread = std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        let headers = m
                            .headers()
                            .map(|h| {
                                h.iter()
                                    .map(|Header { key, value }| {
                                        (key.to_owned(), value.map(<[u8]>::to_vec))
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        let Some(topic) = topics2.token(m.topic()) else {
                            continue;
                        };
                        s2.lock().unwrap().push(Seen {
                            topic,
                            partition: m.partition(),
                            offset: m.offset(),
                            key: m.key().map(<[u8]>::to_vec),
                            headers,
                            value: m.payload().map(<[u8]>::to_vec),
                        });
                    }
                    Some(Err(e)) => eprintln!("collector: {e}"),
                    None => {}
                }
            }
        });
        Collector {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Messages whose `TENANT_ID` header is `tenant_id` (DLQ included).
    pub fn of_tenant(&self, tenant_id: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.tenant().as_deref() == Some(tenant_id))
            .cloned()
            .collect()
    }

    /// Waits until `pred` holds for the collected messages or `timeout` passes.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Seen]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.seen.lock().unwrap()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Producer of commands with exact keys and headers.
#[derive(Clone)]
pub struct Sender {
    producer: FutureProducer,
    pub topics: Topics,
}

impl Sender {
    pub fn new(topics: &Topics) -> Self {
        let producer = client_config()
            .set("message.max.bytes", "3000000")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        Sender {
            producer,
            topics: topics.clone(),
        }
    }

    /// Sends and waits for the broker's ack; returns (partition, offset).
    pub async fn send(
        &self,
        topic: Topic,
        key: Option<&[u8]>,
        headers: &[(String, Vec<u8>)],
        value: Option<&[u8]>,
    ) -> (i32, i64) {
        let mut h = OwnedHeaders::new();
        for (k, v) in headers {
            h = h.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let name = self.topics.name(topic).to_owned();
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&name).headers(h);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        self.producer
            .send(rec, Duration::from_secs(30))
            .await
            .map(|d| (d.partition, d.offset))
            .unwrap_or_else(|(e, _)| panic!("send to {name}: {e}"))
    }
}

/// Settings of one processor run (the child's environment).
#[derive(Debug, Clone)]
pub struct ProcessorSpec {
    pub topics: Topics,
    pub app_id: String,
    pub group: String,
    pub instance_id: String,
    pub state_dir: PathBuf,
    pub env: Vec<(String, String)>,
}

impl ProcessorSpec {
    pub fn new(topics: &Topics, state_dir: &Path) -> Self {
        ProcessorSpec {
            topics: topics.clone(),
            app_id: unique("e2e-app"),
            group: unique("e2e-group"),
            instance_id: unique("e2e-inst"),
            state_dir: state_dir.to_owned(),
            env: Vec::new(),
        }
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
}

/// The running binary; killed (SIGKILL) on drop so a failing test leaves
/// nothing behind.
pub struct Processor {
    child: Child,
    pub port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Processor {
    /// Starts `account-streams run` and waits until `/readyz` says ready.
    pub async fn start(spec: &ProcessorSpec) -> Self {
        let port = free_port();
        let t = &spec.topics;
        let log = spec.state_dir.join(format!("{}.log", spec.instance_id));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_account-streams"));
        cmd.arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BOOTSTRAP_SERVERS", bootstrap_servers())
            .env("COMMAND_TOPIC_ACCOUNT", &t.ca)
            .env("COMMAND_TOPIC_ACCOUNT_SESSION", &t.cs)
            .env("EVENT_TOPIC_ACCOUNT_STATUS", &t.as_)
            .env("EVENT_TOPIC_ACCOUNT_SESSION_STATUS", &t.ss)
            .env("COMMAND_TOPIC_BAN", &t.ban)
            .env("DEAD_LETTER_TOPIC", &t.dlq)
            .env("APPLICATION_ID", &spec.app_id)
            .env("KAFKA_CONSUMER_GROUP", &spec.group)
            .env("INSTANCE_ID", &spec.instance_id)
            .env("STATE_DIR", spec.state_dir.join("state"))
            .env("REST_PORT", port.to_string())
            .env("COMMIT_INTERVAL_MS", "50")
            .env("INTERNAL_PARTITIONS", "4")
            .env("LOG_LEVEL", "info")
            .current_dir(&spec.state_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn account-streams");
        let mut p = Processor { child, port };
        p.wait_ready(&log).await;
        p
    }

    async fn wait_ready(&mut self, log: &Path) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "processor exited with {st} before ready:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if let Ok(r) = client
                .get(format!("http://127.0.0.1:{}/readyz", self.port))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "processor not ready in 90 s:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit (graceful stop).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            assert!(Instant::now() < deadline, "no exit 30 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything one test file needs: topics, processor, producer, collector.
pub struct Env {
    pub topics: Topics,
    pub sender: Sender,
    pub collector: Collector,
    pub spec: ProcessorSpec,
    pub processor: Option<Processor>,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn start(tag: &str, input_partitions: i32, env: &[(&str, &str)]) -> Self {
        let topics = Topics::unique(tag);
        create_topics(&topics, input_partitions).await;
        let dir = tempfile::tempdir().unwrap();
        let mut spec = ProcessorSpec::new(&topics, dir.path());
        for (k, v) in env {
            spec = spec.env(k, v);
        }
        let collector = Collector::start(&topics);
        let processor = Processor::start(&spec).await;
        Env {
            sender: Sender::new(&topics),
            topics,
            collector,
            spec,
            processor: Some(processor),
            dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join(format!("{}.log", self.spec.instance_id)),
        )
        .unwrap_or_default()
    }
}

/// A `traceparent` with a fresh trace id; returns (header value, trace id).
pub fn traceparent() -> (Vec<u8>, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    (
        format!("00-{trace}-00f067aa0ba902b7-01").into_bytes(),
        trace,
    )
}

/// Parses `"account_id":N` of an `AS` message.
pub fn as_account_id(value: &str) -> u32 {
    let v: serde_json::Value = serde_json::from_str(value).unwrap();
    u32::try_from(v["account_id"].as_u64().unwrap()).unwrap()
}

/// The header map of a message without `traceparent`, for exact comparison.
pub fn header_map(s: &Seen) -> HashMap<String, Option<Vec<u8>>> {
    s.headers
        .iter()
        .filter(|(k, _)| k != "traceparent")
        .cloned()
        .collect()
}
