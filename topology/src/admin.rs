//! Internal topics: created on first start with P partitions; an existing
//! topic with another count is a startup error, never silently used.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::error::RuntimeError;

const TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    pub compacted: bool,
    /// Internal topics must match `partitions` exactly.
    pub strict: bool,
}

/// Partition counts of the given topics (missing topics are absent from the map).
pub(crate) fn partition_counts(
    bootstrap: &str,
    topics: &[String],
) -> Result<HashMap<String, u32>, RuntimeError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(RuntimeError::kafka("metadata client"))?;
    let mut out = HashMap::new();
    for t in topics {
        let md = consumer
            .fetch_metadata(Some(t), TIMEOUT)
            .map_err(RuntimeError::kafka("fetch metadata"))?;
        for mt in md.topics() {
            if mt.name() == t && mt.error().is_none() && !mt.partitions().is_empty() {
                out.insert(t.clone(), mt.partitions().len() as u32);
            }
        }
    }
    Ok(out)
}

/// Creates missing topics and validates the partition count of strict ones.
pub(crate) fn ensure_topics(
    bootstrap: &str,
    replication_factor: i32,
    specs: &[TopicSpec],
) -> Result<HashMap<String, u32>, RuntimeError> {
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let mut counts = partition_counts(bootstrap, &names)?;
    let missing: Vec<&TopicSpec> = specs
        .iter()
        .filter(|s| !counts.contains_key(&s.name))
        .collect();
    if !missing.is_empty() {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .map_err(RuntimeError::kafka("admin client"))?;
        let new_topics: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|s| {
                let t = NewTopic::new(
                    &s.name,
                    s.partitions as i32,
                    TopicReplication::Fixed(replication_factor),
                );
                if s.compacted {
                    t.set("cleanup.policy", "compact")
                } else {
                    t
                }
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let results = futures::executor::block_on(admin.create_topics(&new_topics, &opts))
            .map_err(RuntimeError::kafka("create topics"))?;
        for r in results {
            match r {
                Ok(name) => tracing::info!(topic = %name, "created topic"),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    tracing::debug!(topic = %name, "topic created concurrently")
                }
                Err((name, code)) => {
                    return Err(RuntimeError::MissingTopic {
                        topic: name,
                        reason: code.to_string(),
                    })
                }
            }
        }
        // Metadata propagates asynchronously; wait until every topic is visible.
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            counts = partition_counts(bootstrap, &names)?;
            if specs.iter().all(|s| counts.contains_key(&s.name)) {
                break;
            }
            if std::time::Instant::now() > deadline {
                let topic = specs
                    .iter()
                    .find(|s| !counts.contains_key(&s.name))
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                return Err(RuntimeError::MissingTopic {
                    topic,
                    reason: "not visible in metadata after creation".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for s in specs.iter().filter(|s| s.strict) {
        let actual = counts.get(&s.name).copied().unwrap_or_default();
        if actual != s.partitions {
            return Err(RuntimeError::PartitionMismatch {
                topic: s.name.clone(),
                expected: s.partitions,
                actual,
            });
        }
    }
    Ok(counts)
}
