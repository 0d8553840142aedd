//! A task: the processor and stores of one repartition partition, plus the
//! per-key ordered pipeline of records it has received but not finished.
//!
//! Ordering: every record gets its order key when it arrives. A record waits
//! while an earlier record with the same key is still queued or in slow work;
//! records of other keys run. Records are kept in offset order until done, so
//! the commit position is always "the first record not done".
//!
//! Commit barrier: when a commit is due, the task stops *starting* records
//! above the highest offset it has already started and finishes everything at
//! or below it (waiting for slow work). Then every record below the commit
//! offset is done and no record above it has produced anything, which is
//! exactly what the transaction's input offset must describe.

use std::collections::{HashSet, VecDeque};
use std::sync::mpsc::Sender;
use std::time::SystemTime;

use state::TaskStores;

use crate::api::{Context, Output, ProcessError, Processor, ReadContext, Record, SlowOutput, Step};

/// Slow work finished; routed back to the task on the stream thread.
pub(crate) struct Completion {
    pub partition: u32,
    pub epoch: u64,
    pub offset: i64,
    pub output: SlowOutput,
}

/// Runs slow work on the tokio pool and reports completions over a channel.
#[derive(Clone)]
pub(crate) struct Spawner {
    pub handle: tokio::runtime::Handle,
    pub tx: Sender<Completion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryState {
    Queued,
    InFlight,
    Done,
}

struct Entry {
    record: Record,
    key: Vec<u8>,
    state: EntryState,
}

/// What `drive` needs from the engine for one pass.
pub(crate) struct DriveEnv<'a> {
    pub outputs: &'a mut Vec<Output>,
    pub partitions: u32,
    pub barrier: bool,
    /// Slots left for slow work across all tasks.
    pub slow_budget: &'a mut usize,
    pub spawner: &'a Spawner,
    /// Timestamps of records fully processed (processing-latency metric).
    pub done_timestamps: &'a mut Vec<Option<i64>>,
    pub now: SystemTime,
}

pub(crate) struct Task {
    pub partition: u32,
    pub stores: TaskStores,
    processor: Box<dyn Processor>,
    queue: VecDeque<Entry>,
    epoch: u64,
    inflight: usize,
    max_started: Option<i64>,
    last_received: Option<i64>,
}

impl Task {
    pub fn new(partition: u32, stores: TaskStores, processor: Box<dyn Processor>) -> Self {
        Self {
            partition,
            stores,
            processor,
            queue: VecDeque::new(),
            epoch: 0,
            inflight: 0,
            max_started: None,
            last_received: None,
        }
    }

    pub fn inflight(&self) -> usize {
        self.inflight
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    pub fn enqueue(&mut self, record: Record, partitions: u32) -> Result<(), ProcessError> {
        let key = {
            let ctx = ReadContext::new(&self.stores, self.partition, partitions);
            self.processor.order_key(&ctx, &record)?
        };
        self.last_received = Some(record.offset);
        self.queue.push_back(Entry {
            record,
            key,
            state: EntryState::Queued,
        });
        Ok(())
    }

    /// Starts every record that may start now.
    pub fn drive(&mut self, env: &mut DriveEnv<'_>) -> Result<(), ProcessError> {
        let mut blocked: HashSet<Vec<u8>> = HashSet::new();
        for i in 0..self.queue.len() {
            let e = &mut self.queue[i];
            match e.state {
                EntryState::Done => {}
                EntryState::InFlight => {
                    blocked.insert(e.key.clone());
                }
                EntryState::Queued => {
                    if blocked.contains(&e.key) {
                        continue;
                    }
                    if env.barrier && self.max_started.is_none_or(|m| e.record.offset > m) {
                        break;
                    }
                    if *env.slow_budget == 0 {
                        break;
                    }
                    let mut ctx = Context::new(
                        &mut self.stores,
                        env.outputs,
                        self.partition,
                        env.partitions,
                        env.now,
                    );
                    let step = self.processor.process(&mut ctx, &e.record)?;
                    self.max_started = Some(
                        self.max_started
                            .map_or(e.record.offset, |m| m.max(e.record.offset)),
                    );
                    match step {
                        Step::Done => {
                            e.state = EntryState::Done;
                            env.done_timestamps.push(e.record.timestamp);
                        }
                        Step::Slow(work) => {
                            e.state = EntryState::InFlight;
                            self.inflight += 1;
                            *env.slow_budget -= 1;
                            blocked.insert(e.key.clone());
                            spawn(
                                env.spawner,
                                self.partition,
                                self.epoch,
                                e.record.offset,
                                work,
                            );
                        }
                    }
                }
            }
        }
        while self
            .queue
            .front()
            .is_some_and(|e| e.state == EntryState::Done)
        {
            self.queue.pop_front();
        }
        Ok(())
    }

    /// Feeds a slow-work result back. Results of an aborted epoch are dropped.
    pub fn complete(&mut self, c: Completion, env: &mut DriveEnv<'_>) -> Result<(), ProcessError> {
        if c.epoch != self.epoch {
            return Ok(());
        }
        let Ok(i) = self
            .queue
            .binary_search_by_key(&c.offset, |e| e.record.offset)
        else {
            return Ok(());
        };
        let e = &mut self.queue[i];
        if e.state != EntryState::InFlight {
            return Ok(());
        }
        self.inflight -= 1;
        *env.slow_budget += 1;
        let mut ctx = Context::new(
            &mut self.stores,
            env.outputs,
            self.partition,
            env.partitions,
            env.now,
        );
        match self.processor.resume(&mut ctx, &e.record, c.output)? {
            Step::Done => {
                e.state = EntryState::Done;
                env.done_timestamps.push(e.record.timestamp);
            }
            Step::Slow(work) => {
                self.inflight += 1;
                *env.slow_budget = env.slow_budget.saturating_sub(1);
                spawn(
                    env.spawner,
                    self.partition,
                    self.epoch,
                    e.record.offset,
                    work,
                );
            }
        }
        Ok(())
    }

    pub fn punctuate(&mut self, env: &mut DriveEnv<'_>) -> Result<(), ProcessError> {
        let mut ctx = Context::new(
            &mut self.stores,
            env.outputs,
            self.partition,
            env.partitions,
            env.now,
        );
        self.processor.punctuate(&mut ctx, env.now)
    }

    /// True when the barrier holds: nothing in flight and nothing queued at or
    /// below the highest started offset.
    pub fn settled(&self) -> bool {
        self.inflight == 0
            && !self.queue.iter().any(|e| {
                e.state != EntryState::Done
                    && self.max_started.is_some_and(|m| e.record.offset <= m)
            })
    }

    /// The offset to commit for this task's partition (only valid when settled).
    pub fn commit_offset(&self) -> Option<i64> {
        match self.queue.iter().find(|e| e.state != EntryState::Done) {
            Some(e) => Some(e.record.offset),
            None => self.last_received.map(|o| o + 1),
        }
    }

    /// Forgets everything uncommitted: the transaction was aborted.
    pub fn reset(&mut self) {
        self.queue.clear();
        self.inflight = 0;
        self.epoch += 1;
        self.max_started = None;
        self.last_received = None;
        self.stores.discard();
    }
}

fn spawn(spawner: &Spawner, partition: u32, epoch: u64, offset: i64, work: crate::api::SlowWork) {
    let tx = spawner.tx.clone();
    spawner.handle.spawn(async move {
        let output = work.await;
        // The receiver is gone only when the runtime stopped; nothing to do then.
        let _ = tx.send(Completion {
            partition,
            epoch,
            offset,
            output,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ProcessError, SlowOutput};
    use std::sync::mpsc::Receiver;
    use std::sync::{Arc, Mutex};

    /// Records whose value is "slow" wait for the test to release them.
    struct Gate {
        releases: Arc<Mutex<Vec<tokio::sync::oneshot::Sender<()>>>>,
    }

    impl Processor for Gate {
        fn process(&mut self, ctx: &mut Context<'_>, r: &Record) -> Result<Step, ProcessError> {
            if r.value.as_deref() == Some(b"slow") {
                let (tx, rx) = tokio::sync::oneshot::channel();
                self.releases.lock().unwrap().push(tx);
                return Ok(Step::Slow(Box::pin(async move {
                    let _ = rx.await;
                    Box::new(()) as SlowOutput
                })));
            }
            log(ctx, r)?;
            Ok(Step::Done)
        }

        fn resume(
            &mut self,
            ctx: &mut Context<'_>,
            r: &Record,
            _: SlowOutput,
        ) -> Result<Step, ProcessError> {
            log(ctx, r)?;
            Ok(Step::Done)
        }
    }

    /// Appends the record's offset to the processing order log.
    fn log(ctx: &mut Context<'_>, r: &Record) -> Result<(), ProcessError> {
        let mut order = ctx.get("order", b"o")?.unwrap_or_default();
        order.push(r.offset as u8);
        ctx.put("order", b"o", &order)?;
        Ok(())
    }

    struct Harness {
        task: Task,
        rt: tokio::runtime::Runtime,
        spawner: Spawner,
        rx: Receiver<Completion>,
        releases: Arc<Mutex<Vec<tokio::sync::oneshot::Sender<()>>>>,
        outputs: Vec<Output>,
        done: Vec<Option<i64>>,
        budget: usize,
    }

    impl Harness {
        fn new(budget: usize) -> Self {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let releases = Arc::new(Mutex::new(Vec::new()));
            let stores = TaskStores::in_memory(&["order".to_string()]);
            let task = Task::new(
                0,
                stores,
                Box::new(Gate {
                    releases: releases.clone(),
                }),
            );
            let spawner = Spawner {
                handle: rt.handle().clone(),
                tx,
            };
            Self {
                task,
                rt,
                spawner,
                rx,
                releases,
                outputs: Vec::new(),
                done: Vec::new(),
                budget,
            }
        }

        fn add(&mut self, offset: i64, key: &str, value: &str) {
            let r = Record {
                partition: 0,
                offset,
                timestamp: None,
                key: Some(key.as_bytes().to_vec()),
                value: Some(value.as_bytes().to_vec()),
                headers: Vec::new(),
            };
            self.task.enqueue(r, 1).unwrap();
        }

        fn drive(&mut self, barrier: bool) {
            let mut env = DriveEnv {
                outputs: &mut self.outputs,
                partitions: 1,
                barrier,
                slow_budget: &mut self.budget,
                spawner: &self.spawner,
                done_timestamps: &mut self.done,
                now: SystemTime::now(),
            };
            self.task.drive(&mut env).unwrap();
        }

        /// Releases the oldest slow record and feeds its completion back.
        fn release_one(&mut self) {
            let tx = self.releases.lock().unwrap().remove(0);
            tx.send(()).unwrap();
            let c = self
                .rx
                .recv_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            let mut env = DriveEnv {
                outputs: &mut self.outputs,
                partitions: 1,
                barrier: true,
                slow_budget: &mut self.budget,
                spawner: &self.spawner,
                done_timestamps: &mut self.done,
                now: SystemTime::now(),
            };
            self.task.complete(c, &mut env).unwrap();
        }

        fn order(&self) -> Vec<u8> {
            self.task.stores.get(0, b"o").unwrap().unwrap_or_default()
        }
    }

    #[test]
    fn same_key_waits_other_keys_proceed() {
        let mut h = Harness::new(10);
        h.add(0, "a", "slow");
        h.add(1, "b", "x");
        h.add(2, "a", "x");
        h.add(3, "c", "x");
        h.drive(false);
        assert_eq!(
            h.order(),
            vec![1, 3],
            "b and c ran, a's second record waits"
        );
        assert!(!h.task.settled());
        h.release_one();
        assert_eq!(h.order(), vec![1, 3, 0]);
        h.drive(false);
        assert_eq!(h.order(), vec![1, 3, 0, 2]);
        assert!(h.task.settled());
        assert_eq!(h.task.commit_offset(), Some(4));
        drop(h.rt);
    }

    #[test]
    fn barrier_never_starts_records_above_the_cut() {
        let mut h = Harness::new(10);
        h.add(0, "a", "slow");
        h.add(1, "b", "x");
        h.drive(false);
        // New records arrive while a commit is pending.
        h.add(2, "c", "x");
        h.add(3, "a", "x");
        h.drive(true);
        assert_eq!(
            h.order(),
            vec![1],
            "nothing above offset 1 starts during the barrier"
        );
        assert!(!h.task.settled());
        h.release_one();
        h.drive(true);
        assert!(h.task.settled());
        assert_eq!(h.order(), vec![1, 0]);
        assert_eq!(
            h.task.commit_offset(),
            Some(2),
            "commit covers exactly 0..=1"
        );
        h.drive(false);
        assert_eq!(h.order(), vec![1, 0, 2, 3]);
        assert_eq!(h.task.commit_offset(), Some(4));
        drop(h.rt);
    }

    #[test]
    fn queued_same_key_record_below_cut_finishes_in_barrier() {
        let mut h = Harness::new(10);
        h.add(0, "a", "slow");
        h.add(1, "a", "x");
        h.add(2, "b", "x");
        h.drive(false);
        assert_eq!(h.order(), vec![2]);
        h.release_one();
        // Offset 1 is below the highest started offset (2): the barrier must run it.
        assert!(!h.task.settled());
        h.drive(true);
        assert!(h.task.settled());
        assert_eq!(h.order(), vec![2, 0, 1]);
        assert_eq!(h.task.commit_offset(), Some(3));
        drop(h.rt);
    }

    #[test]
    fn slow_budget_bounds_inflight_work() {
        let mut h = Harness::new(1);
        h.add(0, "a", "slow");
        h.add(1, "b", "slow");
        h.add(2, "c", "x");
        h.drive(false);
        assert_eq!(h.task.inflight(), 1);
        assert_eq!(
            h.order(),
            Vec::<u8>::new(),
            "no slot left: nothing else starts"
        );
        h.release_one();
        h.drive(false);
        assert_eq!(h.task.inflight(), 1, "b took the freed slot");
        assert_eq!(h.order(), vec![0]);
        h.release_one();
        h.drive(false);
        assert_eq!(h.order(), vec![0, 1, 2]);
        drop(h.rt);
    }

    #[test]
    fn reset_drops_everything_and_ignores_stale_completions() {
        let mut h = Harness::new(10);
        h.add(0, "a", "slow");
        h.add(1, "b", "x");
        h.drive(false);
        h.task.reset();
        assert_eq!(h.order(), Vec::<u8>::new(), "uncommitted state dropped");
        assert_eq!(h.task.pending(), 0);
        assert_eq!(h.task.commit_offset(), None);
        h.release_one();
        assert_eq!(
            h.order(),
            Vec::<u8>::new(),
            "completion of an aborted epoch ignored"
        );
        drop(h.rt);
    }
}
