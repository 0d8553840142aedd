//! A small exactly-once stream runtime in the style of Kafka Streams.
//!
//! It knows nothing about accounts: applications plug in routers,
//! processors and sinks.

pub mod partitioner;
