//! Service metrics (docs/metrics.md, "Service" table).
//!
//! The families are registered into a registry the caller owns (not the
//! process-global one) so that tests and several processors in one process
//! do not share counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use topology::RuntimeMetrics;

/// Label values known in advance, exported at 0 from the start so that a
/// dashboard panel or an alert sees a series (and `rate()` a first sample)
/// before the first event, not only after it.
pub mod known {
    /// `commands_consumed_total{topic, type}`.
    pub const COMMANDS: &[(&str, &str)] = &[
        ("COMMAND_TOPIC_ACCOUNT", "CREATE"),
        ("COMMAND_TOPIC_ACCOUNT", "DELETE"),
        ("COMMAND_TOPIC_ACCOUNT", "PIN_ATTEMPT"),
        ("COMMAND_TOPIC_ACCOUNT", "PIC_ATTEMPT"),
        ("COMMAND_TOPIC_ACCOUNT_SESSION", "CREATE"),
        ("COMMAND_TOPIC_ACCOUNT_SESSION", "PROGRESS_STATE"),
        ("COMMAND_TOPIC_ACCOUNT_SESSION", "LOGOUT"),
    ];
    /// `outcomes_total{kind="account_status", code}`.
    pub const ACCOUNT_STATUSES: &[&str] = &["CREATED", "LOGGED_IN", "LOGGED_OUT", "DELETED"];
    /// `outcomes_total{kind="session_status", code}`: event types, then the
    /// error codes that replace `ERROR`.
    pub const SESSION_STATUSES: &[&str] = &[
        "CREATED",
        "STATE_CHANGED",
        "REQUEST_LICENSE_AGREEMENT",
        "SYSTEM_ERROR",
        "NOT_REGISTERED",
        "DELETED_OR_BLOCKED",
        "ALREADY_LOGGED_IN",
        "INCORRECT_PASSWORD",
        "TOO_MANY_ATTEMPTS",
        "INVALID_PIN",
        "INVALID_PIC",
    ];
    /// `outcomes_total{kind="ban", code}`.
    pub const BANS: &[&str] = &["CREATE"];
    /// `outcomes_total{kind="rejected", code}`.
    pub const REJECTIONS: &[&str] = &["duplicate_name", "empty_name", "password_too_long"];
    /// `dead_letters_total{reason}`: the reasons of `wire::DecodeError`.
    pub const DEAD_LETTER_REASONS: &[&str] = &[
        "bad_json",
        "unknown_type",
        "missing_tenant",
        "bad_header",
        "too_large",
    ];
}

/// Exports the runtime's labelled families at 0 for the label values known
/// before any traffic: dead-letter reasons and the stores' restore progress.
pub fn preinit_runtime(metrics: &RuntimeMetrics, stores: &[&str]) {
    for reason in known::DEAD_LETTER_REASONS {
        metrics.dead_letters.with_label_values(&[reason]);
    }
    for store in stores {
        metrics.restore_records.with_label_values(&[store]);
        metrics.restore_remaining.with_label_values(&[store]).set(0);
    }
}

/// What kind of output or rejection an outcome counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// An account status event; code = the status.
    AccountStatus,
    /// A session status event; code = the event type, or the error code for ERROR.
    SessionStatus,
    /// A ban command; code = the ban command type.
    Ban,
    /// A command the rules refused without output; code = the reason.
    Rejected,
}

impl OutcomeKind {
    pub fn label(self) -> &'static str {
        match self {
            OutcomeKind::AccountStatus => "account_status",
            OutcomeKind::SessionStatus => "session_status",
            OutcomeKind::Ban => "ban",
            OutcomeKind::Rejected => "rejected",
        }
    }
}

/// The expensive steps that run off the processing thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowStage {
    BcryptVerify,
    BcryptHash,
    BanCheck,
}

impl SlowStage {
    pub fn label(self) -> &'static str {
        match self {
            SlowStage::BcryptVerify => "bcrypt_verify",
            SlowStage::BcryptHash => "bcrypt_hash",
            SlowStage::BanCheck => "ban_check",
        }
    }
}

/// The registered service metric families.
#[derive(Debug, Clone)]
pub struct ServiceMetrics {
    commands_consumed: IntCounterVec,
    outcomes: IntCounterVec,
    slow_work: HistogramVec,
    ban_check_failures: IntCounter,
    logged_in: LoggedIn,
}

/// How long a task's logged-in count is trusted without a refresh: a few
/// punctuation intervals (1 s). A task that stops refreshing was revoked or
/// closed, and its accounts are no longer this instance's.
const LOGGED_IN_FRESH: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
struct TaskCount {
    accounts: i64,
    refreshed: Option<Instant>,
}

/// `logged_in_accounts`: the sum of per-task counts, computed at scrape
/// time. Each task recounts its session store every punctuation (exact
/// after a restore, a rebalance or an aborted transaction) and adjusts its
/// count between recounts as accounts log in and out.
#[derive(Debug, Clone)]
struct LoggedIn {
    gauge: IntGauge,
    tasks: Arc<Mutex<HashMap<u32, TaskCount>>>,
}

impl LoggedIn {
    fn with_tasks<R>(&self, f: impl FnOnce(&mut HashMap<u32, TaskCount>) -> R) -> R {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut tasks)
    }

    fn current(&self) -> i64 {
        let now = Instant::now();
        self.with_tasks(|tasks| {
            tasks
                .values()
                .filter(|t| {
                    t.refreshed
                        .is_some_and(|r| now.duration_since(r) <= LOGGED_IN_FRESH)
                })
                .map(|t| t.accounts)
                .sum()
        })
    }
}

impl Collector for LoggedIn {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.gauge.set(self.current());
        self.gauge.collect()
    }
}

impl ServiceMetrics {
    /// Creates the families and registers them; fails only if the registry
    /// already holds families of these names.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let commands_consumed = IntCounterVec::new(
            Opts::new(
                "account_streams_commands_consumed_total",
                "Decoded commands by input topic token and command type",
            ),
            &["topic", "type"],
        )?;
        let outcomes = IntCounterVec::new(
            Opts::new(
                "account_streams_outcomes_total",
                "Outputs and rejections by kind and code",
            ),
            &["kind", "code"],
        )?;
        // bcrypt cost 10 is ~50-100 ms, the ban check is bounded by its 2 s
        // deadline: buckets cover 1 ms .. 5 s.
        let slow_work = HistogramVec::new(
            HistogramOpts::new(
                "account_streams_slow_work_seconds",
                "Duration of bcrypt and ban-check work",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 5.0,
            ]),
            &["stage"],
        )?;
        let ban_check_failures = IntCounter::new(
            "account_streams_ban_check_failures_total",
            "Ban checks that failed open",
        )?;
        let logged_in_accounts = IntGauge::new(
            "account_streams_logged_in_accounts",
            "Accounts with derived state != 0 on this instance's tasks",
        )?;
        registry.register(Box::new(commands_consumed.clone()))?;
        registry.register(Box::new(outcomes.clone()))?;
        registry.register(Box::new(slow_work.clone()))?;
        registry.register(Box::new(ban_check_failures.clone()))?;
        let logged_in = LoggedIn {
            gauge: logged_in_accounts,
            tasks: Arc::default(),
        };
        registry.register(Box::new(logged_in.clone()))?;
        for (topic, command_type) in known::COMMANDS {
            commands_consumed.with_label_values(&[topic, command_type]);
        }
        for (kind, codes) in [
            (OutcomeKind::AccountStatus, known::ACCOUNT_STATUSES),
            (OutcomeKind::SessionStatus, known::SESSION_STATUSES),
            (OutcomeKind::Ban, known::BANS),
            (OutcomeKind::Rejected, known::REJECTIONS),
        ] {
            for code in codes {
                outcomes.with_label_values(&[kind.label(), code]);
            }
        }
        for stage in [
            SlowStage::BcryptVerify,
            SlowStage::BcryptHash,
            SlowStage::BanCheck,
        ] {
            slow_work.with_label_values(&[stage.label()]);
        }
        Ok(ServiceMetrics {
            commands_consumed,
            outcomes,
            slow_work,
            ban_check_failures,
            logged_in,
        })
    }

    /// A decoded command; `topic` is the topic's env token (e.g.
    /// `COMMAND_TOPIC_ACCOUNT`), not its configured name, so dashboards do
    /// not depend on deployment naming.
    pub fn command_consumed(&self, topic: &str, command_type: &str) {
        self.commands_consumed
            .with_label_values(&[topic, command_type])
            .inc();
    }

    pub fn outcome(&self, kind: OutcomeKind, code: &str) {
        self.outcomes.with_label_values(&[kind.label(), code]).inc();
    }

    pub fn slow_work(&self, stage: SlowStage, took: Duration) {
        self.slow_work
            .with_label_values(&[stage.label()])
            .observe(took.as_secs_f64());
    }

    pub fn ban_check_failed(&self) {
        self.ban_check_failures.inc();
    }

    pub fn ban_check_failures(&self) -> u64 {
        self.ban_check_failures.get()
    }

    /// Adjusts task `partition`'s logged-in count when an account's derived
    /// state crosses 0 (until the task's next recount).
    pub fn logged_in_delta(&self, partition: u32, delta: i64) {
        self.logged_in.with_tasks(|tasks| {
            tasks
                .entry(partition)
                .or_insert(TaskCount {
                    accounts: 0,
                    refreshed: None,
                })
                .accounts += delta;
        });
    }

    /// Task `partition` counted `accounts` logged-in accounts in its store.
    pub fn logged_in_recount(&self, partition: u32, accounts: i64) {
        self.logged_in.with_tasks(|tasks| {
            tasks.insert(
                partition,
                TaskCount {
                    accounts,
                    refreshed: Some(Instant::now()),
                },
            );
        });
    }

    /// What `account_streams_logged_in_accounts` would report now.
    pub fn logged_in_accounts(&self) -> i64 {
        self.logged_in.current()
    }
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> Result<String, prometheus::Error> {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_the_contract_names() {
        let registry = Registry::new();
        let m = ServiceMetrics::register(&registry).unwrap();
        m.command_consumed("COMMAND_TOPIC_ACCOUNT_SESSION", "CREATE");
        m.command_consumed("COMMAND_TOPIC_ACCOUNT_SESSION", "CREATE");
        m.outcome(OutcomeKind::SessionStatus, "INCORRECT_PASSWORD");
        m.outcome(OutcomeKind::Rejected, "duplicate_name");
        m.slow_work(SlowStage::BcryptVerify, Duration::from_millis(60));
        m.ban_check_failed();
        m.logged_in_recount(0, 1);
        m.logged_in_delta(0, 3);
        m.logged_in_delta(0, -1);
        // Not counted until task 1 recounts: its count may be stale.
        m.logged_in_delta(1, 5);
        let text = render(&registry).unwrap();
        for line in [
            "account_streams_commands_consumed_total{topic=\"COMMAND_TOPIC_ACCOUNT_SESSION\",type=\"CREATE\"} 2",
            "account_streams_outcomes_total{code=\"INCORRECT_PASSWORD\",kind=\"session_status\"} 1",
            "account_streams_outcomes_total{code=\"duplicate_name\",kind=\"rejected\"} 1",
            "account_streams_slow_work_seconds_bucket{stage=\"bcrypt_verify\",le=\"0.075\"} 1",
            "account_streams_slow_work_seconds_bucket{stage=\"bcrypt_verify\",le=\"0.05\"} 0",
            "account_streams_slow_work_seconds_count{stage=\"bcrypt_verify\"} 1",
            "account_streams_ban_check_failures_total 1",
            "account_streams_logged_in_accounts 3",
            // Pre-initialised label sets.
            "account_streams_commands_consumed_total{topic=\"COMMAND_TOPIC_ACCOUNT\",type=\"PIC_ATTEMPT\"} 0",
            "account_streams_outcomes_total{code=\"TOO_MANY_ATTEMPTS\",kind=\"session_status\"} 0",
            "account_streams_slow_work_seconds_count{stage=\"ban_check\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        m.logged_in_recount(1, 4);
        assert_eq!(m.logged_in_accounts(), 7);
        assert_eq!(
            known::COMMANDS.len()
                + known::ACCOUNT_STATUSES.len()
                + known::SESSION_STATUSES.len()
                + known::BANS.len()
                + known::REJECTIONS.len(),
            26
        );
        assert!(ServiceMetrics::register(&registry).is_err());
    }

    #[test]
    fn runtime_label_sets_are_exported_before_use() {
        let registry = Registry::new();
        let rm = RuntimeMetrics::register(&registry).unwrap();
        preinit_runtime(&rm, &["accounts", "names"]);
        let text = render(&registry).unwrap();
        for line in [
            "account_streams_dead_letters_total{reason=\"bad_json\"} 0",
            "account_streams_dead_letters_total{reason=\"too_large\"} 0",
            "account_streams_restore_records_total{store=\"names\"} 0",
            "account_streams_restore_remaining_records{store=\"accounts\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        let dead = text
            .lines()
            .filter(|l| l.starts_with("account_streams_dead_letters_total{"))
            .count();
        assert_eq!(dead, known::DEAD_LETTER_REASONS.len());
    }
}
