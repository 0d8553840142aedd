//! The stream thread's state: transactional producer, tasks, routing and the
//! EOS commit protocol. Shared with the consumer's rebalance callbacks (they
//! run inside `poll` on the same thread), hence behind a mutex that the main
//! loop never holds while polling.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header as KHeader, Headers, Message, OwnedHeaders};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use state::TaskStores;

use crate::api::{
    DeadLetter, Header, InputRecord, Output, ProcessorFactory, Record, RouteDecision, Router,
};
use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::metrics::RuntimeMetrics;
use crate::partitioner::partition_for_key;
use crate::restore::Restorer;
use crate::status::{RuntimeStatus, ShutdownHandle};
use crate::task::{Completion, DriveEnv, Spawner, Task};

const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
const RETRIES: usize = 10;

/// The static shape of the application, shared by all sessions.
pub(crate) struct TopologyDef {
    pub sources: Vec<String>,
    pub repartition_topic: String,
    pub stores: Vec<String>,
    pub changelog_topics: Vec<String>,
    pub dead_letter_topic: String,
    /// Partition counts of sink and dead-letter topics, looked up at start.
    pub partition_counts: HashMap<String, u32>,
}

/// Collects changelog offsets from delivery reports: the checkpoint of a
/// store is the offset after the last record this transaction wrote to it.
#[derive(Default)]
pub(crate) struct ProducerCtx {
    deliveries: Mutex<Deliveries>,
}

#[derive(Default)]
struct Deliveries {
    changelog_next: HashMap<(usize, i32), i64>,
    failed: Option<String>,
}

impl ClientContext for ProducerCtx {}

impl ProducerContext for ProducerCtx {
    /// 0 for outputs, `store index + 1` for changelog records.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let mut d = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(m) => {
                if opaque > 0 {
                    let e = d
                        .changelog_next
                        .entry((opaque - 1, m.partition()))
                        .or_insert(0);
                    *e = (*e).max(m.offset() + 1);
                }
            }
            Err((e, m)) => {
                if d.failed.is_none() {
                    d.failed = Some(format!("delivery to {} failed: {e}", m.topic()));
                }
            }
        }
    }
}

/// Consumer context: rebalance callbacks drive the engine.
pub(crate) struct StreamCtx {
    pub engine: Arc<Mutex<Engine>>,
}

impl ClientContext for StreamCtx {}

impl ConsumerContext for StreamCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            lock(&self.engine).on_revoke(consumer);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            lock(&self.engine).on_assign(consumer, tpl);
        }
    }
}

pub(crate) fn lock(engine: &Mutex<Engine>) -> std::sync::MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) type StreamConsumer = BaseConsumer<StreamCtx>;

/// Progress on one input partition within the open transaction.
struct InputPosition {
    topic: String,
    partition: i32,
    /// Offset to commit: after the last routed record.
    next: i64,
    routed: u64,
}

/// How a transaction ended when it did not commit.
enum TxnFailure {
    Abortable(String),
    Fatal(RuntimeError),
}

pub(crate) struct Engine {
    cfg: Arc<RuntimeConfig>,
    def: Arc<TopologyDef>,
    router: Option<Box<dyn Router>>,
    factory: Arc<dyn ProcessorFactory>,
    metrics: RuntimeMetrics,
    status: RuntimeStatus,
    shutdown: ShutdownHandle,
    producer: BaseProducer<ProducerCtx>,
    txn_open: bool,
    /// Why the open transaction cannot commit (set by `produce`, which only
    /// borrows the engine).
    txn_error: RefCell<Option<String>>,
    tasks: BTreeMap<u32, Task>,
    suspended: BTreeMap<u32, Task>,
    /// Input partitions consumed in the open transaction (a handful: a
    /// linear search beats hashing a fresh String key per record).
    inputs: Vec<InputPosition>,
    /// Last committed offsets of the current assignment.
    committed: HashMap<(String, i32), i64>,
    assignment: Vec<(String, i32)>,
    spawner: Spawner,
    completions: Receiver<Completion>,
    outputs: Vec<Output>,
    done_timestamps: Vec<Option<i64>>,
    restorer: Option<Restorer>,
    /// A fatal error seen inside a callback; the main loop ends the session.
    pub fatal: Option<RuntimeError>,
    /// Set once the session is being torn down: callbacks stop committing.
    pub closing: bool,
    last_commit: Instant,
    /// Longest a commit waits for in-flight slow work.
    pub barrier_limit: Duration,
    /// How many slow records may be in flight now (at most
    /// `cfg.max_inflight_slow`). Halved when a commit's barrier times out,
    /// raised by one per successful commit: on a CPU-starved host a batch
    /// whose slow work cannot finish within the barrier would otherwise be
    /// aborted and replayed unchanged forever; a smaller batch always fits.
    slow_limit: usize,
    last_punctuate: Instant,
    last_lag: Instant,
    paused: bool,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: Arc<RuntimeConfig>,
        def: Arc<TopologyDef>,
        router: Box<dyn Router>,
        factory: Arc<dyn ProcessorFactory>,
        metrics: RuntimeMetrics,
        status: RuntimeStatus,
        shutdown: ShutdownHandle,
        slow: tokio::runtime::Handle,
    ) -> Result<Self, RuntimeError> {
        let producer = create_producer(&cfg)?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Leave room to commit within the transaction timeout.
        let cfg_barrier = cfg.transaction_timeout / 2;
        let slow_limit = cfg.max_inflight_slow.max(1);
        Ok(Self {
            cfg,
            def,
            router: Some(router),
            factory,
            metrics,
            status,
            shutdown,
            producer,
            txn_open: false,
            txn_error: RefCell::new(None),
            tasks: BTreeMap::new(),
            suspended: BTreeMap::new(),
            inputs: Vec::new(),
            committed: HashMap::new(),
            assignment: Vec::new(),
            spawner: Spawner { handle: slow, tx },
            completions: rx,
            outputs: Vec::new(),
            done_timestamps: Vec::new(),
            restorer: None,
            fatal: None,
            closing: false,
            last_commit: Instant::now(),
            barrier_limit: cfg_barrier,
            slow_limit,
            last_punctuate: Instant::now(),
            last_lag: Instant::now(),
            paused: false,
        })
    }

    /// Router / processor errors stop the runtime; Kafka errors end the session.
    fn processor_error(&self, partition: u32, e: crate::api::ProcessError) -> RuntimeError {
        RuntimeError::Processor {
            partition,
            message: e.to_string(),
        }
    }

    fn ensure_txn(&mut self) -> Result<(), RuntimeError> {
        if !self.txn_open {
            self.producer
                .begin_transaction()
                .map_err(RuntimeError::kafka("begin transaction"))?;
            self.txn_open = true;
        }
        Ok(())
    }

    /// Enqueues into the producer, waiting for space when its queue is full.
    #[allow(clippy::too_many_arguments)]
    fn produce(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
        timestamp: Option<i64>,
        opaque: usize,
    ) -> Result<(), RuntimeError> {
        let mut rec: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, opaque).partition(partition);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        if let Some(h) = headers {
            rec = rec.headers(h);
        }
        if let Some(ts) = timestamp {
            rec = rec.timestamp(ts);
        }
        loop {
            match self.producer.send(rec) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) if self.txn_open => {
                    // The transaction can no longer commit (librdkafka put it in
                    // an abortable state); the next commit aborts and replays.
                    self.txn_error
                        .borrow_mut()
                        .get_or_insert_with(|| format!("produce to {topic}: {e}"));
                    return Ok(());
                }
                Err((e, _)) => {
                    return Err(RuntimeError::Kafka {
                        context: "produce",
                        source: e,
                    })
                }
            }
        }
    }

    fn partitions_of(&self, topic: &str) -> u32 {
        self.def
            .partition_counts
            .get(topic)
            .copied()
            .unwrap_or(1)
            .max(1)
    }

    /// Handles one consumed record: routes input records, queues repartition
    /// records on their task.
    pub fn on_message(&mut self, m: &BorrowedMessage<'_>) -> Result<(), RuntimeError> {
        self.ensure_txn()?;
        let topic = m.topic();
        let headers = read_headers(m);
        if topic == self.def.repartition_topic {
            let partition = m.partition() as u32;
            let record = Record {
                partition,
                offset: m.offset(),
                timestamp: m.timestamp().to_millis(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
            };
            let parts = self.cfg.partitions;
            if let Some(task) = self.tasks.get_mut(&partition) {
                task.enqueue(record, parts)
                    .map_err(|e| RuntimeError::Processor {
                        partition,
                        message: e.to_string(),
                    })?;
            }
            return Ok(());
        }
        let input = InputRecord {
            topic,
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
            key: m.key(),
            value: m.payload(),
            headers: &headers,
        };
        let Some(router) = self.router.as_mut() else {
            return Ok(());
        };
        let decision = router.route(&input, self.cfg.partitions);
        match decision {
            RouteDecision::Route(r) => {
                let partition = r.partition % self.cfg.partitions;
                self.produce(
                    &self.def.repartition_topic,
                    partition as i32,
                    r.key.as_deref(),
                    r.value.as_deref(),
                    to_owned_headers(&r.headers),
                    input.timestamp,
                    0,
                )?;
            }
            RouteDecision::DeadLetter(dl) => self.dead_letter(&input, dl)?,
            RouteDecision::Drop => {}
        }
        let (partition, next) = (m.partition(), m.offset() + 1);
        match self
            .inputs
            .iter_mut()
            .find(|p| p.partition == partition && p.topic == topic)
        {
            Some(p) => {
                p.next = next;
                p.routed += 1;
            }
            None => self.inputs.push(InputPosition {
                topic: topic.to_string(),
                partition,
                next,
                routed: 1,
            }),
        }
        Ok(())
    }

    fn dead_letter(&self, input: &InputRecord<'_>, dl: DeadLetter) -> Result<(), RuntimeError> {
        let topic = &self.def.dead_letter_topic;
        let n = self.partitions_of(topic);
        let partition = match input.key {
            Some(k) => partition_for_key(k, n),
            None => (input.partition.max(0) as u32) % n,
        };
        let mut headers: Vec<Header> = input.headers.to_vec();
        headers.push(Header::new("dlq.reason", dl.reason));
        headers.push(Header::new("dlq.topic", input.topic));
        headers.push(Header::new("dlq.partition", input.partition.to_string()));
        headers.push(Header::new("dlq.offset", input.offset.to_string()));
        headers.push(Header::new("dlq.error", dl.error.as_str()));
        self.produce(
            topic,
            partition as i32,
            input.key,
            dl.value.as_deref(),
            to_owned_headers(&headers),
            None,
            0,
        )?;
        self.metrics
            .dead_letters
            .with_label_values(&[dl.reason])
            .inc();
        tracing::warn!(
            reason = dl.reason,
            topic = input.topic,
            partition = input.partition,
            offset = input.offset,
            error = %dl.error,
            "record dead-lettered"
        );
        Ok(())
    }

    fn slow_budget(&self) -> usize {
        let used: usize = self.tasks.values().map(Task::inflight).sum();
        self.slow_limit.saturating_sub(used)
    }

    /// Starts whatever may start in every task and ships the outputs.
    fn drive_all(&mut self, barrier: bool) -> Result<(), RuntimeError> {
        let mut budget = self.slow_budget();
        let now = SystemTime::now();
        let parts = self.cfg.partitions;
        let mut failed = None;
        for task in self.tasks.values_mut() {
            let mut env = DriveEnv {
                outputs: &mut self.outputs,
                partitions: parts,
                barrier,
                slow_budget: &mut budget,
                spawner: &self.spawner,
                done_timestamps: &mut self.done_timestamps,
                now,
            };
            if let Err(e) = task.drive(&mut env) {
                failed = Some((task.partition, e));
                break;
            }
        }
        if let Some((p, e)) = failed {
            return Err(self.processor_error(p, e));
        }
        self.flush_outputs()
    }

    fn flush_outputs(&mut self) -> Result<(), RuntimeError> {
        if self.outputs.is_empty() {
            return Ok(());
        }
        self.ensure_txn()?;
        let outputs = std::mem::take(&mut self.outputs);
        for o in &outputs {
            let n = self.partitions_of(&o.topic);
            let partition = match &o.key {
                Some(k) => partition_for_key(k, n),
                None => 0,
            };
            self.produce(
                &o.topic,
                partition as i32,
                o.key.as_deref(),
                o.value.as_deref(),
                to_owned_headers(&o.headers),
                None,
                0,
            )?;
        }
        self.outputs = outputs;
        self.outputs.clear();
        Ok(())
    }

    /// Applies finished slow work; waits up to `wait` for the first one.
    fn handle_completions(&mut self, wait: Duration) -> Result<(), RuntimeError> {
        let first = if wait.is_zero() {
            self.completions.try_recv().ok()
        } else {
            self.completions.recv_timeout(wait).ok()
        };
        let Some(first) = first else {
            return Ok(());
        };
        let mut budget = self.slow_budget();
        let now = SystemTime::now();
        let parts = self.cfg.partitions;
        let mut next = Some(first);
        while let Some(c) = next {
            let p = c.partition;
            if let Some(task) = self.tasks.get_mut(&p) {
                let mut env = DriveEnv {
                    outputs: &mut self.outputs,
                    partitions: parts,
                    barrier: true,
                    slow_budget: &mut budget,
                    spawner: &self.spawner,
                    done_timestamps: &mut self.done_timestamps,
                    now,
                };
                if let Err(e) = task.complete(c, &mut env) {
                    return Err(self.processor_error(p, e));
                }
            }
            next = self.completions.try_recv().ok();
        }
        Ok(())
    }

    /// True when records or slow work are pending, so polling should not block.
    pub fn busy(&self) -> bool {
        self.tasks.values().any(|t| t.pending() > 0)
    }

    /// Everything the loop does between polls: slow completions, starting
    /// records, punctuation, back-pressure, metrics, and the commit when due.
    pub fn tick(&mut self, consumer: &StreamConsumer) -> Result<(), RuntimeError> {
        self.handle_completions(Duration::ZERO)?;
        self.drive_all(false)?;
        self.producer.poll(Duration::ZERO);
        if let Some(interval) = self.cfg.punctuate_interval {
            if self.last_punctuate.elapsed() >= interval {
                self.last_punctuate = Instant::now();
                self.punctuate()?;
            }
        }
        self.backpressure(consumer);
        let failed = self.txn_error.borrow().is_some();
        if failed || self.last_commit.elapsed() >= self.cfg.commit_interval {
            self.commit(consumer, true)?;
        }
        if self.last_lag.elapsed() >= Duration::from_secs(5) {
            self.last_lag = Instant::now();
            self.update_gauges(consumer);
        }
        Ok(())
    }

    fn punctuate(&mut self) -> Result<(), RuntimeError> {
        let mut budget = self.slow_budget();
        let now = SystemTime::now();
        let parts = self.cfg.partitions;
        let mut failed = None;
        for task in self.tasks.values_mut() {
            let mut env = DriveEnv {
                outputs: &mut self.outputs,
                partitions: parts,
                barrier: false,
                slow_budget: &mut budget,
                spawner: &self.spawner,
                done_timestamps: &mut self.done_timestamps,
                now,
            };
            if let Err(e) = task.punctuate(&mut env) {
                failed = Some((task.partition, e));
                break;
            }
        }
        if let Some((p, e)) = failed {
            return Err(self.processor_error(p, e));
        }
        self.flush_outputs()
    }

    fn backpressure(&mut self, consumer: &StreamConsumer) {
        let pending: usize = self.tasks.values().map(Task::pending).sum();
        let limit = self.cfg.max_buffered_records.max(1);
        if !self.paused && pending >= limit {
            self.paused = consumer.pause(&self.assignment_tpl(None)).is_ok();
        } else if self.paused && pending < limit / 2 {
            self.paused = consumer.resume(&self.assignment_tpl(None)).is_err();
        }
        let inflight: usize = self.tasks.values().map(Task::inflight).sum();
        self.metrics.slow_inflight.set(pending.max(inflight) as i64);
    }

    fn assignment_tpl(&self, offsets: Option<&HashMap<(String, i32), i64>>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &self.assignment {
            match offsets.and_then(|o| o.get(&(t.clone(), *p))) {
                Some(o) => {
                    let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
                }
                None => {
                    tpl.add_partition(t, *p);
                }
            }
        }
        tpl
    }

    fn update_gauges(&self, consumer: &StreamConsumer) {
        if let Ok(pos) = consumer.position() {
            for e in pos.elements() {
                // A partition nothing was fetched from yet has no position:
                // it resumes from its committed offset, else (earliest) from
                // the low watermark, which is where its lag counts from.
                let position = match e.offset() {
                    Offset::Offset(p) => Some(p),
                    _ => self
                        .committed
                        .get(&(e.topic().to_string(), e.partition()))
                        .copied(),
                };
                if let Ok((low, high)) =
                    consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(1))
                {
                    let p = position.unwrap_or(low);
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[e.topic(), &e.partition().to_string()])
                        .set((high - p).max(0));
                }
            }
        }
        for (s, name) in self.def.stores.iter().enumerate() {
            let (mut bytes, mut keys) = (0u64, 0u64);
            for t in self.tasks.values() {
                let st = t.stores.stats(s);
                bytes += st.live_bytes;
                keys += st.estimated_keys;
            }
            self.metrics
                .store_size_bytes
                .with_label_values(&[name])
                .set(bytes as i64);
            self.metrics
                .store_estimated_keys
                .with_label_values(&[name])
                .set(keys as i64);
        }
    }

    /// The EOS commit: barrier, changelog records, flush, offsets, commit,
    /// then the state write batch with checkpoints. Abortable failures abort
    /// and (if `rewind`) seek back to the committed offsets; fatal ones return Err.
    pub fn commit(&mut self, consumer: &StreamConsumer, rewind: bool) -> Result<(), RuntimeError> {
        self.last_commit = Instant::now();
        if let Some(f) = self.fatal.take() {
            return Err(f);
        }
        let failed = self.txn_error.borrow_mut().take();
        if let Some(reason) = failed {
            tracing::warn!(%reason, "transaction failed; aborting and rewinding to the last commit");
            return self.abort(consumer, rewind);
        }
        // 1. Barrier: finish every started record (and those queued before it).
        //    Slow work that never finishes must not wedge the thread: past the
        //    transaction timeout the transaction is aborted and replayed.
        let barrier_deadline = Instant::now() + self.barrier_limit;
        loop {
            self.drive_all(true)?;
            if self.tasks.values().all(Task::settled) {
                break;
            }
            if Instant::now() > barrier_deadline {
                self.slow_limit = (self.slow_limit / 2).max(1);
                tracing::warn!(
                    limit = ?self.barrier_limit,
                    slow_limit = self.slow_limit,
                    "slow work did not finish before the commit deadline; aborting the transaction and admitting less slow work"
                );
                return self.abort(consumer, rewind);
            }
            self.handle_completions(Duration::from_millis(20))?;
            self.producer.poll(Duration::ZERO);
        }
        let dirty = self.tasks.values().any(|t| t.stores.buffered_len() > 0);
        if !self.txn_open && !dirty {
            return Ok(());
        }
        let started = Instant::now();
        match self.try_commit(consumer) {
            Ok(()) => {
                self.metrics.transactions_committed.inc();
                if self.slow_limit < self.cfg.max_inflight_slow {
                    self.slow_limit += 1;
                }
                self.metrics
                    .commit_latency
                    .observe(started.elapsed().as_secs_f64());
                Ok(())
            }
            Err(TxnFailure::Abortable(reason)) => {
                tracing::warn!(%reason, "transaction failed; aborting and rewinding to the last commit");
                self.abort(consumer, rewind)
            }
            Err(TxnFailure::Fatal(e)) => Err(e),
        }
    }

    fn try_commit(&mut self, consumer: &StreamConsumer) -> Result<(), TxnFailure> {
        self.ensure_txn().map_err(TxnFailure::Fatal)?;
        let failed_earlier = self.txn_error.borrow_mut().take();
        if let Some(reason) = failed_earlier {
            return Err(TxnFailure::Abortable(reason));
        }
        // 2. Changelog: the last value of every key written in this transaction.
        let mut changelog = Vec::new();
        for t in self.tasks.values() {
            for (s, k, v) in t.stores.dirty() {
                changelog.push((s, t.partition, k.to_vec(), v.map(<[u8]>::to_vec)));
            }
        }
        for (s, p, k, v) in &changelog {
            self.produce(
                &self.def.changelog_topics[*s],
                *p as i32,
                Some(k),
                v.as_deref(),
                None,
                None,
                s + 1,
            )
            .map_err(|e| TxnFailure::Abortable(e.to_string()))?;
        }
        // 3. Flush by polling: rust-rdkafka's commit would poll in 100 ms steps.
        let deadline = Instant::now() + self.cfg.transaction_timeout;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() > deadline {
                return Err(TxnFailure::Abortable("flush timed out".into()));
            }
            self.producer.poll(Duration::from_millis(1));
        }
        let (failed, checkpoints) = {
            let mut d = self
                .producer
                .context()
                .deliveries
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            (d.failed.take(), std::mem::take(&mut d.changelog_next))
        };
        if let Some(f) = failed.or_else(|| self.txn_error.borrow_mut().take()) {
            return Err(TxnFailure::Abortable(f));
        }
        // 4. Offsets of every owned partition (also unchanged ones, so that a
        //    zombie's transaction always carries a fenceable offset commit).
        let mut offsets: HashMap<(String, i32), i64> = self.committed.clone();
        for p in &self.inputs {
            offsets.insert((p.topic.clone(), p.partition), p.next);
        }
        for t in self.tasks.values() {
            if let Some(o) = t.commit_offset() {
                offsets.insert((self.def.repartition_topic.clone(), t.partition as i32), o);
            }
        }
        offsets.retain(|k, _| self.assignment.contains(k));
        let tpl = self.assignment_tpl(Some(&offsets));
        let Some(cgm) = consumer.group_metadata() else {
            return Err(TxnFailure::Abortable("no consumer group metadata".into()));
        };
        retry(|| {
            self.producer
                .send_offsets_to_transaction(&tpl, &cgm, KAFKA_TIMEOUT)
        })?;
        retry(|| self.producer.commit_transaction(KAFKA_TIMEOUT))?;
        self.txn_open = false;
        // 5. The transaction is durable: make the state match it, atomically
        //    with the changelog offsets it corresponds to.
        for t in self.tasks.values_mut() {
            let cps: Vec<(usize, i64)> = checkpoints
                .iter()
                .filter(|((_, p), _)| *p == t.partition as i32)
                .map(|((s, _), o)| (*s, *o))
                .collect();
            t.stores
                .commit(&cps)
                .map_err(|e| TxnFailure::Fatal(RuntimeError::Store(e)))?;
        }
        self.committed = offsets;
        for p in self.inputs.drain(..) {
            self.metrics
                .records_processed
                .with_label_values(&[&p.topic])
                .inc_by(p.routed);
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let done = self.done_timestamps.len() as u64;
        if done > 0 {
            self.metrics
                .records_processed
                .with_label_values(&[&self.def.repartition_topic])
                .inc_by(done);
        }
        for ts in self.done_timestamps.drain(..).flatten() {
            self.metrics
                .processing_latency
                .observe(((now_ms - ts).max(0)) as f64 / 1000.0);
        }
        Ok(())
    }

    /// Aborts the open transaction, drops uncommitted state and (if `rewind`)
    /// seeks the consumer back to the committed offsets.
    pub fn abort(&mut self, consumer: &StreamConsumer, rewind: bool) -> Result<(), RuntimeError> {
        if self.txn_open {
            // abort_transaction waits for outstanding messages to be purged and
            // their delivery reports served; with the event API nobody serves
            // them while it blocks, so purge and drain them first and call it
            // with short timeouts, polling in between.
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            let drain_deadline = Instant::now() + KAFKA_TIMEOUT;
            while self.producer.in_flight_count() > 0 && Instant::now() < drain_deadline {
                self.producer.poll(Duration::from_millis(1));
            }
            let deadline = Instant::now() + KAFKA_TIMEOUT * 2;
            loop {
                match self.producer.abort_transaction(Duration::from_millis(500)) {
                    Ok(()) => break,
                    Err(KafkaError::Transaction(e))
                        if e.is_retriable() && Instant::now() < deadline =>
                    {
                        self.producer.poll(Duration::from_millis(10));
                    }
                    Err(e) => {
                        return Err(RuntimeError::Kafka {
                            context: "abort transaction",
                            source: e,
                        })
                    }
                }
            }
            self.txn_open = false;
            self.metrics.transactions_aborted.inc();
        }
        {
            let mut d = self
                .producer
                .context()
                .deliveries
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            d.changelog_next.clear();
            d.failed = None;
        }
        self.txn_error.borrow_mut().take();
        for t in self.tasks.values_mut() {
            t.reset();
        }
        self.inputs.clear();
        self.outputs.clear();
        self.done_timestamps.clear();
        if rewind && !self.assignment.is_empty() {
            let tpl = consumer
                .committed_offsets(self.assignment_tpl(None), KAFKA_TIMEOUT)
                .map_err(RuntimeError::kafka("committed offsets"))?;
            let mut seek = TopicPartitionList::new();
            for e in tpl.elements() {
                let to = match e.offset() {
                    Offset::Offset(o) => Offset::Offset(o),
                    _ => Offset::Beginning,
                };
                let _ = seek.add_partition_offset(e.topic(), e.partition(), to);
            }
            consumer
                .seek_partitions(seek, KAFKA_TIMEOUT)
                .map_err(RuntimeError::kafka("seek after abort"))?;
        }
        Ok(())
    }

    /// Partitions are being taken away: commit what we have first.
    pub fn on_revoke(&mut self, consumer: &StreamConsumer) {
        if !self.closing && self.fatal.is_none() {
            if let Err(e) = self.commit(consumer, false) {
                self.fatal = Some(e);
            }
        }
        if self.txn_open {
            // Only when the commit failed: never leave a transaction open.
            if let Err(e) = self.abort(consumer, false) {
                tracing::error!(error = %e, "abort during revocation failed");
            }
        }
        for (p, mut t) in std::mem::take(&mut self.tasks) {
            t.reset();
            self.suspended.insert(p, t);
        }
        self.inputs.clear();
        self.committed.clear();
        self.assignment.clear();
        self.paused = false;
        self.status.set_tasks(0);
        self.metrics.tasks_assigned.set(0);
    }

    /// New assignment: wait for stable committed offsets (pending transactions
    /// of a previous owner resolve first), then restore each task.
    pub fn on_assign(&mut self, consumer: &StreamConsumer, tpl: &TopicPartitionList) {
        if let Err(e) = self.assign(consumer, tpl) {
            tracing::error!(error = %e, "assignment failed");
            self.fatal = Some(e);
        }
    }

    fn assign(
        &mut self,
        consumer: &StreamConsumer,
        tpl: &TopicPartitionList,
    ) -> Result<(), RuntimeError> {
        self.assignment = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        self.paused = false;
        if self.closing {
            return Ok(());
        }
        self.status.set_ready(false);
        let committed = consumer
            .committed_offsets(tpl.clone(), KAFKA_TIMEOUT)
            .map_err(RuntimeError::kafka("committed offsets"))?;
        self.committed.clear();
        for e in committed.elements() {
            if let Offset::Offset(o) = e.offset() {
                self.committed
                    .insert((e.topic().to_string(), e.partition()), o);
            }
        }
        let parts: Vec<u32> = self
            .assignment
            .iter()
            .filter(|(t, _)| *t == self.def.repartition_topic)
            .map(|(_, p)| *p as u32)
            .collect();
        if self.restorer.is_none() {
            self.restorer = Some(Restorer::new(&self.cfg)?);
        }
        for p in &parts {
            let mut task = match self.suspended.remove(p) {
                Some(t) => t,
                None => {
                    let stores =
                        TaskStores::open_rocksdb(&self.cfg.task_dir(*p), &self.def.stores)?;
                    Task::new(*p, stores, self.factory.create(*p))
                }
            };
            if let Some(r) = &self.restorer {
                r.restore(
                    &self.cfg,
                    &mut task.stores,
                    *p,
                    &self.metrics,
                    &self.shutdown,
                )?;
            }
            self.tasks.insert(*p, task);
        }
        for (p, t) in std::mem::take(&mut self.suspended) {
            if let Err(e) = t.stores.flush() {
                tracing::warn!(task = p, error = %e, "flushing closed task failed");
            }
        }
        tracing::info!(tasks = ?parts, partitions = self.assignment.len(), "assignment ready");
        self.status.set_tasks(self.tasks.len());
        self.metrics.tasks_assigned.set(self.tasks.len() as i64);
        self.status.set_ready(true);
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Final cleanup of a session: flush and drop every task.
    pub fn close_tasks(&mut self) {
        let all = std::mem::take(&mut self.tasks)
            .into_iter()
            .chain(std::mem::take(&mut self.suspended));
        for (p, t) in all {
            if let Err(e) = t.stores.flush() {
                tracing::warn!(task = p, error = %e, "flushing task on close failed");
            }
        }
        self.status.set_tasks(0);
        self.metrics.tasks_assigned.set(0);
    }

    pub fn take_router(&mut self) -> Option<Box<dyn Router>> {
        self.router.take()
    }

    pub fn txn_open(&self) -> bool {
        self.txn_open
    }
}

/// Runs a transactional call, retrying what librdkafka marks retriable
/// (timeouts) and classifying the rest.
fn retry(mut f: impl FnMut() -> Result<(), KafkaError>) -> Result<(), TxnFailure> {
    let mut attempts = 0;
    loop {
        match f() {
            Ok(()) => return Ok(()),
            Err(KafkaError::Transaction(e)) if e.is_retriable() && attempts < RETRIES => {
                attempts += 1;
                tracing::warn!(error = %e, attempts, "retrying transactional call");
            }
            Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                return Err(TxnFailure::Abortable(e.to_string()))
            }
            Err(e) => {
                return Err(TxnFailure::Fatal(RuntimeError::Kafka {
                    context: "transaction",
                    source: e,
                }))
            }
        }
    }
}

fn create_producer(cfg: &RuntimeConfig) -> Result<BaseProducer<ProducerCtx>, RuntimeError> {
    let mut pc = ClientConfig::new();
    pc.set("bootstrap.servers", &cfg.bootstrap_servers)
        .set("transactional.id", cfg.transactional_id())
        .set("enable.idempotence", "true")
        .set(
            "transaction.timeout.ms",
            cfg.transaction_timeout.as_millis().to_string(),
        )
        .set("linger.ms", "2")
        .set("queue.buffering.max.messages", "1000000")
        .set("client.id", format!("{}-producer", cfg.transactional_id()));
    for (k, v) in &cfg.producer_config {
        pc.set(k, v);
    }
    let producer: BaseProducer<ProducerCtx> = pc
        .create_with_context(ProducerCtx::default())
        .map_err(RuntimeError::kafka("create producer"))?;
    // Fences any previous incarnation with the same transactional.id and
    // aborts its open transaction.
    producer
        .init_transactions(KAFKA_TIMEOUT)
        .map_err(RuntimeError::kafka("init transactions"))?;
    Ok(producer)
}

fn read_headers(m: &BorrowedMessage<'_>) -> Vec<Header> {
    match m.headers() {
        None => Vec::new(),
        Some(h) => h
            .iter()
            .map(|h| Header {
                key: h.key.to_string(),
                value: h.value.map(<[u8]>::to_vec),
            })
            .collect(),
    }
}

/// `None` for no headers: an empty header list still costs a C allocation.
fn to_owned_headers(headers: &[Header]) -> Option<OwnedHeaders> {
    if headers.is_empty() {
        return None;
    }
    let mut oh = OwnedHeaders::new_with_capacity(headers.len());
    for h in headers {
        oh = oh.insert(KHeader {
            key: &h.key,
            value: h.value.as_deref(),
        });
    }
    Some(oh)
}
