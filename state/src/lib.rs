//! State stores for the stream runtime.
//!
//! A store is a sorted byte-key / byte-value map owned by exactly one task.
//! The runtime decides when writes become durable; this crate only knows how
//! to hold, apply and restore them. It knows nothing about Kafka topics.
//!
//! * [`TaskStores`]: the stores of one task with the write buffer of the open
//!   transaction (reads see it), committed atomically with checkpoints.
//! * [`RocksBackend`] (one DB per task, one column family per store) and
//!   [`MemoryBackend`] (tests) hold committed state.
//! * [`StateDirLock`]: one live process per state directory.

mod backend;
mod error;
mod lock;
mod rocks;
mod task;

pub use backend::{Backend, CommittedBatch, MemoryBackend, StoreStats};
pub use error::StoreError;
pub use lock::StateDirLock;
pub use rocks::RocksBackend;
pub use task::{Entries, Pending, TaskStores};

#[cfg(test)]
mod tests;
