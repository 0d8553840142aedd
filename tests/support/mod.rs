//! Shared helpers for the integration tests that talk to the real local broker
//! started by `scripts/kafka` (through `scripts/test`).
//!
//! Every test creates its own uniquely named topics and groups, so tests can
//! share one broker and run in parallel.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;

/// Where the broker is; `scripts/test` exports it for the port it started.
pub fn bootstrap_servers() -> String {
    std::env::var("BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Client config with the bootstrap address and short timeouts, so a missing
/// broker fails a test quickly instead of hanging it.
pub fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers())
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "30000");
    config
}

/// Creates `name` with `partitions` partitions (replication factor 1) and
/// waits for the broker to confirm it.
pub async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client_config()
        .create()
        .expect("admin client config is valid");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    let results = tokio::time::timeout(
        Duration::from_secs(45),
        admin.create_topics([&topic], &options),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "creating topic {name} timed out; is a broker on {}?",
            bootstrap_servers()
        )
    })
    .unwrap_or_else(|e| panic!("creating topic {name} failed: {e}"));
    for result in results {
        match result {
            Ok(_) => {}
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                panic!("topic {topic} already exists: names must be unique")
            }
            Err((topic, code)) => panic!("creating topic {topic} failed: {code}"),
        }
    }
}
