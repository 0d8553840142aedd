//! Service metrics (docs/metrics.md, "Service" table).
//!
//! The families are registered into a registry the caller owns (not the
//! process-global one) so that tests and several processors in one process
//! do not share counters.

use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

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
    logged_in_accounts: IntGauge,
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
        registry.register(Box::new(logged_in_accounts.clone()))?;
        Ok(ServiceMetrics {
            commands_consumed,
            outcomes,
            slow_work,
            ban_check_failures,
            logged_in_accounts,
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

    /// Adjusts the logged-in gauge when an account's derived state crosses 0.
    pub fn logged_in_delta(&self, delta: i64) {
        self.logged_in_accounts.add(delta);
    }

    /// Sets the logged-in gauge (after a restore or a rebalance).
    pub fn set_logged_in_accounts(&self, n: i64) {
        self.logged_in_accounts.set(n);
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
        m.logged_in_delta(3);
        m.logged_in_delta(-1);
        let text = render(&registry).unwrap();
        for line in [
            "account_streams_commands_consumed_total{topic=\"COMMAND_TOPIC_ACCOUNT_SESSION\",type=\"CREATE\"} 2",
            "account_streams_outcomes_total{code=\"INCORRECT_PASSWORD\",kind=\"session_status\"} 1",
            "account_streams_outcomes_total{code=\"duplicate_name\",kind=\"rejected\"} 1",
            "account_streams_slow_work_seconds_bucket{stage=\"bcrypt_verify\",le=\"0.075\"} 1",
            "account_streams_slow_work_seconds_bucket{stage=\"bcrypt_verify\",le=\"0.05\"} 0",
            "account_streams_slow_work_seconds_count{stage=\"bcrypt_verify\"} 1",
            "account_streams_ban_check_failures_total 1",
            "account_streams_logged_in_accounts 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(ServiceMetrics::register(&registry).is_err());
    }
}
