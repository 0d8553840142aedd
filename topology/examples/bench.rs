//! Benchmarks printed by scripts/bench-runtime (not a test):
//!
//! * `ceiling N`: the broker's transactional produce ceiling: one
//!   transactional producer, records shaped like the toy's (key "kNNN",
//!   decimal value), a commit every 100 ms, as fast as the broker takes them.
//! * `toy N`: end-to-end EOS throughput of the toy counting topology (route
//!   -> repartition -> count -> output, changelog) over N preloaded records.
//! * `restore N`: restore rate of N changelog records into an empty task.
//!
//! Each prints one line `<name> <records> <seconds> <records/s>`.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use topology::{
    partition_for_key, Context, InputRecord, ProcessError, Processor, Record, Route, RouteDecision,
    RuntimeConfig, RuntimeMetrics, Step, TaskStores, TopologyBuilder,
};

fn bootstrap() -> String {
    std::env::var("BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

fn create_topic(name: &str, partitions: i32, compact: bool) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin");
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    if compact {
        t = t.set("cleanup.policy", "compact");
    }
    for r in futures::executor::block_on(admin.create_topics([&t], &AdminOptions::new()))
        .expect("create")
    {
        r.expect("created");
    }
}

/// The bench writes hundreds of MB; drop its topics so repeated runs do not
/// fill the disk of a local broker.
fn delete_topics(names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin");
    if let Err(e) = futures::executor::block_on(admin.delete_topics(names, &AdminOptions::new())) {
        eprintln!("deleting bench topics failed: {e}");
    }
}

fn key(i: usize, keys: usize) -> String {
    format!("k{}", i % keys)
}

fn report(name: &str, n: usize, d: Duration) {
    println!(
        "{name} {n} {:.3} {:.0}",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    );
}

fn ceiling(n: usize) {
    let topic = format!("bench-ceiling-{}", suffix());
    create_topic(&topic, 6, false);
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("transactional.id", format!("bench-ceiling-{}", suffix()))
        .set("linger.ms", "2")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    p.init_transactions(Duration::from_secs(30)).expect("init");
    let started = Instant::now();
    let mut last_commit = Instant::now();
    p.begin_transaction().expect("begin");
    for i in 0..n {
        let k = key(i, 1000);
        let v = (i / 1000 + 1).to_string();
        let part = partition_for_key(k.as_bytes(), 6) as i32;
        let mut rec = BaseRecord::<str, str>::to(&topic)
            .key(&k)
            .payload(&v)
            .partition(part);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(1));
                }
            }
        }
        if last_commit.elapsed() >= Duration::from_millis(100) {
            while p.in_flight_count() > 0 {
                p.poll(Duration::from_millis(1));
            }
            p.commit_transaction(Duration::from_secs(30))
                .expect("commit");
            p.begin_transaction().expect("begin");
            last_commit = Instant::now();
        }
    }
    while p.in_flight_count() > 0 {
        p.poll(Duration::from_millis(1));
    }
    p.commit_transaction(Duration::from_secs(30))
        .expect("commit");
    report("ceiling", n, started.elapsed());
}

struct Count {
    output: String,
}

impl Processor for Count {
    fn process(&mut self, ctx: &mut Context<'_>, r: &Record) -> Result<Step, ProcessError> {
        let key = r.key.clone().unwrap_or_default();
        let cur = match ctx.get("counts", &key)? {
            Some(v) => u64::from_be_bytes(v.as_slice().try_into()?),
            None => 0,
        };
        let total = cur + 1;
        ctx.put("counts", &key, &total.to_be_bytes())?;
        ctx.send(
            &self.output,
            Some(&key),
            Some(total.to_string().as_bytes()),
            Vec::new(),
        );
        Ok(Step::Done)
    }
}

fn toy(n: usize) {
    let app = format!("bench-toy-{}", suffix());
    let input = format!("{app}-in");
    let output = format!("{app}-out");
    create_topic(&input, 6, false);
    create_topic(&output, 6, false);
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    for i in 0..n {
        let k = key(i, 1000);
        let mut rec = BaseRecord::<str, str>::to(&input).key(&k).payload("1");
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(1));
                }
            }
        }
    }
    p.flush(Duration::from_secs(60)).expect("flush");
    let state = tempfile::tempdir().expect("tempdir");
    let cfg = RuntimeConfig::new(bootstrap(), app.clone(), "bench", 6, state.path());
    let metrics = RuntimeMetrics::unregistered().expect("metrics");
    let out = output.clone();
    let running = TopologyBuilder::new(cfg)
        .source(input.clone())
        .router("counter", |r: &InputRecord<'_>, parts: u32| {
            RouteDecision::Route(Route {
                partition: partition_for_key(r.key.unwrap_or_default(), parts),
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: Vec::new(),
            })
        })
        .store("counts")
        .sink(output.clone())
        .processor(move |_p: u32| {
            Box::new(Count {
                output: out.clone(),
            }) as Box<dyn Processor>
        })
        .start_with_metrics(metrics.clone())
        .expect("start");
    let status = running.status();
    while !status.is_ready() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let repartition = format!("{app}-counter-repartition");
    let processed = metrics.records_processed.with_label_values(&[&repartition]);
    while (processed.get() as usize) < n {
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "toy bench timed out"
        );
    }
    let took = started.elapsed();
    running.shutdown_handle().shutdown();
    running.join().expect("join");
    delete_topics(&[
        &input,
        &output,
        &repartition,
        &format!("{app}-counts-changelog"),
        &format!("{app}-dead-letters"),
    ]);
    report("toy", n, took);
}

fn restore(n: usize) {
    let app = format!("bench-restore-{}", suffix());
    let topic = format!("{app}-counts-changelog");
    create_topic(&topic, 1, true);
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "2000000")
        .create()
        .expect("producer");
    // Account-sized records: 20-byte keys, 120-byte values.
    let value = [b'x'; 120];
    for i in 0..n {
        let k = format!("tenant-0000-{i:08}");
        let mut rec = BaseRecord::<str, [u8]>::to(&topic)
            .key(&k)
            .payload(&value[..])
            .partition(0);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(1));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    let state = tempfile::tempdir().expect("tempdir");
    let cfg = RuntimeConfig::new(bootstrap(), app, "bench", 1, state.path());
    let names = ["counts".to_string()];
    // BENCH_RESTORE_MEMORY=1 separates the Kafka read cost from RocksDB's.
    let mut stores = if std::env::var("BENCH_RESTORE_MEMORY").is_ok_and(|v| v == "1") {
        TaskStores::in_memory(&names)
    } else {
        TaskStores::open_rocksdb(&cfg.task_dir(0), &names).expect("open")
    };
    let started = Instant::now();
    let restored = topology::restore_task(&cfg, &mut stores, 0).expect("restore");
    let took = started.elapsed();
    delete_topics(&[&topic]);
    assert_eq!(restored as usize, n, "restored record count");
    report("restore", n, took);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    match args.get(1).map(String::as_str) {
        Some("ceiling") => ceiling(n),
        Some("toy") => toy(n),
        Some("restore") => restore(n),
        _ => {
            eprintln!("usage: bench ceiling|toy|restore N");
            std::process::exit(2);
        }
    }
}
