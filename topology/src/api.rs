//! What an application plugs into the runtime: a router for input records and
//! a per-task processor with access to the task's stores.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use state::{Entries, StoreError, TaskStores};

/// A Kafka record header; `None` is a header with a null value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl Header {
    pub fn new(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// An input-topic record as the router sees it (borrowed from the consumer).
#[derive(Debug, Clone, Copy)]
pub struct InputRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch, when the broker or producer set one.
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
}

/// Where the router sends an input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    /// Re-key to the owning task: produced to the repartition topic partition
    /// `partition` inside the current transaction.
    Route(Route),
    /// Unprocessable input: written to the dead-letter topic with the original
    /// key and headers plus `dlq.*` headers; the value must already be redacted.
    DeadLetter(DeadLetter),
    /// Consume and ignore.
    Drop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub partition: u32,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Metric label and `dlq.reason` header; a fixed set chosen by the app.
    pub reason: &'static str,
    pub error: String,
    pub value: Option<Vec<u8>>,
}

/// Decides, for every input record, which task owns it. Runs on the stream
/// thread; keep it cheap and free of I/O.
pub trait Router: Send {
    fn route(&mut self, record: &InputRecord<'_>, partitions: u32) -> RouteDecision;
}

impl<F> Router for F
where
    F: FnMut(&InputRecord<'_>, u32) -> RouteDecision + Send,
{
    fn route(&mut self, record: &InputRecord<'_>, partitions: u32) -> RouteDecision {
        self(record, partitions)
    }
}

/// A repartition-topic record delivered to its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: u32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

impl Record {
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }
}

/// An output record; the runtime picks the partition with the Java murmur2
/// partitioner over the key (keyless records go to the task's partition
/// modulo the topic's partition count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

/// Result of slow work, handed back to [`Processor::resume`].
pub type SlowOutput = Box<dyn Any + Send>;
/// Slow work (bcrypt on `spawn_blocking`, an HTTP call) run on the runtime's
/// tokio worker pool, off the stream thread.
pub type SlowWork = Pin<Box<dyn Future<Output = SlowOutput> + Send>>;

/// What processing one record needs next.
pub enum Step {
    /// Fully processed.
    Done,
    /// Run `work` off the stream thread, then call `resume` with its output
    /// (with the state as it is then). Later records with the same order key
    /// wait; records of other keys proceed.
    Slow(SlowWork),
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Done => f.write_str("Done"),
            Step::Slow(_) => f.write_str("Slow(..)"),
        }
    }
}

/// Infrastructure failure inside a processor (e.g. a store read error). The
/// runtime aborts the transaction and stops: it is not a "bad record" signal
/// (the app dead-letters or answers those itself).
pub type ProcessError = Box<dyn std::error::Error + Send + Sync>;

/// Per-task processing logic. One instance per task, created by the
/// [`ProcessorFactory`] with the task's partition; runs on the stream thread.
pub trait Processor: Send {
    /// The key whose records must stay in order (e.g. the account). Called
    /// once when the record reaches its task, before `process`; must be cheap.
    fn order_key(&self, ctx: &ReadContext<'_>, record: &Record) -> Result<Vec<u8>, ProcessError> {
        let _ = ctx;
        Ok(record.key.clone().unwrap_or_default())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record) -> Result<Step, ProcessError>;

    /// Continues a record after its slow work finished. May ask for more slow work.
    fn resume(
        &mut self,
        ctx: &mut Context<'_>,
        record: &Record,
        output: SlowOutput,
    ) -> Result<Step, ProcessError> {
        let _ = (ctx, record, output);
        Ok(Step::Done)
    }

    /// Wall-clock callback every configured punctuation interval, inside the
    /// transaction loop (its writes and outputs commit like any other).
    fn punctuate(&mut self, ctx: &mut Context<'_>, now: SystemTime) -> Result<(), ProcessError> {
        let _ = (ctx, now);
        Ok(())
    }
}

/// Creates the processor of a task.
pub trait ProcessorFactory: Send + Sync {
    fn create(&self, partition: u32) -> Box<dyn Processor>;
}

impl<F> ProcessorFactory for F
where
    F: Fn(u32) -> Box<dyn Processor> + Send + Sync,
{
    fn create(&self, partition: u32) -> Box<dyn Processor> {
        self(partition)
    }
}

/// Read-only view of a task's stores (for [`Processor::order_key`]).
pub struct ReadContext<'a> {
    pub(crate) stores: &'a TaskStores,
    pub(crate) partition: u32,
    pub(crate) partitions: u32,
}

impl<'a> ReadContext<'a> {
    pub fn new(stores: &'a TaskStores, partition: u32, partitions: u32) -> Self {
        Self {
            stores,
            partition,
            partitions,
        }
    }

    pub fn partition(&self) -> u32 {
        self.partition
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    pub fn get(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.stores.get(self.stores.index(store)?, key)
    }

    pub fn scan_prefix(&self, store: &str, prefix: &[u8]) -> Result<Entries, StoreError> {
        self.stores.scan_prefix(self.stores.index(store)?, prefix)
    }
}

/// A task's stores and output channel during `process`, `resume` and
/// `punctuate`. Writes and sends belong to the open transaction.
pub struct Context<'a> {
    stores: &'a mut TaskStores,
    outputs: &'a mut Vec<Output>,
    partition: u32,
    partitions: u32,
    now: SystemTime,
}

impl<'a> Context<'a> {
    /// Also the way to unit-test a processor: pass `TaskStores::in_memory`
    /// and inspect `outputs` afterwards.
    pub fn new(
        stores: &'a mut TaskStores,
        outputs: &'a mut Vec<Output>,
        partition: u32,
        partitions: u32,
        now: SystemTime,
    ) -> Self {
        Self {
            stores,
            outputs,
            partition,
            partitions,
            now,
        }
    }

    pub fn partition(&self) -> u32 {
        self.partition
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Wall-clock time when the runtime invoked the processor.
    pub fn now(&self) -> SystemTime {
        self.now
    }

    pub fn read(&self) -> ReadContext<'_> {
        ReadContext::new(self.stores, self.partition, self.partitions)
    }

    pub fn get(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.stores.get(self.stores.index(store)?, key)
    }

    pub fn put(&mut self, store: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let s = self.stores.index(store)?;
        self.stores.put(s, key, value)
    }

    pub fn delete(&mut self, store: &str, key: &[u8]) -> Result<(), StoreError> {
        let s = self.stores.index(store)?;
        self.stores.delete(s, key)
    }

    /// Entries with the prefix in key order (empty prefix: the whole store),
    /// including this transaction's writes.
    pub fn scan_prefix(&self, store: &str, prefix: &[u8]) -> Result<Entries, StoreError> {
        self.stores.scan_prefix(self.stores.index(store)?, prefix)
    }

    /// Emits an output record in the open transaction.
    pub fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Vec<Header>,
    ) {
        self.outputs.push(Output {
            topic: topic.to_string(),
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers,
        });
    }
}
