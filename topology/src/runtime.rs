//! Declaring a topology and running its stream thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus::Registry;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;
use state::StateDirLock;

use crate::admin::{ensure_topics, TopicSpec};
use crate::api::{ProcessorFactory, Router};
use crate::config::RuntimeConfig;
use crate::engine::{lock, Engine, StreamConsumer, StreamCtx, TopologyDef};
use crate::error::RuntimeError;
use crate::metrics::RuntimeMetrics;
use crate::status::{RuntimeStatus, ShutdownHandle};

/// Declares sources, the repartition topic, stores, sinks and the processor.
pub struct TopologyBuilder {
    cfg: RuntimeConfig,
    sources: Vec<String>,
    repartition: Option<String>,
    stores: Vec<String>,
    sinks: Vec<String>,
    router: Option<Box<dyn Router>>,
    factory: Option<Arc<dyn ProcessorFactory>>,
}

impl TopologyBuilder {
    pub fn new(cfg: RuntimeConfig) -> Self {
        Self {
            cfg,
            sources: Vec::new(),
            repartition: None,
            stores: Vec::new(),
            sinks: Vec::new(),
            router: None,
            factory: None,
        }
    }

    /// An input topic; its records go through the router.
    pub fn source(mut self, topic: impl Into<String>) -> Self {
        self.sources.push(topic.into());
        self
    }

    /// Routes input records through `<application id>-<name>-repartition`.
    pub fn router(mut self, name: impl Into<String>, router: impl Router + 'static) -> Self {
        self.repartition = Some(name.into());
        self.router = Some(Box::new(router));
        self
    }

    /// A key-value store every task gets, changelogged to
    /// `<application id>-<name>-changelog`.
    pub fn store(mut self, name: impl Into<String>) -> Self {
        self.stores.push(name.into());
        self
    }

    /// An output topic processors `send` to (its partition count is looked up).
    pub fn sink(mut self, topic: impl Into<String>) -> Self {
        self.sinks.push(topic.into());
        self
    }

    pub fn processor(mut self, factory: impl ProcessorFactory + 'static) -> Self {
        self.factory = Some(Arc::new(factory));
        self
    }

    /// Validates the declaration, creates / checks topics, takes the state
    /// directory lock and starts the stream thread.
    pub fn start(self, registry: &Registry) -> Result<RunningTopology, RuntimeError> {
        let metrics = RuntimeMetrics::register(registry)?;
        self.start_with_metrics(metrics)
    }

    pub fn start_with_metrics(
        self,
        metrics: RuntimeMetrics,
    ) -> Result<RunningTopology, RuntimeError> {
        let cfg = self.cfg;
        if cfg.partitions == 0 {
            return Err(RuntimeError::Config("partitions must be at least 1".into()));
        }
        if self.sources.is_empty() {
            return Err(RuntimeError::Config("no source topic declared".into()));
        }
        let (Some(rp), Some(router)) = (self.repartition, self.router) else {
            return Err(RuntimeError::Config("no router declared".into()));
        };
        let Some(factory) = self.factory else {
            return Err(RuntimeError::Config("no processor declared".into()));
        };
        let lock_guard = StateDirLock::acquire(&cfg.app_state_dir())?;
        let repartition_topic = cfg.repartition_topic(&rp);
        let changelog_topics: Vec<String> =
            self.stores.iter().map(|s| cfg.changelog_topic(s)).collect();
        let dead_letter_topic = cfg.dead_letter_topic();
        let mut specs = vec![TopicSpec {
            name: repartition_topic.clone(),
            partitions: cfg.partitions,
            compacted: false,
            strict: true,
        }];
        for t in &changelog_topics {
            specs.push(TopicSpec {
                name: t.clone(),
                partitions: cfg.partitions,
                compacted: true,
                strict: true,
            });
        }
        // Input topics belong to their producers, but a missing one is
        // created like a sink: subscribing to a topic that does not exist
        // yet would read nothing until librdkafka's next metadata refresh
        // (minutes), silently ignoring the first commands.
        for t in self
            .sources
            .iter()
            .chain(self.sinks.iter())
            .chain(std::iter::once(&dead_letter_topic))
        {
            specs.push(TopicSpec {
                name: t.clone(),
                partitions: cfg.sink_partitions.unwrap_or(cfg.partitions),
                compacted: false,
                strict: false,
            });
        }
        let counts = ensure_topics(&cfg.bootstrap_servers, cfg.replication_factor, &specs)?;
        let def = Arc::new(TopologyDef {
            sources: self.sources,
            repartition_topic,
            stores: self.stores,
            changelog_topics,
            dead_letter_topic,
            partition_counts: counts,
        });
        let slow = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.slow_worker_threads.max(1))
            .thread_name("slow-work")
            .enable_all()
            .build()?;
        let status = RuntimeStatus::default();
        let shutdown = ShutdownHandle::new();
        status.set_running(true);
        let thread = StreamThread {
            cfg: Arc::new(cfg),
            def,
            router: Some(router),
            factory,
            metrics,
            status: status.clone(),
            shutdown: shutdown.clone(),
        };
        let thread_status = status.clone();
        let handle = std::thread::Builder::new()
            .name("stream".into())
            .spawn(move || {
                let _lock = lock_guard;
                let result = thread.run(slow.handle().clone());
                if let Err(e) = &result {
                    tracing::error!(error = %e, "stream thread stopped with an error");
                }
                thread_status.set_ready(false);
                thread_status.set_running(false);
                slow.shutdown_timeout(Duration::from_millis(200));
                result
            })?;
        Ok(RunningTopology {
            status,
            shutdown,
            handle: Some(handle),
        })
    }
}

/// A started topology.
pub struct RunningTopology {
    status: RuntimeStatus,
    shutdown: ShutdownHandle,
    handle: Option<JoinHandle<Result<(), RuntimeError>>>,
}

impl RunningTopology {
    pub fn status(&self) -> RuntimeStatus {
        self.status.clone()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Waits for the stream thread (after shutdown or a fatal error).
    pub fn join(mut self) -> Result<(), RuntimeError> {
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| RuntimeError::Panicked)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningTopology {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.shutdown.shutdown();
            let _ = h.join();
        }
    }
}

struct StreamThread {
    cfg: Arc<RuntimeConfig>,
    def: Arc<TopologyDef>,
    router: Option<Box<dyn Router>>,
    factory: Arc<dyn ProcessorFactory>,
    metrics: RuntimeMetrics,
    status: RuntimeStatus,
    shutdown: ShutdownHandle,
}

enum SessionEnd {
    Shutdown,
    /// Fenced or fatal Kafka error: new producer and consumer, rejoin.
    Restart(RuntimeError, Box<dyn Router>),
}

impl StreamThread {
    fn run(mut self, slow: tokio::runtime::Handle) -> Result<(), RuntimeError> {
        loop {
            let router = self
                .router
                .take()
                .ok_or_else(|| RuntimeError::Config("router missing".into()))?;
            match self.session(router, slow.clone())? {
                SessionEnd::Shutdown => return Ok(()),
                SessionEnd::Restart(e, router) => {
                    tracing::error!(error = %e, "stream session failed; recreating producer and consumer");
                    self.router = Some(router);
                    std::thread::sleep(Duration::from_secs(1));
                    if self.shutdown.is_shutdown() {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn session(
        &self,
        router: Box<dyn Router>,
        slow: tokio::runtime::Handle,
    ) -> Result<SessionEnd, RuntimeError> {
        let engine = Engine::new(
            self.cfg.clone(),
            self.def.clone(),
            router,
            self.factory.clone(),
            self.metrics.clone(),
            self.status.clone(),
            self.shutdown.clone(),
            slow,
        )?;
        let engine = Arc::new(Mutex::new(engine));
        let consumer = create_consumer(&self.cfg, engine.clone())?;
        let mut topics: Vec<&str> = self.def.sources.iter().map(String::as_str).collect();
        topics.push(&self.def.repartition_topic);
        consumer
            .subscribe(&topics)
            .map_err(RuntimeError::kafka("subscribe"))?;
        let outcome = self.poll_loop(&consumer, &engine);
        {
            let mut e = lock(&engine);
            if outcome.is_ok() {
                // Finish (or abort) the open transaction before leaving, in
                // time to exit within the shutdown deadline.
                e.barrier_limit = e.barrier_limit.min(self.cfg.shutdown_timeout / 2);
                if let Err(err) = e.commit(&consumer, false) {
                    tracing::error!(error = %err, "final commit failed");
                }
            }
            if e.txn_open() {
                if let Err(err) = e.abort(&consumer, false) {
                    tracing::warn!(error = %err, "abort on session end failed");
                }
            }
            e.closing = true;
        }
        // Closing the consumer runs the revoke callback (`closing` keeps it
        // from committing again) and leaves the group.
        drop(consumer);
        let mut e = lock(&engine);
        e.close_tasks();
        let router = e.take_router();
        match outcome {
            Ok(()) => Ok(SessionEnd::Shutdown),
            Err(err) if is_fatal_kafka(&err) => match router {
                Some(r) => Ok(SessionEnd::Restart(err, r)),
                None => Err(err),
            },
            Err(err) => Err(err),
        }
    }

    fn poll_loop(
        &self,
        consumer: &StreamConsumer,
        engine: &Arc<Mutex<Engine>>,
    ) -> Result<(), RuntimeError> {
        while !self.shutdown.is_shutdown() {
            // Records waiting for slow work: wake up soon to collect it.
            let busy = lock(engine).busy();
            let timeout = if busy {
                Duration::from_millis(1)
            } else {
                self.cfg.commit_interval.min(Duration::from_millis(50))
            };
            let mut polled = 0;
            while polled < 2000 {
                let t = if polled == 0 { timeout } else { Duration::ZERO };
                match consumer.poll(t) {
                    Some(Ok(m)) => {
                        polled += 1;
                        lock(engine).on_message(&m)?;
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => {
                        return Err(RuntimeError::Kafka {
                            context: "consume",
                            source: e,
                        })
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "consumer error");
                        break;
                    }
                    None => break,
                }
            }
            let mut e = lock(engine);
            if let Some(f) = e.fatal.take() {
                return Err(f);
            }
            e.tick(consumer)?;
        }
        Ok(())
    }
}

fn is_fatal_kafka(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Kafka { .. })
}

fn create_consumer(
    cfg: &RuntimeConfig,
    engine: Arc<Mutex<Engine>>,
) -> Result<StreamConsumer, RuntimeError> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &cfg.bootstrap_servers)
        .set("group.id", &cfg.application_id)
        .set(
            "client.id",
            format!("{}-{}-consumer", cfg.application_id, cfg.instance_id),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set(
            "session.timeout.ms",
            cfg.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (cfg.session_timeout.as_millis() / 4).max(500).to_string(),
        )
        .set("fetch.wait.max.ms", "50")
        .set("partition.assignment.strategy", "range");
    if cfg.static_membership {
        cc.set("group.instance.id", &cfg.instance_id);
    }
    for (k, v) in &cfg.consumer_config {
        cc.set(k, v);
    }
    cc.create_with_context(StreamCtx { engine })
        .map_err(RuntimeError::kafka("create consumer"))
}

/// Partition counts of arbitrary topics (tools and tests).
pub fn topic_partition_counts(
    bootstrap: &str,
    topics: &[String],
) -> Result<HashMap<String, u32>, RuntimeError> {
    crate::admin::partition_counts(bootstrap, topics)
}
