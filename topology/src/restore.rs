//! Rebuilds a task's stores from their changelogs, from each store's
//! checkpoint to the end of the changelog partition.
//!
//! The reader is read_committed, so aborted writes never reach a store, and
//! "the end" is the last stable offset: a ListOffsets(latest) request of a
//! read_committed client answers the LSO. Control records (transaction
//! markers) take offsets too, so the last data record may lie below the end;
//! the consumer position (which moves past markers) tells when we are there.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use state::TaskStores;

use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::metrics::RuntimeMetrics;
use crate::status::ShutdownHandle;

const BATCH: usize = 20_000;
const TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) struct Restorer {
    /// read_committed, assign-only: reads changelogs; its ListOffsets is the LSO.
    consumer: BaseConsumer,
    meta: BaseConsumer,
}

impl Restorer {
    pub fn new(cfg: &RuntimeConfig) -> Result<Self, RuntimeError> {
        let mut cc = ClientConfig::new();
        cc.set("bootstrap.servers", &cfg.bootstrap_servers)
            .set("group.id", format!("{}-restore", cfg.application_id))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("fetch.max.bytes", "104857600")
            .set("max.partition.fetch.bytes", "16777216")
            .set("queued.max.messages.kbytes", "262144")
            .set("queued.min.messages", "1000000");
        let consumer: BaseConsumer = cc
            .create()
            .map_err(RuntimeError::kafka("restore consumer"))?;
        // read_uncommitted: its ListOffsets answers the high watermark.
        let meta: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &cfg.bootstrap_servers)
            .set("isolation.level", "read_uncommitted")
            .create()
            .map_err(RuntimeError::kafka("changelog metadata client"))?;
        Ok(Self { consumer, meta })
    }

    /// Log start, high watermark and last stable offset of a changelog
    /// partition, once no transaction is open on it.
    ///
    /// We own the task, so an open transaction there belongs to a previous
    /// owner that died mid-commit; the broker aborts it within the transaction
    /// timeout (or at once when that owner restarts). Reading only up to a
    /// stuck LSO could miss records committed *after* that transaction began,
    /// so we wait for it to resolve (bounded: afterwards we go with the LSO).
    fn wait_stable(
        &self,
        topic: &str,
        partition: u32,
        txn_timeout: Duration,
        shutdown: &ShutdownHandle,
    ) -> Result<(i64, i64, i64), RuntimeError> {
        let limit = Instant::now() + txn_timeout * 2 + Duration::from_secs(15);
        let mut logged = Instant::now();
        loop {
            let (low, high) = self
                .meta
                .fetch_watermarks(topic, partition as i32, TIMEOUT)
                .map_err(RuntimeError::kafka("changelog high watermark"))?;
            let (_, stable) = self
                .consumer
                .fetch_watermarks(topic, partition as i32, TIMEOUT)
                .map_err(RuntimeError::kafka("changelog last stable offset"))?;
            if stable >= high || shutdown.is_shutdown() {
                return Ok((low, high, stable));
            }
            if Instant::now() > limit {
                tracing::error!(
                    topic, partition, high, stable,
                    "a transaction on the changelog is still open; restoring up to the last stable offset"
                );
                return Ok((low, high, stable));
            }
            if logged.elapsed() >= Duration::from_secs(1) {
                logged = Instant::now();
                tracing::info!(
                    topic,
                    partition,
                    high,
                    stable,
                    "waiting for a previous owner's open transaction on the changelog to end"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The fetch position (past transaction markers) of the partition being restored.
    fn position(&self, topic: &str, partition: u32) -> Result<i64, RuntimeError> {
        let pos = self
            .consumer
            .position()
            .map_err(RuntimeError::kafka("restore position"))?;
        Ok(pos
            .find_partition(topic, partition as i32)
            .and_then(|e| e.offset().to_raw())
            .unwrap_or(-1))
    }

    /// Restores every store of the task; returns the number of records applied.
    pub fn restore(
        &self,
        cfg: &RuntimeConfig,
        stores: &mut TaskStores,
        partition: u32,
        metrics: &RuntimeMetrics,
        shutdown: &ShutdownHandle,
    ) -> Result<u64, RuntimeError> {
        let names: Vec<String> = stores.names().to_vec();
        let mut ends = Vec::with_capacity(names.len());
        let mut wipe = false;
        for (s, name) in names.iter().enumerate() {
            let topic = cfg.changelog_topic(name);
            let (low, high, stable) =
                self.wait_stable(&topic, partition, cfg.transaction_timeout, shutdown)?;
            if let Some(cp) = stores.checkpoint(s)? {
                if cp > high || cp < low {
                    tracing::warn!(
                        store = %name, task = partition, checkpoint = cp, low, high,
                        "local state does not match its changelog (recreated topic or truncated log); wiping the task and restoring from scratch"
                    );
                    wipe = true;
                }
            }
            ends.push((low, stable));
        }
        if wipe {
            stores.wipe()?;
        }
        let mut total_restored = 0;
        for (s, name) in names.iter().enumerate() {
            let (low, high) = ends[s];
            let start = stores.checkpoint(s)?.unwrap_or(low).max(low);
            if start >= high {
                continue;
            }
            total_restored += self.restore_store(
                cfg, stores, s, name, partition, start, high, metrics, shutdown,
            )?;
        }
        if total_restored > 0 || wipe {
            stores.finish_restore()?;
        }
        Ok(total_restored)
    }

    #[allow(clippy::too_many_arguments)]
    fn restore_store(
        &self,
        cfg: &RuntimeConfig,
        stores: &mut TaskStores,
        s: usize,
        name: &str,
        partition: u32,
        start: i64,
        high: i64,
        metrics: &RuntimeMetrics,
        shutdown: &ShutdownHandle,
    ) -> Result<u64, RuntimeError> {
        let topic = cfg.changelog_topic(name);
        let total = (high - start) as u64;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, partition as i32, Offset::Offset(start))
            .map_err(RuntimeError::kafka("restore assignment"))?;
        self.consumer
            .assign(&tpl)
            .map_err(RuntimeError::kafka("restore assign"))?;
        let started = Instant::now();
        let mut last_log = Instant::now();
        let mut batch = Vec::with_capacity(BATCH);
        let mut next = start;
        let mut done: u64 = 0;
        let remaining = metrics.restore_remaining.with_label_values(&[name]);
        let restored = metrics.restore_records.with_label_values(&[name]);
        remaining.set(total as i64);
        tracing::info!(
            store = name,
            task = partition,
            from = start,
            to = high,
            "restoring"
        );
        loop {
            match self.consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    batch.push((
                        m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                        m.payload().map(<[u8]>::to_vec),
                    ));
                    next = m.offset() + 1;
                    if batch.len() >= BATCH {
                        done += batch.len() as u64;
                        restored.inc_by(batch.len() as u64);
                        stores.restore_batch(s, std::mem::take(&mut batch), next)?;
                        remaining.set(total.saturating_sub(done) as i64);
                    }
                    if next >= high {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => {
                    return Err(RuntimeError::Kafka {
                        context: "restore poll",
                        source: e,
                    })
                }
                None => {
                    if shutdown.is_shutdown() || self.position(&topic, partition)? >= high {
                        break;
                    }
                }
            }
            if last_log.elapsed() >= Duration::from_secs(1) {
                last_log = Instant::now();
                tracing::info!(
                    store = name,
                    task = partition,
                    records_done = done + batch.len() as u64,
                    records_total = total,
                    "restore progress"
                );
            }
        }
        if !batch.is_empty() {
            done += batch.len() as u64;
            restored.inc_by(batch.len() as u64);
            stores.restore_batch(s, batch, next)?;
        }
        remaining.set(0);
        self.consumer
            .unassign()
            .map_err(RuntimeError::kafka("restore unassign"))?;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            store = name,
            task = partition,
            records_done = done,
            records_total = total,
            seconds = secs,
            records_per_sec = if secs > 0.0 { done as f64 / secs } else { 0.0 },
            "restore complete"
        );
        Ok(done)
    }
}

/// Restores one task's stores from their changelogs outside a running
/// topology (tools, benchmarks); returns the number of records applied.
pub fn restore_task(
    cfg: &RuntimeConfig,
    stores: &mut TaskStores,
    partition: u32,
) -> Result<u64, RuntimeError> {
    let metrics = RuntimeMetrics::unregistered()?;
    Restorer::new(cfg)?.restore(cfg, stores, partition, &metrics, &ShutdownHandle::new())
}
