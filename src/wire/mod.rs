//! Everything that crosses Kafka: message keys, headers, JSON bodies.

pub mod key;
