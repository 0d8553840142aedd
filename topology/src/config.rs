//! Runtime settings. Defaults follow Kafka Streams' EOS defaults where one exists.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub bootstrap_servers: String,
    /// Consumer group id and prefix of every internal topic.
    pub application_id: String,
    /// Stable per instance: `group.instance.id` (static membership) and the
    /// suffix of `transactional.id`, so a restarted instance fences its
    /// predecessor and gets its partitions back without a rebalance.
    pub instance_id: String,
    /// P: partitions of the repartition and changelog topics = number of tasks.
    pub partitions: u32,
    /// Root of local state; tasks live in `<state_dir>/<application_id>/task-<p>`.
    pub state_dir: PathBuf,
    pub commit_interval: Duration,
    pub punctuate_interval: Option<Duration>,
    /// Records in slow work at once (all tasks); more wait in their task queue.
    pub max_inflight_slow: usize,
    /// Records received but not fully processed (all tasks) before the
    /// consumer is paused.
    pub max_buffered_records: usize,
    pub transaction_timeout: Duration,
    pub session_timeout: Duration,
    pub static_membership: bool,
    /// -1: the broker's default.
    pub replication_factor: i32,
    /// Default `<application_id>-dead-letters`.
    pub dead_letter_topic: Option<String>,
    /// Partitions for sink / dead-letter topics the runtime must create.
    pub sink_partitions: Option<u32>,
    pub slow_worker_threads: usize,
    /// Deadline for shutdown work before the process should exit.
    pub shutdown_timeout: Duration,
    /// Extra librdkafka properties (override the runtime's).
    pub consumer_config: Vec<(String, String)>,
    pub producer_config: Vec<(String, String)>,
}

impl RuntimeConfig {
    pub fn new(
        bootstrap_servers: impl Into<String>,
        application_id: impl Into<String>,
        instance_id: impl Into<String>,
        partitions: u32,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            application_id: application_id.into(),
            instance_id: instance_id.into(),
            partitions,
            state_dir: state_dir.into(),
            commit_interval: Duration::from_millis(100),
            punctuate_interval: Some(Duration::from_secs(1)),
            max_inflight_slow: 256,
            max_buffered_records: 10_000,
            transaction_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(10),
            static_membership: true,
            replication_factor: -1,
            dead_letter_topic: None,
            sink_partitions: None,
            slow_worker_threads: 2,
            shutdown_timeout: Duration::from_secs(8),
            consumer_config: Vec::new(),
            producer_config: Vec::new(),
        }
    }

    pub fn dead_letter_topic(&self) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{}-dead-letters", self.application_id))
    }

    pub fn transactional_id(&self) -> String {
        format!("{}-{}", self.application_id, self.instance_id)
    }

    pub fn changelog_topic(&self, store: &str) -> String {
        format!("{}-{}-changelog", self.application_id, store)
    }

    pub fn repartition_topic(&self, name: &str) -> String {
        format!("{}-{}-repartition", self.application_id, name)
    }

    pub fn task_dir(&self, partition: u32) -> PathBuf {
        self.app_state_dir().join(format!("task-{partition}"))
    }

    pub fn app_state_dir(&self) -> PathBuf {
        self.state_dir.join(&self.application_id)
    }
}
