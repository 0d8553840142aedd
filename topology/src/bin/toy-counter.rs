//! Toy counting topology used by the runtime's exactly-once tests and the
//! benchmark: input records `key -> increment` (decimal), output `key ->
//! running total` (decimal), state `counts: key -> u64 BE`.
//!
//! Configured by environment variables (all optional except the topics):
//! BOOTSTRAP_SERVERS, TOY_APP_ID, TOY_INSTANCE_ID, TOY_INPUT, TOY_OUTPUT,
//! TOY_STATE_DIR, TOY_PARTITIONS, TOY_COMMIT_MS, TOY_SESSION_TIMEOUT_MS,
//! TOY_SLOW_EVERY / TOY_SLOW_MS (every n-th offset goes through the slow stage),
//! TOY_TXN_TIMEOUT_MS, TOY_OVERSIZE_ONCE (the first output of the process is
//! padded to 100 KB, so a broker with a smaller limit fails the transaction:
//! exercises abort and rewind).

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use topology::{
    partition_for_key, Context, DeadLetter, InputRecord, ProcessError, Processor, Record, Route,
    RouteDecision, RuntimeConfig, SlowOutput, Step, TopologyBuilder,
};

const STORE: &str = "counts";

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_str(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

struct Counter {
    output: String,
    slow_every: i64,
    slow_ms: u64,
    /// Shared by all tasks of the process: set until the oversized output was sent.
    oversize_pending: Arc<AtomicBool>,
}

impl Counter {
    fn apply(&self, ctx: &mut Context<'_>, record: &Record) -> Result<(), ProcessError> {
        let key = record.key.clone().unwrap_or_default();
        let inc: u64 = std::str::from_utf8(record.value.as_deref().unwrap_or_default())?
            .trim()
            .parse()?;
        let current = match ctx.get(STORE, &key)? {
            Some(v) => u64::from_be_bytes(v.as_slice().try_into()?),
            None => 0,
        };
        let total = current + inc;
        ctx.put(STORE, &key, &total.to_be_bytes())?;
        let mut value = total.to_string();
        if self.oversize_pending.swap(false, Ordering::AcqRel) {
            value.push_str(&" ".repeat(100_000));
        }
        ctx.send(
            &self.output,
            Some(&key),
            Some(value.as_bytes()),
            record.headers.clone(),
        );
        Ok(())
    }
}

impl Processor for Counter {
    fn process(&mut self, ctx: &mut Context<'_>, record: &Record) -> Result<Step, ProcessError> {
        if self.slow_every > 0 && record.offset % self.slow_every == 0 {
            let ms = self.slow_ms;
            return Ok(Step::Slow(Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Box::new(()) as SlowOutput
            })));
        }
        self.apply(ctx, record)?;
        Ok(Step::Done)
    }

    fn resume(
        &mut self,
        ctx: &mut Context<'_>,
        record: &Record,
        _output: SlowOutput,
    ) -> Result<Step, ProcessError> {
        self.apply(ctx, record)?;
        Ok(Step::Done)
    }
}

fn route(r: &InputRecord<'_>, partitions: u32) -> RouteDecision {
    let Some(key) = r.key else {
        return RouteDecision::DeadLetter(DeadLetter {
            reason: "no_key",
            error: "record has no key".into(),
            value: r.value.map(<[u8]>::to_vec),
        });
    };
    let valid = r
        .value
        .and_then(|v| std::str::from_utf8(v).ok())
        .is_some_and(|s| s.trim().parse::<u64>().is_ok());
    if !valid {
        return RouteDecision::DeadLetter(DeadLetter {
            reason: "bad_value",
            error: "value is not a decimal increment".into(),
            value: r.value.map(<[u8]>::to_vec),
        });
    }
    RouteDecision::Route(Route {
        partition: partition_for_key(key, partitions),
        key: Some(key.to_vec()),
        value: r.value.map(<[u8]>::to_vec),
        headers: r.headers.to_vec(),
    })
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if let Err(e) = run() {
        tracing::error!(error = %e, "toy-counter failed");
        eprintln!("toy-counter: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), topology::RuntimeError> {
    let bootstrap = env_str("BOOTSTRAP_SERVERS", "127.0.0.1:9092");
    let app_id = env_str("TOY_APP_ID", "toy-counter");
    let instance = env_str("TOY_INSTANCE_ID", "toy-1");
    let input = env_str("TOY_INPUT", "toy-input");
    let output = env_str("TOY_OUTPUT", "toy-output");
    let state_dir = env_str("TOY_STATE_DIR", "/tmp/toy-counter-state");
    let partitions: u32 = env_or("TOY_PARTITIONS", 6);
    let mut cfg = RuntimeConfig::new(bootstrap, app_id, instance, partitions, state_dir);
    cfg.commit_interval = Duration::from_millis(env_or("TOY_COMMIT_MS", 100));
    cfg.session_timeout = Duration::from_millis(env_or("TOY_SESSION_TIMEOUT_MS", 10_000));
    cfg.transaction_timeout = Duration::from_millis(env_or("TOY_TXN_TIMEOUT_MS", 10_000));
    cfg.max_inflight_slow = env_or("TOY_MAX_INFLIGHT", 256);
    let slow_every: i64 = env_or("TOY_SLOW_EVERY", 0);
    let slow_ms: u64 = env_or("TOY_SLOW_MS", 5);
    let oversize_pending = Arc::new(AtomicBool::new(env_or("TOY_OVERSIZE_ONCE", 0u8) == 1));
    let registry = prometheus::Registry::new();
    let out = output.clone();
    let running = TopologyBuilder::new(cfg)
        .source(input)
        .router("counter", route)
        .store(STORE)
        .sink(output)
        .processor(move |_p: u32| {
            Box::new(Counter {
                output: out.clone(),
                slow_every,
                slow_ms,
                oversize_pending: oversize_pending.clone(),
            }) as Box<dyn Processor>
        })
        .start(&registry)?;
    let shutdown = running.shutdown_handle();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        });
        tracing::info!("signal received; shutting down");
        shutdown.shutdown();
    });
    let status = running.status();
    std::thread::spawn(move || {
        let mut announced = false;
        while status.is_running() {
            if !announced && status.is_ready() {
                announced = true;
                tracing::info!(tasks = status.task_count(), "toy-counter ready");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let result = running.join();
    tracing::info!("toy-counter stopped");
    result
}
