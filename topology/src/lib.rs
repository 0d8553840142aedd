//! A small exactly-once stream runtime in the style of Kafka Streams.
//!
//! It knows nothing about accounts: applications plug in a [`Router`] that
//! sends each input record to its owning task through an internal
//! repartition topic, and a [`Processor`] per task with access to the task's
//! stores. See `docs/adr/0001-stream-runtime.md` for the design and the
//! exactly-once argument.
//!
//! ```no_run
//! use topology::*;
//! # struct MyProcessor;
//! # impl Processor for MyProcessor {
//! #     fn process(&mut self, _: &mut Context<'_>, _: &Record) -> Result<Step, ProcessError> { Ok(Step::Done) }
//! # }
//! let cfg = RuntimeConfig::new("127.0.0.1:9092", "my-app", "instance-1", 6, "/var/lib/my-app");
//! let registry = prometheus::Registry::new();
//! let running = TopologyBuilder::new(cfg)
//!     .source("input")
//!     .router("by-key", |r: &InputRecord<'_>, parts: u32| RouteDecision::Route(Route {
//!         partition: partition_for_key(r.key.unwrap_or_default(), parts),
//!         key: r.key.map(<[u8]>::to_vec),
//!         value: r.value.map(<[u8]>::to_vec),
//!         headers: r.headers.to_vec(),
//!     }))
//!     .store("counts")
//!     .sink("output")
//!     .processor(|_partition: u32| Box::new(MyProcessor) as Box<dyn Processor>)
//!     .start(&registry)
//!     .expect("start");
//! let shutdown = running.shutdown_handle(); // call shutdown.shutdown() on SIGTERM
//! running.join().expect("clean stop");
//! ```

mod admin;
mod api;
mod config;
mod engine;
mod error;
mod metrics;
pub mod partitioner;
mod restore;
mod runtime;
mod status;
mod task;

pub use api::{
    Context, DeadLetter, Header, InputRecord, Output, ProcessError, Processor, ProcessorFactory,
    ReadContext, Record, Route, RouteDecision, Router, SlowOutput, SlowWork, Step,
};
pub use config::RuntimeConfig;
pub use error::RuntimeError;
pub use metrics::RuntimeMetrics;
pub use partitioner::{murmur2, partition_for_key};
pub use restore::restore_task;
pub use runtime::{topic_partition_counts, RunningTopology, TopologyBuilder};
pub use state::{Entries, StoreError, TaskStores};
pub use status::{RuntimeStatus, ShutdownHandle};
