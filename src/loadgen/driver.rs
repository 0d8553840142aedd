//! The Kafka side of the generator: topics, producing, consuming, pacing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::commands::{Command, InputTopic, Tenant};
use super::events::{decode, OutputEvent, OutputTopic};
use super::flow::{Class, Expect, Flow, Judgement, Profile};
use super::stats::Stats;
use super::LoadgenArgs;

#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{0}")]
    Setup(String),
}

/// What a run produced.
#[derive(Debug)]
pub struct RunReport {
    pub stats: Stats,
    pub elapsed: Duration,
}

struct Pending {
    expect: Expect,
    class: Class,
    sent: Instant,
}

/// Everything received from the output topics.
struct Received {
    event: Option<OutputEvent>,
    at: Instant,
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the generator until its duration or command budget is used up and
/// every answer is in (or timed out).
pub async fn run(args: LoadgenArgs) -> Result<RunReport, LoadgenError> {
    if args.accounts == 0 || args.tenants == 0 {
        return Err(LoadgenError::Setup(
            "--accounts and --tenants must be at least 1".into(),
        ));
    }
    if args.open_loop > 0 && args.mode != super::flow::Mode::Sessions {
        return Err(LoadgenError::Setup(
            "--open-loop needs --mode sessions".into(),
        ));
    }
    let dead_letter = args
        .dead_letter_topic
        .clone()
        .unwrap_or_else(|| format!("{}-dead-letters", args.application_id));
    let outputs = [
        (
            args.event_topic_account_status.clone(),
            OutputTopic::AccountStatus,
        ),
        (
            args.event_topic_account_session_status.clone(),
            OutputTopic::SessionStatus,
        ),
        (args.command_topic_ban.clone(), OutputTopic::Ban),
        (dead_letter, OutputTopic::DeadLetter),
    ];
    let inputs = [
        (args.command_topic_account.clone(), InputTopic::Account),
        (
            args.command_topic_account_session.clone(),
            InputTopic::Session,
        ),
    ];

    let mut all_topics: Vec<String> = inputs.iter().map(|(t, _)| t.clone()).collect();
    all_topics.extend(outputs.iter().map(|(t, _)| t.clone()));
    ensure_topics(&args.bootstrap_servers, &all_topics, args.topic_partitions).await?;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap_servers)
        .set("group.id", format!("loadgen-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let assignment = start_positions(&args.bootstrap_servers, &outputs).await?;
    consumer.assign(&assignment)?;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        // The open-loop phase queues its whole batch at once.
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut partitions = HashMap::new();
    for (topic, kind) in &inputs {
        let n = partition_count(&args.bootstrap_servers, topic).await?;
        partitions.insert(*kind, (topic.clone(), n));
    }

    let (tx, mut rx) = mpsc::channel::<Received>(10_000);
    let topic_kinds: HashMap<String, OutputTopic> = outputs.iter().cloned().collect();
    let reader = tokio::spawn(async move {
        loop {
            match consumer.recv().await {
                Ok(m) => {
                    let at = Instant::now();
                    let Some(kind) = topic_kinds.get(m.topic()).copied() else {
                        continue;
                    };
                    let headers: Vec<(String, Vec<u8>)> = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let event = decode(kind, m.payload(), &headers);
                    if tx.send(Received { event, at }).await.is_err() {
                        break;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "loadgen consumer error"),
            }
        }
    });

    let tenants = make_tenants(args.seed, args.tenants);
    let tenant_index: HashMap<Uuid, usize> =
        tenants.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    let prefix = args
        .name_prefix
        .clone()
        .unwrap_or_else(|| format!("lg{:06x}-", rand::rng().random::<u32>() & 0xFF_FFFF));
    let profile = Profile {
        mode: args.mode,
        max_pin_attempts: args.max_pin_attempts,
    };
    let mut flows: Vec<Flow> = (0..args.accounts)
        .map(|i| Flow::new(i, i % args.tenants, &prefix, args.seed, profile))
        .collect();
    let mut pending: Vec<Option<Pending>> = (0..args.accounts).map(|_| None).collect();
    let mut waiters: HashMap<(usize, Expect), usize> = HashMap::new();
    let mut ready: VecDeque<usize> = (0..args.accounts).collect();
    // Open loop: flows that reached the channel cycle wait here for phase 2.
    let mut parked: Vec<usize> = Vec::new();
    let mut traces: HashSet<u128> = HashSet::new();
    let mut deliveries: FuturesUnordered<DeliveryFuture> = FuturesUnordered::new();
    let mut stats = Stats::default();
    let mut rr: HashMap<InputTopic, i32> = HashMap::new();

    let duration = match (args.duration, args.commands) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(20)),
    };
    let answer_timeout = if args.answer_timeout.is_zero() {
        TIMEOUT
    } else {
        args.answer_timeout
    };
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut tokens: f64 = 1.0;
    let mut last_refill = Instant::now();
    let mut stop_sending_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            Some(r) = rx.recv() => {
                on_received(r, &mut stats, &traces, &tenant_index, &mut waiters, &mut pending,
                    &mut flows, &mut ready, args.print_events);
                while let Ok(r) = rx.try_recv() {
                    on_received(r, &mut stats, &traces, &tenant_index, &mut waiters, &mut pending,
                        &mut flows, &mut ready, args.print_events);
                }
            }
            Some(d) = deliveries.next(), if !deliveries.is_empty() => {
                match d {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => {
                        stats.produce_errors += 1;
                        tracing::warn!(error = %e, "produce failed");
                    }
                    Err(_) => stats.produce_errors += 1,
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if args.rate > 0.0 {
                    let dt = now.duration_since(last_refill).as_secs_f64();
                    tokens = (tokens + args.rate * dt).min(args.rate * 0.05 + 1.0);
                }
                last_refill = now;
                // Timeouts.
                for i in 0..pending.len() {
                    let due = matches!(&pending[i], Some(p) if now.duration_since(p.sent) > answer_timeout);
                    if due {
                        if let Some(p) = pending[i].take() {
                            waiters.remove(&(flows[i].tenant, p.expect));
                            stats.timeouts += 1;
                            flows[i].on_answer(None, true);
                            ready.push_back(i);
                        }
                    }
                }
            }
        }

        let sending = stop_sending_at.is_none();
        if sending {
            let out_of_time = duration.is_some_and(|d| started.elapsed() >= d);
            let out_of_commands = args.commands.is_some_and(|n| sent >= n);
            if out_of_time || out_of_commands {
                stop_sending_at = Some(Instant::now());
            }
        }
        if stop_sending_at.is_none() {
            let rounds = ready.len();
            for _ in 0..rounds {
                if args.rate > 0.0 && tokens < 1.0 {
                    break;
                }
                if args.commands.is_some_and(|n| sent >= n) {
                    break;
                }
                let Some(i) = ready.pop_front() else { break };
                if args.open_loop > 0 && flows[i].in_channel() {
                    parked.push(i);
                    continue;
                }
                let step = flows[i].next_step(&tenants);
                if let Err(e) = send(
                    &producer,
                    &partitions,
                    &mut rr,
                    &step.command,
                    &mut deliveries,
                    None,
                ) {
                    stats.produce_errors += 1;
                    tracing::warn!(error = %e, "produce failed");
                    flows[i].on_answer(None, true);
                    ready.push_back(i);
                    continue;
                }
                tokens -= 1.0;
                sent += 1;
                stats.command(step.command.topic.token(), step.command.kind);
                traces.insert(step.command.trace.trace_id);
                if step.expect == Expect::Nothing {
                    flows[i].on_answer(None, false);
                    ready.push_back(i);
                } else {
                    waiters.insert((flows[i].tenant, step.expect.clone()), i);
                    pending[i] = Some(Pending {
                        expect: step.expect,
                        class: step.class,
                        sent: Instant::now(),
                    });
                }
            }
        } else if waiters.is_empty() && deliveries.is_empty() {
            break;
        }
        if args.open_loop > 0
            && stop_sending_at.is_none()
            && ready.is_empty()
            && waiters.is_empty()
            && deliveries.is_empty()
            && !parked.is_empty()
        {
            // Every player is on a channel (or parked after a timeout's recovery).
            break;
        } else if stop_sending_at
            .is_some_and(|t| t.elapsed() > answer_timeout + Duration::from_secs(1))
        {
            // Whatever is still pending has timed out by now.
            stats.timeouts += waiters.len() as u64;
            break;
        }
    }
    if args.open_loop > 0 {
        let open = OpenLoop {
            commands: args.open_loop,
            rate: args.rate,
            idle_timeout: answer_timeout,
        };
        let report = open
            .run(
                &mut flows,
                &parked,
                &tenants,
                &tenant_index,
                &producer,
                &partitions,
                &mut rx,
            )
            .await;
        reader.abort();
        return Ok(report);
    }
    let elapsed = started.elapsed();
    reader.abort();
    Ok(RunReport { stats, elapsed })
}

#[allow(clippy::too_many_arguments)]
fn on_received(
    r: Received,
    stats: &mut Stats,
    traces: &HashSet<u128>,
    tenant_index: &HashMap<Uuid, usize>,
    waiters: &mut HashMap<(usize, Expect), usize>,
    pending: &mut [Option<Pending>],
    flows: &mut [Flow],
    ready: &mut VecDeque<usize>,
    print: bool,
) {
    let Some(ev) = r.event else {
        stats.undecodable += 1;
        return;
    };
    stats.event(&ev);
    if print {
        println!("{}", ev.line());
    }
    if ev.trace_id.is_some_and(|t| traces.contains(&t)) {
        stats.traced += 1;
    }
    let Some(tenant) = ev.tenant.and_then(|t| tenant_index.get(&t).copied()) else {
        return;
    };
    for key in candidate_expectations(&ev) {
        if let Some(i) = waiters.remove(&(tenant, key)) {
            if let Some(p) = pending[i].take() {
                stats.latency(p.class, r.at.saturating_duration_since(p.sent));
                if p.class == Class::Login {
                    stats.logins_answered += 1;
                }
            }
            if flows[i].on_answer(Some(&ev), false) == Judgement::Unexpected {
                stats.unexpected += 1;
            }
            ready.push_back(i);
            return;
        }
    }
}

/// The expectations an output can answer.
fn candidate_expectations(ev: &OutputEvent) -> Vec<Expect> {
    let mut out = Vec::new();
    match ev.topic {
        OutputTopic::SessionStatus => match ev.session {
            Some(s) if !s.is_nil() => out.push(Expect::Session(s)),
            Some(_) => {
                for code in ["INVALID_PIN", "INVALID_PIC"] {
                    if ev.code.as_deref() == Some(code) {
                        out.push(Expect::AttemptError(ev.account_id, code));
                    }
                }
            }
            None => {}
        },
        OutputTopic::AccountStatus => {
            for status in ["CREATED", "LOGGED_IN", "LOGGED_OUT", "DELETED"] {
                if ev.kind == status {
                    out.push(Expect::Status(ev.account_id, status));
                }
            }
            if ev.kind == "CREATED" {
                out.push(Expect::Created(ev.name.clone()));
            }
        }
        OutputTopic::Ban | OutputTopic::DeadLetter => {}
    }
    out
}

fn send(
    producer: &FutureProducer,
    partitions: &HashMap<InputTopic, (String, i32)>,
    rr: &mut HashMap<InputTopic, i32>,
    cmd: &Command,
    deliveries: &mut FuturesUnordered<DeliveryFuture>,
    fixed_partition: Option<i32>,
) -> Result<(), KafkaError> {
    let Some((topic, count)) = partitions.get(&cmd.topic) else {
        return Err(KafkaError::MessageProduction(
            RDKafkaErrorCode::UnknownTopic,
        ));
    };
    // The Go producers use kafka-go's LeastBytes balancer: the key does not
    // choose the partition. Spreading round-robin stands in for it.
    let partition = match fixed_partition {
        Some(p) => p % (*count).max(1),
        None => {
            let next = rr.entry(cmd.topic).or_insert(0);
            let p = *next % (*count).max(1);
            *next = next.wrapping_add(1) & i32::MAX;
            p
        }
    };
    let mut headers = OwnedHeaders::new_with_capacity(cmd.headers.len());
    for (k, v) in &cmd.headers {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_slice()),
        });
    }
    let record = FutureRecord::to(topic)
        .partition(partition)
        .key(&cmd.key[..])
        .payload(cmd.value.as_bytes())
        .headers(headers);
    match producer.send_result(record) {
        Ok(f) => {
            deliveries.push(f);
            Ok(())
        }
        Err((e, _)) => Err(e),
    }
}

/// Phase 2 of `--open-loop`: commands are produced without waiting for
/// answers, so the processor (not the players' round trips) bounds the rate.
struct OpenLoop {
    commands: u64,
    /// Commands per second; 0 = as fast as the producer accepts them.
    rate: f64,
    /// Give up waiting for answers after this long without any output.
    idle_timeout: Duration,
}

impl OpenLoop {
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        flows: &mut [Flow],
        parked: &[usize],
        tenants: &[Tenant],
        tenant_index: &HashMap<Uuid, usize>,
        producer: &FutureProducer,
        partitions: &HashMap<InputTopic, (String, i32)>,
        rx: &mut mpsc::Receiver<Received>,
    ) -> RunReport {
        let mut stats = Stats::default();
        let mut awaited: HashMap<(usize, Expect), Instant> = HashMap::new();
        let mut rr = HashMap::new();
        let mut sent: u64 = 0;
        let mut expected: u64 = 0;
        let mut answered: u64 = 0;
        let mut first_out: Option<Instant> = None;
        let mut last_out: Option<Instant> = None;
        let mut last_activity = Instant::now();
        let started = Instant::now();
        let mut sent_done: Option<Instant> = None;
        // Delivery reports are not awaited one by one: dropping the future
        // does not cancel the message; failures show up as missing answers.
        let mut sink: FuturesUnordered<DeliveryFuture> = FuturesUnordered::new();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if parked.is_empty() {
            return RunReport {
                stats,
                elapsed: started.elapsed(),
            };
        }
        loop {
            tokio::select! {
                Some(r) = rx.recv() => {
                    let mut batch = vec![r];
                    while let Ok(r) = rx.try_recv() {
                        batch.push(r);
                    }
                    for r in batch {
                        let Some(ev) = r.event else {
                            stats.undecodable += 1;
                            continue;
                        };
                        let Some(tenant) = ev.tenant.and_then(|t| tenant_index.get(&t).copied()) else {
                            continue;
                        };
                        stats.event(&ev);
                        first_out.get_or_insert(r.at);
                        last_out = Some(r.at);
                        last_activity = Instant::now();
                        for key in candidate_expectations(&ev) {
                            if let Some(at) = awaited.remove(&(tenant, key)) {
                                stats.latency(Class::Session, r.at.saturating_duration_since(at));
                                answered += 1;
                                break;
                            }
                        }
                    }
                }
                _ = tick.tick() => {}
            }
            if sent < self.commands {
                let due = if self.rate > 0.0 {
                    ((started.elapsed().as_secs_f64() * self.rate) as u64 + 1).min(self.commands)
                } else {
                    // Chunks, so answers keep being read (and timestamped) meanwhile.
                    (sent + 5_000).min(self.commands)
                };
                while sent < due {
                    let i = parked[(sent % parked.len() as u64) as usize];
                    let step = flows[i].next_step(tenants);
                    flows[i].on_answer(None, false);
                    // Keep one account's commands in order: one partition per key.
                    let p = key_partition(&step.command.key);
                    match send(
                        producer,
                        partitions,
                        &mut rr,
                        &step.command,
                        &mut sink,
                        Some(p),
                    ) {
                        Ok(()) => {}
                        Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                            // Undo nothing: the flow moved on; this command is lost
                            // and not awaited. Let librdkafka drain first.
                            stats.produce_errors += 1;
                            break;
                        }
                        Err(e) => {
                            stats.produce_errors += 1;
                            tracing::warn!(error = %e, "produce failed");
                            continue;
                        }
                    }
                    sent += 1;
                    stats.command(step.command.topic.token(), step.command.kind);
                    if step.expect != Expect::Nothing {
                        expected += 1;
                        awaited.insert((flows[i].tenant, step.expect), Instant::now());
                    }
                }
                // Delivery futures only grow; forget completed ones.
                while let Some(Some(_)) = sink.next().now_or_never() {}
                if sent >= self.commands {
                    sent_done = Some(Instant::now());
                    last_activity = Instant::now();
                }
            } else if answered >= expected || last_activity.elapsed() > self.idle_timeout {
                break;
            }
        }
        stats.timeouts = expected.saturating_sub(answered);
        let send_s = sent_done.map_or(0.0, |t| t.duration_since(started).as_secs_f64());
        let span = match (first_out, last_out) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let end_to_end = last_out.map_or(0.0, |b| b.duration_since(started).as_secs_f64());
        let per_s = |secs: f64| if secs > 0.0 { sent as f64 / secs } else { 0.0 };
        println!(
            "open_loop: players={} commands={} answers={}/{} produce_s={:.3} first_to_last_output_s={:.3} first_produce_to_last_output_s={:.3} commands_per_s={:.1} end_to_end_commands_per_s={:.1}",
            parked.len(),
            sent,
            answered,
            expected,
            send_s,
            span,
            end_to_end,
            per_s(span),
            per_s(end_to_end)
        );
        RunReport {
            stats,
            elapsed: started.elapsed(),
        }
    }
}

/// A stable partition choice for a record key (FNV-1a): the open loop sends
/// an account's commands back to back, and round-robin partitions would let
/// them overtake each other before the processor's repartitioning.
fn key_partition(key: &[u8]) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h & 0x7fff_ffff) as i32
}

/// Tenants from the seed; every third is JMS (no license agreement).
pub fn make_tenants(seed: u64, n: usize) -> Vec<Tenant> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(0x7e4a_4e75));
    (0..n)
        .map(|i| {
            let id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
            if i % 3 == 2 {
                Tenant {
                    id,
                    region: "JMS".into(),
                    major: 185,
                    minor: 1,
                }
            } else {
                Tenant {
                    id,
                    region: "GMS".into(),
                    major: 83,
                    minor: 1,
                }
            }
        })
        .collect()
}

/// Creates the topics that do not exist yet (the Go services rely on the
/// broker's auto-creation; an explicit create is deterministic).
async fn ensure_topics(
    bootstrap: &str,
    topics: &[String],
    partitions: i32,
) -> Result<(), LoadgenError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions.max(1), TopicReplication::Fixed(1)))
        .collect();
    let results = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => return Err(LoadgenError::Setup(format!("creating topic {t}: {e}"))),
        }
    }
    Ok(())
}

fn metadata_consumer(bootstrap: &str) -> Result<BaseConsumer, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "loadgen-metadata")
        .create()
}

async fn partition_count(bootstrap: &str, topic: &str) -> Result<i32, LoadgenError> {
    let bootstrap = bootstrap.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let c = metadata_consumer(&bootstrap)?;
        // A just-created topic may need a moment before its leaders are known.
        for _ in 0..50 {
            let md = c.fetch_metadata(Some(&topic), Duration::from_secs(5))?;
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                if !t.partitions().is_empty() && t.error().is_none() {
                    return Ok(t.partitions().len() as i32);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(LoadgenError::Setup(format!(
            "topic {topic} has no partitions"
        )))
    })
    .await
    .map_err(|e| LoadgenError::Setup(e.to_string()))?
}

/// Every partition of the output topics at its current end: the generator
/// only wants answers to what it is about to send.
async fn start_positions(
    bootstrap: &str,
    outputs: &[(String, OutputTopic)],
) -> Result<TopicPartitionList, LoadgenError> {
    let mut tpl = TopicPartitionList::new();
    for (topic, _) in outputs {
        let n = partition_count(bootstrap, topic).await?;
        let bootstrap = bootstrap.to_owned();
        let topic = topic.clone();
        let ends =
            tokio::task::spawn_blocking(move || -> Result<Vec<(String, i32, i64)>, KafkaError> {
                let c = metadata_consumer(&bootstrap)?;
                (0..n)
                    .map(|p| {
                        let (_, high) = c.fetch_watermarks(&topic, p, Duration::from_secs(5))?;
                        Ok((topic.clone(), p, high))
                    })
                    .collect()
            })
            .await
            .map_err(|e| LoadgenError::Setup(e.to_string()))??;
        for (t, p, high) in ends {
            tpl.add_partition_offset(&t, p, Offset::Offset(high))?;
        }
    }
    Ok(tpl)
}
