//! Exactly-once, restore and rebalance tests of the runtime against a real
//! Kafka broker (BOOTSTRAP_SERVERS), using the toy counting topology.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rand::Rng;

const READY: &str = "toy-counter ready";

/// 20 kill -9s during a run of 20 000 records (with slow work in the mix):
/// every total appears exactly once per key and the store equals the fold.
#[test]
fn kill9_twenty_times_exactly_once() {
    let toy = Toy::new("kill9", 3, 6)
        .env("TOY_SLOW_EVERY", "7")
        .env("TOY_SLOW_MS", "3");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("toy.log");
    let state = dir.path().join("state");
    let keys = input_keys(20_000, 50);
    let expected = fold(&keys);

    // Input arrives over ~50 s while the processor is being killed.
    let input_topic = toy.input.clone();
    let feeder_keys = keys.clone();
    let feeder = std::thread::spawn(move || {
        let p = producer();
        for chunk in feeder_keys.chunks(400) {
            produce_increments(&p, &input_topic, chunk);
            std::thread::sleep(Duration::from_millis(1000));
        }
    });

    let mut rng = rand::rng();
    for i in 0..20 {
        let readies = count_lines(&log, READY);
        let started = Instant::now();
        let mut proc = toy.spawn("toy-a", &state, &log);
        wait_log(&log, READY, readies + 1, Duration::from_secs(60));
        let ready = started.elapsed();
        std::thread::sleep(Duration::from_millis(rng.random_range(200..2000)));
        proc.kill9();
        eprintln!("kill {}: ready after {ready:?}", i + 1);
    }
    feeder.join().unwrap();
    let mut proc = toy.spawn("toy-a", &state, &log);
    wait_for_totals(&toy.output, &expected, Duration::from_secs(120));
    let took = proc.terminate();
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");

    assert_exact_totals(&read_all(&toy.output), &expected);
    assert_eq!(dump_state(&state, &toy.app_id, toy.partitions), expected);
}

/// Clean stop + deleted state directory: a full restore rebuilds the same
/// state. Then a kill -9 mid-run restores only the tail.
#[test]
fn restore_after_wipe_and_only_tail_after_crash() {
    let toy = Toy::new("restore", 3, 4);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("toy.log");
    let state = dir.path().join("state");
    let p = producer();
    let first = input_keys(5_000, 40);
    produce_increments(&p, &toy.input, &first);
    let expected = fold(&first);

    let mut proc = toy.spawn("toy-r", &state, &log);
    wait_for_totals(&toy.output, &expected, Duration::from_secs(90));
    proc.terminate();
    let before = dump_state(&state, &toy.app_id, toy.partitions);
    assert_eq!(before, expected);

    std::fs::remove_dir_all(&state).unwrap();
    let skip = line_count(&log);
    let mut proc = toy.spawn("toy-r", &state, &log);
    wait_log(&log, READY, 2, Duration::from_secs(60));
    let restored = restored_records(&log, skip);
    assert!(
        restored >= expected.len() as u64,
        "full restore read {restored} records for {} keys",
        expected.len()
    );
    proc.terminate();
    assert_eq!(dump_state(&state, &toy.app_id, toy.partitions), before);

    // Unclean crash while records flow.
    let second = input_keys(20_000, 40);
    let mut all = first.clone();
    all.extend(second.iter().cloned());
    let expected_all = fold(&all);
    let input = toy.input.clone();
    let feeder = std::thread::spawn(move || {
        let p = producer();
        for chunk in second.chunks(1000) {
            produce_increments(&p, &input, chunk);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut proc = toy.spawn("toy-r", &state, &log);
    wait_log(&log, READY, 3, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1500));
    proc.kill9();
    let skip = line_count(&log);
    let mut proc = toy.spawn("toy-r", &state, &log);
    wait_log(&log, READY, 4, Duration::from_secs(60));
    let tail = restored_records(&log, skip);
    // At most one committed transaction can be missing from RocksDB, and a
    // transaction writes one changelog record per key it touched.
    assert!(
        tail <= expected_all.len() as u64,
        "restored {tail} records after a crash; expected at most one transaction ({} keys)",
        expected_all.len()
    );
    feeder.join().unwrap();
    wait_for_totals(&toy.output, &expected_all, Duration::from_secs(120));
    proc.terminate();
    assert_exact_totals(&read_all(&toy.output), &expected_all);
    assert_eq!(
        dump_state(&state, &toy.app_id, toy.partitions),
        expected_all
    );
}

/// Two instances over 6 tasks; one is killed; the other takes over all tasks
/// (restoring them) and the output has no loss and no duplicate.
#[test]
fn scale_out_and_failover() {
    let toy = Toy::new("scale", 3, 6);
    let dir = tempfile::tempdir().unwrap();
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let (state_a, state_b) = (dir.path().join("a"), dir.path().join("b"));
    let keys = input_keys(12_000, 60);
    let expected = fold(&keys);
    let input = toy.input.clone();
    let feed = keys.clone();
    let feeder = std::thread::spawn(move || {
        let p = producer();
        for chunk in feed.chunks(400) {
            produce_increments(&p, &input, chunk);
            std::thread::sleep(Duration::from_millis(400));
        }
    });
    let mut a = toy.spawn("inst-a", &state_a, &log_a);
    let mut b = toy.spawn("inst-b", &state_b, &log_b);
    wait_log(&log_a, READY, 1, Duration::from_secs(60));
    wait_log(&log_b, READY, 1, Duration::from_secs(60));
    // Both must own tasks before the failover.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(a.log_text().contains("assignment ready tasks=[")
        && b.log_text().contains("assignment ready tasks=[")
        && last_tasks(&a.log_text()).len() + last_tasks(&b.log_text()).len() == 6
        && !last_tasks(&a.log_text()).is_empty()
        && !last_tasks(&b.log_text()).is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "tasks never split between the two instances"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    a.kill9();
    // b takes over all six tasks.
    let deadline = Instant::now() + Duration::from_secs(90);
    while last_tasks(&b.log_text()).len() != 6 {
        assert!(Instant::now() < deadline, "b never took over all tasks");
        std::thread::sleep(Duration::from_millis(200));
    }
    feeder.join().unwrap();
    wait_for_totals(&toy.output, &expected, Duration::from_secs(120));
    b.terminate();
    assert_exact_totals(&read_all(&toy.output), &expected);
    assert_eq!(dump_state(&state_b, &toy.app_id, toy.partitions), expected);
}

/// A third instance joins while transactions are open (records flowing,
/// slow work in flight): the rebalance commits before giving partitions up
/// and the output has no duplicate.
#[test]
fn join_during_open_transaction_no_duplicates() {
    let toy = Toy::new("join", 3, 6)
        .env("TOY_SLOW_EVERY", "5")
        .env("TOY_SLOW_MS", "20");
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| dir.path().join(format!("{n}.log")))
        .collect();
    let states: Vec<_> = ["a", "b", "c"].iter().map(|n| dir.path().join(n)).collect();
    let keys = input_keys(10_000, 60);
    let expected = fold(&keys);
    let input = toy.input.clone();
    let feed = keys.clone();
    let feeder = std::thread::spawn(move || {
        let p = producer();
        for chunk in feed.chunks(250) {
            produce_increments(&p, &input, chunk);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let mut a = toy.spawn("inst-a", &states[0], &logs[0]);
    let mut b = toy.spawn("inst-b", &states[1], &logs[1]);
    wait_log(&logs[0], READY, 1, Duration::from_secs(60));
    wait_log(&logs[1], READY, 1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    let mut c = toy.spawn("inst-c", &states[2], &logs[2]);
    wait_log(&logs[2], READY, 1, Duration::from_secs(60));
    feeder.join().unwrap();
    wait_for_totals(&toy.output, &expected, Duration::from_secs(120));
    let tasks: usize = [&a, &b, &c]
        .iter()
        .map(|p| last_tasks(&p.log_text()).len())
        .sum();
    assert_eq!(tasks, 6, "tasks owned after the join");
    assert!(
        !last_tasks(&c.log_text()).is_empty(),
        "the joining instance got tasks"
    );
    assert!(
        count_lines(&logs[0], "assignment ready") >= 2,
        "the join rebalanced the first instance (revocation commit)"
    );
    for p in [&mut a, &mut b, &mut c] {
        p.terminate();
    }
    assert_exact_totals(&read_all(&toy.output), &expected);
}

/// A produce error inside a transaction (the broker rejects an oversized
/// output) aborts it: state is dropped, the consumer rewinds, and the replay
/// yields every total exactly once.
#[test]
fn abortable_error_aborts_and_replays_exactly_once() {
    let toy = Toy::with_output_config("abort", 2, 4, &[("max.message.bytes", "20000")])
        .env("TOY_OVERSIZE_ONCE", "1");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("toy.log");
    let state = dir.path().join("state");
    let keys = input_keys(3_000, 20);
    let expected = fold(&keys);
    produce_increments(&producer(), &toy.input, &keys);
    let mut proc = toy.spawn("toy-x", &state, &log);
    wait_for_totals(&toy.output, &expected, Duration::from_secs(90));
    proc.terminate();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // librdkafka may fail the next transaction once more while it bumps the
    // producer epoch after the abort; each failure is an abort, not a restart.
    assert!(
        count_lines(&log, "transaction failed; aborting and rewinding") >= 1,
        "no abort:\n{text}"
    );
    assert_eq!(
        count_lines(&log, "stream session failed"),
        0,
        "aborts are handled without recreating the clients:\n{text}"
    );
    assert_exact_totals(&read_all(&toy.output), &expected);
    assert_eq!(dump_state(&state, &toy.app_id, toy.partitions), expected);
}

/// An existing internal topic with another partition count is a startup error.
#[test]
fn partition_count_mismatch_is_a_startup_error() {
    let toy = Toy::new("mismatch", 1, 6);
    create_topic(&format!("{}-counter-repartition", toy.app_id), 3);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("toy.log");
    let mut proc = toy.spawn("toy-m", &dir.path().join("state"), &log);
    assert!(!proc.wait_exit(Duration::from_secs(60)), "must fail");
    let text = proc.log_text();
    assert!(
        text.contains("has 3 partitions but the application is configured with 6"),
        "{text}"
    );
}

/// A state directory held by a live process is refused with a clear error.
#[test]
fn locked_state_dir_is_refused() {
    let toy = Toy::new("lock", 1, 2);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let log1 = dir.path().join("1.log");
    let log2 = dir.path().join("2.log");
    let mut first = toy.spawn("toy-l1", &state, &log1);
    wait_log(&log1, READY, 1, Duration::from_secs(60));
    let mut second = toy.spawn("toy-l2", &state, &log2);
    assert!(!second.wait_exit(Duration::from_secs(30)), "must fail");
    let text = second.log_text();
    assert!(
        text.contains(&format!(
            "is locked by another live process (pid {})",
            first.pid()
        )),
        "{text}"
    );
    first.kill9();
    // The lock of a dead process does not block a restart.
    let mut third = toy.spawn("toy-l1", &state, &log1);
    wait_log(&log1, READY, 2, Duration::from_secs(60));
    third.terminate();
}

/// Undecodable input goes to the dead-letter topic with `dlq.*` headers and
/// does not stop the partition.
#[test]
fn bad_input_is_dead_lettered() {
    let toy = Toy::new("dlq", 1, 2);
    let p = producer();
    use rdkafka::producer::{BaseRecord, Producer};
    p.send(
        BaseRecord::<str, str>::to(&toy.input)
            .key("k1")
            .payload("1"),
    )
    .unwrap();
    p.send(
        BaseRecord::<str, str>::to(&toy.input)
            .key("k1")
            .payload("oops"),
    )
    .unwrap();
    p.send(
        BaseRecord::<str, str>::to(&toy.input)
            .key("k1")
            .payload("1"),
    )
    .unwrap();
    p.flush(Duration::from_secs(10)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("toy.log");
    let mut proc = toy.spawn("toy-d", &dir.path().join("state"), &log);
    let expected = [("k1".to_string(), 2u64)].into_iter().collect();
    wait_for_totals(&toy.output, &expected, Duration::from_secs(60));
    proc.terminate();
    assert_exact_totals(&read_all(&toy.output), &expected);
    let dlq = read_all_with_headers(&format!("{}-dead-letters", toy.app_id));
    assert_eq!(dlq.len(), 1);
    let (key, value, headers) = &dlq[0];
    assert_eq!(key, "k1");
    assert_eq!(value, "oops");
    let h = |k: &str| {
        headers
            .iter()
            .find(|(hk, _)| hk == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(h("dlq.reason").as_deref(), Some("bad_value"));
    assert_eq!(h("dlq.topic").as_deref(), Some(toy.input.as_str()));
    assert_eq!(h("dlq.partition").as_deref(), Some("0"));
    assert_eq!(h("dlq.offset").as_deref(), Some("1"));
    assert_eq!(
        h("dlq.error").as_deref(),
        Some("value is not a decimal increment")
    );
}

/// Tasks in the last "assignment ready" line of a log.
fn last_tasks(log: &str) -> Vec<u32> {
    let Some(line) = log.lines().rev().find(|l| l.contains("assignment ready")) else {
        return Vec::new();
    };
    let Some(i) = line.find("tasks=[") else {
        return Vec::new();
    };
    let rest = &line[i + 7..];
    let end = rest.find(']').unwrap_or(0);
    rest[..end]
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// `(key, value, headers)` of a dead-letter record.
type DeadLetterRecord = (String, String, Vec<(String, String)>);

fn read_all_with_headers(topic: &str) -> Vec<DeadLetterRecord> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("dlq-verify"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let parts = md.topics()[0].partitions().len();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition_offset(topic, p as i32, rdkafka::Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut eof = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while eof < parts && Instant::now() < deadline {
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push((
                    String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    headers,
                ));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => eof += 1,
            _ => {}
        }
    }
    out
}
