//! `account-streams loadgen`: a stand-in for the Atlas login and channel
//! servers. It writes commands exactly as they do, reads the processor's
//! outputs like they do (it needs the account id of a login to continue),
//! and reports throughput, latency and outcomes.
//!
//! Latency is measured from producing a command to consuming the output that
//! answers it (matched by session id, account name or account id, never by
//! anything added to the wire); outputs that carry the command's trace id
//! in `traceparent` are counted to check trace propagation.

pub mod commands;
mod driver;
pub mod events;
pub mod flow;
pub mod stats;

use std::time::Duration;

use clap::Args;

pub use driver::{run, LoadgenError, RunReport};
pub use flow::Mode;

/// Options of `account-streams loadgen`.
#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "BOOTSTRAP_SERVERS", default_value = "127.0.0.1:9092")]
    pub bootstrap_servers: String,
    #[arg(
        long,
        env = "COMMAND_TOPIC_ACCOUNT",
        default_value = "COMMAND_TOPIC_ACCOUNT"
    )]
    pub command_topic_account: String,
    #[arg(
        long,
        env = "COMMAND_TOPIC_ACCOUNT_SESSION",
        default_value = "COMMAND_TOPIC_ACCOUNT_SESSION"
    )]
    pub command_topic_account_session: String,
    #[arg(
        long,
        env = "EVENT_TOPIC_ACCOUNT_STATUS",
        default_value = "EVENT_TOPIC_ACCOUNT_STATUS"
    )]
    pub event_topic_account_status: String,
    #[arg(
        long,
        env = "EVENT_TOPIC_ACCOUNT_SESSION_STATUS",
        default_value = "EVENT_TOPIC_ACCOUNT_SESSION_STATUS"
    )]
    pub event_topic_account_session_status: String,
    #[arg(long, env = "COMMAND_TOPIC_BAN", default_value = "COMMAND_TOPIC_BAN")]
    pub command_topic_ban: String,
    /// Dead-letter topic of the processor. Default: `<APPLICATION_ID>-dead-letters`.
    #[arg(long, env = "DEAD_LETTER_TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// Application id of the processor (only for the default dead-letter topic).
    #[arg(long, env = "APPLICATION_ID", default_value = "account-service")]
    pub application_id: String,

    /// What to exercise.
    #[arg(long, value_enum, default_value_t = Mode::Mixed)]
    pub mode: Mode,
    /// Commands per second (0 = as fast as the answers come back).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Simulated players (accounts), spread over the tenants.
    #[arg(long, default_value_t = 50)]
    pub accounts: usize,
    /// Tenants (every third one is a JMS tenant, which skips the license agreement).
    #[arg(long, default_value_t = 2)]
    pub tenants: usize,
    /// How long to send commands (e.g. 30s, 2m, 500ms). Default 20s unless --commands is given.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after sending this many commands.
    #[arg(long)]
    pub commands: Option<u64>,
    /// Seed of the generator (tenants, passwords, session ids, flow choices).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Prefix of account names. Default: `lg<random hex>-`, unique per run.
    #[arg(long)]
    pub name_prefix: Option<String>,
    /// Print one line per output event.
    #[arg(long)]
    pub print_events: bool,
    /// How long to wait for an answer before counting a timeout.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub answer_timeout: Duration,
    /// The processor's maxPinAttempts (failed PIN attempts that trigger a ban).
    #[arg(long, env = "MAX_PIN_ATTEMPTS", default_value_t = 5)]
    pub max_pin_attempts: u32,
    /// Partitions for topics the generator has to create (when missing).
    #[arg(long, default_value_t = 3)]
    pub topic_partitions: i32,
    /// Open loop (sessions mode only): once every player is logged in on a
    /// channel, produce this many channel-change commands without waiting
    /// for answers (at --rate per second, or as fast as possible when 0) and
    /// measure commands/s from the first to the last answer consumed, and
    /// the latency from producing to consuming each answer.
    #[arg(long, default_value_t = 0)]
    pub open_loop: u64,
    /// Exit with status 3 when any answer timed out or was unexpected.
    #[arg(long)]
    pub strict: bool,
}

/// `500ms`, `30s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 30s, 2m, 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{text:?} is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
    }
}
