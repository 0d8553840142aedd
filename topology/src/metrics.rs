//! Runtime metrics (names fixed by docs/metrics.md), registered into the
//! registry the application passes in.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

#[derive(Clone)]
pub struct RuntimeMetrics {
    pub records_processed: IntCounterVec,
    pub transactions_committed: IntCounter,
    pub transactions_aborted: IntCounter,
    pub commit_latency: Histogram,
    pub processing_latency: Histogram,
    pub consumer_lag: IntGaugeVec,
    pub restore_records: IntCounterVec,
    pub restore_remaining: IntGaugeVec,
    pub tasks_assigned: IntGauge,
    pub slow_inflight: IntGauge,
    pub dead_letters: IntCounterVec,
    pub store_size_bytes: IntGaugeVec,
    pub store_estimated_keys: IntGaugeVec,
}

const P: &str = "account_streams_";

impl RuntimeMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered()?;
        registry.register(Box::new(m.records_processed.clone()))?;
        registry.register(Box::new(m.transactions_committed.clone()))?;
        registry.register(Box::new(m.transactions_aborted.clone()))?;
        registry.register(Box::new(m.commit_latency.clone()))?;
        registry.register(Box::new(m.processing_latency.clone()))?;
        registry.register(Box::new(m.consumer_lag.clone()))?;
        registry.register(Box::new(m.restore_records.clone()))?;
        registry.register(Box::new(m.restore_remaining.clone()))?;
        registry.register(Box::new(m.tasks_assigned.clone()))?;
        registry.register(Box::new(m.slow_inflight.clone()))?;
        registry.register(Box::new(m.dead_letters.clone()))?;
        registry.register(Box::new(m.store_size_bytes.clone()))?;
        registry.register(Box::new(m.store_estimated_keys.clone()))?;
        Ok(m)
    }

    /// Metrics not exported anywhere (tools and tests that do not care).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        let n = |s: &str| format!("{P}{s}");
        Ok(Self {
            records_processed: IntCounterVec::new(
                Opts::new(
                    n("records_processed_total"),
                    "input and repartition records fully processed",
                ),
                &["topic"],
            )?,
            transactions_committed: IntCounter::new(
                n("transactions_committed_total"),
                "Kafka transactions committed",
            )?,
            transactions_aborted: IntCounter::new(
                n("transactions_aborted_total"),
                "transactions aborted (abortable error, rebalance, shutdown)",
            )?,
            commit_latency: Histogram::with_opts(
                HistogramOpts::new(
                    n("commit_latency_seconds"),
                    "send_offsets + commit_transaction duration",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            )?,
            processing_latency: Histogram::with_opts(
                HistogramOpts::new(
                    n("processing_latency_seconds"),
                    "record timestamp to the commit that covered it",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new(n("consumer_lag"), "high watermark minus position"),
                &["topic", "partition"],
            )?,
            restore_records: IntCounterVec::new(
                Opts::new(n("restore_records_total"), "changelog records restored"),
                &["store"],
            )?,
            restore_remaining: IntGaugeVec::new(
                Opts::new(
                    n("restore_remaining_records"),
                    "changelog records still to restore",
                ),
                &["store"],
            )?,
            tasks_assigned: IntGauge::new(n("tasks_assigned"), "tasks owned by this instance")?,
            slow_inflight: IntGauge::new(
                n("slow_inflight"),
                "records waiting in the per-key ordered slow stage",
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    n("dead_letters_total"),
                    "records written to the dead-letter topic",
                ),
                &["reason"],
            )?,
            store_size_bytes: IntGaugeVec::new(
                Opts::new(n("store_size_bytes"), "RocksDB live data size estimate"),
                &["store"],
            )?,
            store_estimated_keys: IntGaugeVec::new(
                Opts::new(n("store_estimated_keys"), "RocksDB estimated key count"),
                &["store"],
            )?,
        })
    }
}
