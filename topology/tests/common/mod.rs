//! Helpers for the real-broker tests: topics, input, the toy-counter process
//! and exact verification of its output and state.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub fn bootstrap() -> String {
    std::env::var("BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

pub fn create_topic(name: &str, partitions: i32) {
    create_topic_with(name, partitions, &[]);
}

pub fn create_topic_with(name: &str, partitions: i32, config: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin");
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in config {
        t = t.set(k, v);
    }
    let res = futures::executor::block_on(admin.create_topics([&t], &AdminOptions::new()))
        .expect("create topics");
    for r in res {
        r.expect("topic created");
    }
}

pub fn producer() -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Produces `key -> "1"` for each key in order and waits for delivery.
pub fn produce_increments(p: &BaseProducer, topic: &str, keys: &[String]) {
    for k in keys {
        loop {
            match p.send(
                BaseRecord::<str, str>::to(topic)
                    .key(k.as_str())
                    .payload("1"),
            ) {
                Ok(()) => break,
                Err((_, _)) => p.poll(Duration::from_millis(10)),
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).expect("flush input");
}

/// `n` records over `keys` keys, deterministic but interleaved.
pub fn input_keys(n: usize, keys: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("k{}", (i * 7 + i / keys) % keys))
        .collect()
}

pub fn fold(keys: &[String]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k.clone()).or_insert(0) += 1;
    }
    m
}

/// Every committed record of a topic, per partition in offset order, read
/// with read_committed until the end of every partition.
pub fn read_all(topic: &str) -> Vec<(String, String)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("verify"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("verify consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let parts = md.topics()[0].partitions().len();
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut eof = std::collections::HashSet::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while eof.len() < parts {
        assert!(Instant::now() < deadline, "reading {topic} timed out");
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                eof.remove(&m.partition());
                out.push((
                    String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                ));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("verify consumer: {e}"),
            None => {}
        }
    }
    out
}

/// Asserts the output holds, per key, exactly the totals 1..=n in order.
pub fn assert_exact_totals(output: &[(String, String)], expected: &BTreeMap<String, u64>) {
    let mut per_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (k, v) in output {
        per_key
            .entry(k.clone())
            .or_default()
            .push(v.parse().expect("numeric total"));
    }
    assert_eq!(
        per_key.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "keys in output"
    );
    for (k, n) in expected {
        let got = &per_key[k];
        let want: Vec<u64> = (1..=*n).collect();
        if got != &want {
            let dups = got.len() as i64 - want.len() as i64;
            panic!(
                "key {k}: expected totals 1..={n}, got {} values ({dups:+} vs expected); first difference at index {:?}",
                got.len(),
                got.iter().zip(&want).position(|(a, b)| a != b)
            );
        }
    }
}

/// Highest total per key seen so far (cheap progress check).
pub fn max_totals(output: &[(String, String)]) -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for (k, v) in output {
        let v: u64 = v.parse().unwrap_or(0);
        let e = m.entry(k.clone()).or_insert(0);
        *e = (*e).max(v);
    }
    m
}

/// Waits until the output's per-key maxima equal the expected fold.
pub fn wait_for_totals(topic: &str, expected: &BTreeMap<String, u64>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let out = read_all(topic);
        let maxes = max_totals(&out);
        if expected.iter().all(|(k, n)| maxes.get(k) == Some(n)) {
            return;
        }
        let done: u64 = maxes.values().sum();
        assert!(
            Instant::now() < deadline,
            "output incomplete after {timeout:?}: {done} of {} increments",
            expected.values().sum::<u64>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Final store content of the toy, read from its RocksDB task directories.
pub fn dump_state(state_dir: &Path, app_id: &str, partitions: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for p in 0..partitions {
        let dir = state_dir.join(app_id).join(format!("task-{p}"));
        if !dir.exists() {
            continue;
        }
        let stores =
            topology::TaskStores::open_rocksdb(&dir, &["counts".to_string()]).expect("open task");
        for (k, v) in stores.scan_prefix(0, b"").expect("scan") {
            let v = u64::from_be_bytes(v.as_slice().try_into().expect("u64"));
            assert!(
                out.insert(String::from_utf8(k).unwrap(), v).is_none(),
                "key in two tasks"
            );
        }
    }
    out
}

pub struct Toy {
    pub app_id: String,
    pub input: String,
    pub output: String,
    pub partitions: u32,
    pub extra_env: Vec<(String, String)>,
}

/// A running toy-counter process; killed (SIGKILL) on drop.
pub struct ToyProcess {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Toy {
    pub fn new(prefix: &str, input_partitions: i32, partitions: u32) -> Self {
        Self::with_output_config(prefix, input_partitions, partitions, &[])
    }

    pub fn with_output_config(
        prefix: &str,
        input_partitions: i32,
        partitions: u32,
        output_config: &[(&str, &str)],
    ) -> Self {
        let app_id = unique(prefix);
        let input = format!("{app_id}-in");
        let output = format!("{app_id}-out");
        create_topic(&input, input_partitions);
        create_topic_with(&output, 3, output_config);
        Self {
            app_id,
            input,
            output,
            partitions,
            extra_env: Vec::new(),
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.extra_env.push((k.into(), v.into()));
        self
    }

    pub fn spawn(&self, instance: &str, state_dir: &Path, log: &Path) -> ToyProcess {
        let logf = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_toy-counter"));
        cmd.env("BOOTSTRAP_SERVERS", bootstrap())
            .env("TOY_APP_ID", &self.app_id)
            .env("TOY_INSTANCE_ID", instance)
            .env("TOY_INPUT", &self.input)
            .env("TOY_OUTPUT", &self.output)
            .env("TOY_STATE_DIR", state_dir)
            .env("TOY_PARTITIONS", self.partitions.to_string())
            .env("TOY_SESSION_TIMEOUT_MS", "6000")
            .env("TOY_TXN_TIMEOUT_MS", "6000")
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup log"))
            .stderr(logf);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        ToyProcess {
            child: Some(cmd.spawn().expect("spawn toy-counter")),
            log: log.to_path_buf(),
        }
    }
}

impl ToyProcess {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns how long the exit took.
    pub fn terminate(&mut self) -> Duration {
        let Some(mut c) = self.child.take() else {
            return Duration::ZERO;
        };
        let started = Instant::now();
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                assert!(status.success(), "toy exited with {status}");
                return started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = c.kill();
                let _ = c.wait();
                panic!("toy did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit on its own; returns its exit success.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let Some(c) = self.child.as_mut() else {
            return false;
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                self.child = None;
                return status.success();
            }
            assert!(Instant::now() < deadline, "process did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ToyProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Count of lines containing `needle` in a log file.
pub fn count_lines(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Waits until the log has at least `n` lines containing `needle`.
pub fn wait_log(log: &Path, needle: &str, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while count_lines(log, needle) < n {
        assert!(
            Instant::now() < deadline,
            "log {} never had {n} lines with {needle:?}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sum of `records_done=` over the "restore complete" lines after line `skip`.
pub fn restored_records(log: &Path, skip_lines: usize) -> u64 {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .skip(skip_lines)
        .filter(|l| l.contains("restore complete"))
        .filter_map(|l| {
            let i = l.find("records_done=")?;
            l[i + "records_done=".len()..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

pub fn line_count(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .count()
}
