//! Proves that the test broker is a real transactional Kafka and that the
//! rdkafka transactional path works against it: the exactly-once runtime rests
//! on both. (librdkafka's mock cluster would show aborted records to
//! `read_committed` consumers, so this test would fail against it.)

mod support;

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One data record as a consumer saw it.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    offset: i64,
    key: String,
    value: String,
}

fn transactional_producer(transactional_id: &str) -> FutureProducer {
    support::client_config()
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", "60000")
        .create()
        .expect("producer config is valid")
}

/// Runs a blocking transactional call off the async worker threads.
async fn blocking<F>(what: &str, f: F)
where
    F: FnOnce() -> Result<(), KafkaError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking task panicked")
        .unwrap_or_else(|e| panic!("{what} failed: {e}"));
}

/// Sends `prefix-0..count` in the open transaction and waits until the broker
/// has written every record (so that even an aborted batch is in the log).
/// Returns the offsets the broker assigned.
async fn send_batch(
    producer: &FutureProducer,
    topic: &str,
    prefix: &str,
    count: usize,
) -> Vec<i64> {
    let mut offsets = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("{prefix}-key-{i}");
        let value = format!("{prefix}-{i}");
        let record = FutureRecord::to(topic)
            .partition(0)
            .key(&key)
            .payload(&value);
        let delivery = producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("delivery of {value} failed: {e}"));
        assert_eq!(delivery.partition, 0);
        offsets.push(delivery.offset);
    }
    offsets
}

/// Reads partition 0 of `topic` from the beginning to its end (as the given
/// isolation level sees it) and returns the data records; transaction markers
/// are never handed to the application.
async fn read_all(topic: &str, isolation_level: &str) -> Vec<Seen> {
    let consumer: StreamConsumer = support::client_config()
        .set("group.id", support::unique_name("txn-test-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation_level)
        .create()
        .expect("consumer config is valid");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("valid partition offset");
    consumer.assign(&assignment).expect("assign partition 0");

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("{isolation_level} consumer did not reach the end of {topic} in {READ_TIMEOUT:?}; saw {seen:?}")
            });
        match next {
            Ok(message) => seen.push(Seen {
                offset: message.offset(),
                key: String::from_utf8(message.key().expect("record has a key").to_vec())
                    .expect("utf-8 key"),
                value: String::from_utf8(message.payload().expect("record has a value").to_vec())
                    .expect("utf-8 value"),
            }),
            Err(KafkaError::PartitionEOF(0)) => return seen,
            Err(e) => panic!("{isolation_level} consumer failed: {e}"),
        }
    }
}

fn expected(prefix: &str, offsets: std::ops::RangeInclusive<i64>) -> Vec<Seen> {
    offsets
        .enumerate()
        .map(|(i, offset)| Seen {
            offset,
            key: format!("{prefix}-key-{i}"),
            value: format!("{prefix}-{i}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_sees_only_committed_transactions() {
    let topic = support::unique_name("txn-test");
    support::create_topic(&topic, 1).await;

    let producer = transactional_producer(&support::unique_name("txn-test-producer"));
    let p = producer.clone();
    blocking("init_transactions", move || {
        p.init_transactions(TXN_TIMEOUT)
    })
    .await;

    producer
        .begin_transaction()
        .expect("begin first transaction");
    let committed_offsets = send_batch(&producer, &topic, "committed", 10).await;
    let p = producer.clone();
    blocking("commit_transaction", move || {
        p.commit_transaction(TXN_TIMEOUT)
    })
    .await;

    producer
        .begin_transaction()
        .expect("begin second transaction");
    let aborted_offsets = send_batch(&producer, &topic, "aborted", 10).await;
    let p = producer.clone();
    blocking("abort_transaction", move || {
        p.abort_transaction(TXN_TIMEOUT)
    })
    .await;

    // The commit marker takes offset 10, so the aborted batch lands at 11..=20
    // and its abort marker at 21.
    assert_eq!(committed_offsets, (0..=9).collect::<Vec<i64>>());
    assert_eq!(aborted_offsets, (11..=20).collect::<Vec<i64>>());

    let committed_view = read_all(&topic, "read_committed").await;
    assert_eq!(committed_view, expected("committed", 0..=9));

    let uncommitted_view = read_all(&topic, "read_uncommitted").await;
    assert_eq!(uncommitted_view.len(), 20);
    let mut all = expected("committed", 0..=9);
    all.extend(expected("aborted", 11..=20));
    assert_eq!(uncommitted_view, all);
}
