use state::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(
        "internal topic {topic} has {actual} partitions but the application is configured with {expected}; \
         P is fixed at first start (delete the application's internal topics and state to change it)"
    )]
    PartitionMismatch {
        topic: String,
        expected: u32,
        actual: u32,
    },
    #[error("topic {topic} does not exist and could not be created: {reason}")]
    MissingTopic { topic: String, reason: String },
    #[error("Kafka: {context}: {source}")]
    Kafka {
        context: &'static str,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("processor of task {partition} failed: {message}")]
    Processor { partition: u32, message: String },
    #[error("metrics registration: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("slow-work runtime: {0}")]
    Io(#[from] std::io::Error),
    #[error("stream thread panicked")]
    Panicked,
}

impl RuntimeError {
    pub(crate) fn kafka(context: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        move |source| RuntimeError::Kafka { context, source }
    }
}
