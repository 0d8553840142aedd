//! Process settings of `account-streams run`: where Kafka is, topic names,
//! identity of this instance, ports and the external ban service.
//!
//! Every option is also an environment variable (the Atlas services are
//! configured by environment), so `--help` documents the whole environment.
//! The business rules (`config.yaml` keys and their env overrides) are parsed
//! by `config`; this module only carries their raw values through so that
//! `--help` lists them and a command-line flag can stand in for the variable.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use reqwest::Url;

/// Raw command-line/environment input of `run`; validated into [`Settings`].
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Kafka bootstrap servers (host:port[,host:port...]).
    #[arg(long, env = "BOOTSTRAP_SERVERS", default_value = "127.0.0.1:9092")]
    pub bootstrap_servers: String,

    /// Account commands topic (CREATE, DELETE, PIN_ATTEMPT, PIC_ATTEMPT).
    #[arg(
        long,
        env = "COMMAND_TOPIC_ACCOUNT",
        default_value = "COMMAND_TOPIC_ACCOUNT"
    )]
    pub command_topic_account: String,

    /// Session commands topic (CREATE, PROGRESS_STATE, LOGOUT).
    #[arg(
        long,
        env = "COMMAND_TOPIC_ACCOUNT_SESSION",
        default_value = "COMMAND_TOPIC_ACCOUNT_SESSION"
    )]
    pub command_topic_account_session: String,

    /// Account status events topic (CREATED, LOGGED_IN, LOGGED_OUT, DELETED).
    #[arg(
        long,
        env = "EVENT_TOPIC_ACCOUNT_STATUS",
        default_value = "EVENT_TOPIC_ACCOUNT_STATUS"
    )]
    pub event_topic_account_status: String,

    /// Session status events topic (CREATED, STATE_CHANGED, REQUEST_LICENSE_AGREEMENT, ERROR).
    #[arg(
        long,
        env = "EVENT_TOPIC_ACCOUNT_SESSION_STATUS",
        default_value = "EVENT_TOPIC_ACCOUNT_SESSION_STATUS"
    )]
    pub event_topic_account_session_status: String,

    /// Ban commands topic (issued when the PIN or PIC attempt limit is exceeded).
    #[arg(long, env = "COMMAND_TOPIC_BAN", default_value = "COMMAND_TOPIC_BAN")]
    pub command_topic_ban: String,

    /// Consumer group of the input topics, used verbatim (an empty value means the default).
    #[arg(long, env = "KAFKA_CONSUMER_GROUP", default_value = "Account Service")]
    pub kafka_consumer_group: String,

    /// Application id: prefix of internal topics (repartition, changelogs) and transactional ids.
    #[arg(long, env = "APPLICATION_ID", default_value = "account-service")]
    pub application_id: String,

    /// Stable id of this instance (transactional.id and static group membership).
    /// Default: the host name.
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Directory of the local RocksDB state stores.
    #[arg(long, env = "STATE_DIR", default_value = "./state")]
    pub state_dir: PathBuf,

    /// Partitions of the internal topics; fixed at first start (a mismatch later is an error).
    #[arg(long, env = "INTERNAL_PARTITIONS", default_value_t = 6)]
    pub internal_partitions: u32,

    /// Transaction commit interval in milliseconds.
    #[arg(long, env = "COMMIT_INTERVAL_MS", default_value_t = 100)]
    pub commit_interval_ms: u64,

    /// Port of the HTTP server (/metrics, /healthz, /readyz).
    #[arg(long, env = "REST_PORT", default_value_t = 8080)]
    pub rest_port: u16,

    /// Dead-letter topic for undecodable input. Default: `<APPLICATION_ID>-dead-letters`.
    #[arg(long, env = "DEAD_LETTER_TOPIC")]
    pub dead_letter_topic: Option<String>,

    /// Root URL of atlas-ban, used verbatim; `bans/check` is appended after a `/`
    /// (one is added if the URL does not end with one). Wins over BASE_SERVICE_URL.
    #[arg(long, env = "BANS_SERVICE_URL")]
    pub bans_service_url: Option<String>,

    /// Root URL of the Atlas REST gateway (e.g. `http://atlas-nginx:80/api/`); the ban check
    /// goes to `<BASE_SERVICE_URL>bans/check` when BANS_SERVICE_URL is not set.
    /// With neither, logins are not checked against atlas-ban.
    #[arg(long, env = "BASE_SERVICE_URL")]
    pub base_service_url: Option<String>,

    /// Overall deadline of one ban check in milliseconds (at most one retry inside it; fail-open).
    #[arg(long, env = "BAN_CHECK_TIMEOUT_MS", default_value_t = 2000)]
    pub ban_check_timeout_ms: u64,

    /// Rules file (config.yaml keys). Named but missing or invalid is a startup error;
    /// unset means `config.yaml` in the working directory if present, else the shipped defaults.
    #[arg(long, env = "CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// Encoding of the time fields `until` and `expiresAt`.
    #[arg(long, env = "TIME_ENCODING", value_enum, default_value_t = TimeEncoding::UnixMillis)]
    pub time_encoding: TimeEncoding,

    /// Log filter (tracing env-filter syntax, e.g. `info` or `account_streams=debug,info`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// OTLP trace endpoint. Optional and unsupported in the default build: trace context is
    /// still propagated on every output (traceparent), but spans are not exported.
    #[arg(long, env = "TRACE_ENDPOINT")]
    pub trace_endpoint: Option<String>,

    #[command(flatten)]
    pub rules: RuleOverrides,
}

/// Per-key overrides of the `config.yaml` rules. Kept as raw text: their
/// parsing and validation belong to the rules configuration (`config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct RuleOverrides {
    /// Override of config.yaml `automaticRegister` (true|false; shipped: true).
    #[arg(long, env = "AUTOMATIC_REGISTER")]
    pub automatic_register: Option<String>,
    /// Override of `maxPinAttempts` (failed PIN attempts before a ban; shipped: 5).
    #[arg(long, env = "MAX_PIN_ATTEMPTS")]
    pub max_pin_attempts: Option<String>,
    /// Override of `pinBanDuration` (Go duration, e.g. 15m; shipped: 15m).
    #[arg(long, env = "PIN_BAN_DURATION")]
    pub pin_ban_duration: Option<String>,
    /// Override of `maxPicAttempts` (shipped: 5).
    #[arg(long, env = "MAX_PIC_ATTEMPTS")]
    pub max_pic_attempts: Option<String>,
    /// Override of `picBanDuration` (Go duration; shipped: 15m).
    #[arg(long, env = "PIC_BAN_DURATION")]
    pub pic_ban_duration: Option<String>,
    /// Override of `maxLoginAttempts` (failed passwords per session before TOO_MANY_ATTEMPTS; 0 = off, the default).
    #[arg(long, env = "MAX_LOGIN_ATTEMPTS")]
    pub max_login_attempts: Option<String>,
    /// Override of `transitionTimeout` (Go duration; default 5s).
    #[arg(long, env = "TRANSITION_TIMEOUT")]
    pub transition_timeout: Option<String>,
}

impl RuleOverrides {
    /// (environment variable, value) pairs that are set, for the rules loader.
    pub fn as_env_pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("AUTOMATIC_REGISTER", &self.automatic_register),
            ("MAX_PIN_ATTEMPTS", &self.max_pin_attempts),
            ("PIN_BAN_DURATION", &self.pin_ban_duration),
            ("MAX_PIC_ATTEMPTS", &self.max_pic_attempts),
            ("PIC_BAN_DURATION", &self.pic_ban_duration),
            ("MAX_LOGIN_ATTEMPTS", &self.max_login_attempts),
            ("TRANSITION_TIMEOUT", &self.transition_timeout),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// How `until` / `expiresAt` are written (DECISIONS W1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum TimeEncoding {
    /// Integer Unix milliseconds, 0 for none (the seed form).
    UnixMillis,
    /// RFC 3339 strings, `0001-01-01T00:00:00Z` for none.
    Rfc3339,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The names of every topic the processor reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub command_account: String,
    pub command_account_session: String,
    pub event_account_status: String,
    pub event_account_session_status: String,
    pub command_ban: String,
    pub dead_letter: String,
}

/// Validated process settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bootstrap_servers: String,
    pub topics: Topics,
    pub consumer_group: String,
    pub application_id: String,
    pub instance_id: String,
    pub state_dir: PathBuf,
    pub internal_partitions: NonZeroU32,
    pub commit_interval: Duration,
    pub rest_port: u16,
    /// Root of atlas-ban with a trailing `/`; `None` disables the ban check.
    pub ban_service_root: Option<Url>,
    pub ban_check_timeout: Duration,
    pub config_file: Option<PathBuf>,
    pub time_encoding: TimeEncoding,
    pub log_level: String,
    pub log_format: LogFormat,
    pub trace_endpoint: Option<String>,
    pub rules: RuleOverrides,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("{name} must not be empty")]
    Empty { name: &'static str },
    #[error("{name} {value:?} may only contain ASCII letters, digits, '.', '_' and '-' (at most 200 characters)")]
    IllegalName { name: &'static str, value: String },
    #[error("{name} must be at least 1, got {value}")]
    NotPositive { name: &'static str, value: u64 },
    #[error("INTERNAL_PARTITIONS must be at most 10000, got {0}")]
    TooManyPartitions(u32),
    #[error("{name} {value:?} is not an http:// URL: {reason}")]
    BadUrl {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("INSTANCE_ID is not set and the host name cannot be read: {0}")]
    NoHostname(String),
    #[error("LOG_LEVEL {value:?} is not a valid log filter: {reason}")]
    BadLogLevel { value: String, reason: String },
}

impl Settings {
    /// Validates the raw input. `hostname` supplies the default instance id.
    pub fn from_args(
        args: RunArgs,
        hostname: impl FnOnce() -> std::io::Result<String>,
    ) -> Result<Self, SettingsError> {
        non_empty("BOOTSTRAP_SERVERS", &args.bootstrap_servers)?;
        for (name, value) in [
            ("COMMAND_TOPIC_ACCOUNT", &args.command_topic_account),
            (
                "COMMAND_TOPIC_ACCOUNT_SESSION",
                &args.command_topic_account_session,
            ),
            (
                "EVENT_TOPIC_ACCOUNT_STATUS",
                &args.event_topic_account_status,
            ),
            (
                "EVENT_TOPIC_ACCOUNT_SESSION_STATUS",
                &args.event_topic_account_session_status,
            ),
            ("COMMAND_TOPIC_BAN", &args.command_topic_ban),
            ("APPLICATION_ID", &args.application_id),
        ] {
            kafka_name(name, value)?;
        }
        // An empty group id falls back to the original's default (BEHAVIOUR 2.10).
        let consumer_group = if args.kafka_consumer_group.is_empty() {
            "Account Service".to_owned()
        } else {
            args.kafka_consumer_group
        };
        let instance_id = match args.instance_id {
            Some(id) => id,
            None => hostname()
                .map(|h| h.trim().to_owned())
                .map_err(|e| SettingsError::NoHostname(e.to_string()))?,
        };
        kafka_name("INSTANCE_ID", &instance_id)?;
        let dead_letter = match args.dead_letter_topic {
            Some(t) => t,
            None => format!("{}-dead-letters", args.application_id),
        };
        kafka_name("DEAD_LETTER_TOPIC", &dead_letter)?;
        let internal_partitions =
            NonZeroU32::new(args.internal_partitions).ok_or(SettingsError::NotPositive {
                name: "INTERNAL_PARTITIONS",
                value: 0,
            })?;
        if internal_partitions.get() > 10_000 {
            return Err(SettingsError::TooManyPartitions(internal_partitions.get()));
        }
        positive("COMMIT_INTERVAL_MS", args.commit_interval_ms)?;
        positive("BAN_CHECK_TIMEOUT_MS", args.ban_check_timeout_ms)?;
        let ban_service_root = match (args.bans_service_url, args.base_service_url) {
            (Some(u), _) => Some(service_root("BANS_SERVICE_URL", &u)?),
            (None, Some(u)) => Some(service_root("BASE_SERVICE_URL", &u)?),
            (None, None) => None,
        };
        tracing_subscriber::EnvFilter::try_new(&args.log_level).map_err(|e| {
            SettingsError::BadLogLevel {
                value: args.log_level.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(Settings {
            bootstrap_servers: args.bootstrap_servers,
            topics: Topics {
                command_account: args.command_topic_account,
                command_account_session: args.command_topic_account_session,
                event_account_status: args.event_topic_account_status,
                event_account_session_status: args.event_topic_account_session_status,
                command_ban: args.command_topic_ban,
                dead_letter,
            },
            consumer_group,
            application_id: args.application_id,
            instance_id,
            state_dir: args.state_dir,
            internal_partitions,
            commit_interval: Duration::from_millis(args.commit_interval_ms),
            rest_port: args.rest_port,
            ban_service_root,
            ban_check_timeout: Duration::from_millis(args.ban_check_timeout_ms),
            config_file: args.config_file,
            time_encoding: args.time_encoding,
            log_level: args.log_level,
            log_format: args.log_format,
            trace_endpoint: args.trace_endpoint.filter(|t| !t.is_empty()),
            rules: args.rules,
        })
    }
}

/// The host name, the default instance id (stable across restarts of a pod or host).
pub fn system_hostname() -> std::io::Result<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
}

fn non_empty(name: &'static str, value: &str) -> Result<(), SettingsError> {
    if value.trim().is_empty() {
        Err(SettingsError::Empty { name })
    } else {
        Ok(())
    }
}

fn positive(name: &'static str, value: u64) -> Result<(), SettingsError> {
    if value == 0 {
        Err(SettingsError::NotPositive { name, value })
    } else {
        Ok(())
    }
}

/// Kafka accepts topic names and `group.instance.id`s of these characters
/// only; checking here turns a late broker error into a startup error. The
/// length limit leaves room for the suffixes of internal topics.
fn kafka_name(name: &'static str, value: &str) -> Result<(), SettingsError> {
    non_empty(name, value)?;
    let legal = value.len() <= 200
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if legal {
        Ok(())
    } else {
        Err(SettingsError::IllegalName {
            name,
            value: value.to_owned(),
        })
    }
}

/// Parses a service root and makes it end in `/`, so that relative paths
/// such as `bans/check` are appended to it (the Atlas services concatenate
/// `BASE_SERVICE_URL + "bans/"`, with the root ending in `/` by convention).
pub fn service_root(name: &'static str, value: &str) -> Result<Url, SettingsError> {
    let bad = |reason: String| SettingsError::BadUrl {
        name,
        value: value.to_owned(),
        reason,
    };
    let mut url = Url::parse(value).map_err(|e| bad(e.to_string()))?;
    if url.scheme() != "http" {
        return Err(bad(format!(
            "scheme {:?} is not supported (this build has no TLS)",
            url.scheme()
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query or fragment is not allowed".to_owned()));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<Settings, SettingsError> {
        let mut argv = vec!["account-streams"];
        argv.extend_from_slice(args);
        let w = Wrapper::try_parse_from(argv).expect("clap parse");
        Settings::from_args(w.run, || Ok("host-7\n".to_owned()))
    }

    // Tests must not depend on the environment of the test runner: clap reads
    // env vars, so these tests only assert on options a CI env does not set.
    #[test]
    fn defaults_match_the_original_service() {
        // The suite itself runs with BOOTSTRAP_SERVERS set to the test broker.
        let s = parse(&[]).unwrap();
        match std::env::var("BOOTSTRAP_SERVERS") {
            Ok(b) if !b.is_empty() => assert_eq!(s.bootstrap_servers, b),
            _ => assert_eq!(s.bootstrap_servers, "127.0.0.1:9092"),
        }
        let s = parse(&[]).unwrap();
        assert_eq!(
            s.topics,
            Topics {
                command_account: "COMMAND_TOPIC_ACCOUNT".into(),
                command_account_session: "COMMAND_TOPIC_ACCOUNT_SESSION".into(),
                event_account_status: "EVENT_TOPIC_ACCOUNT_STATUS".into(),
                event_account_session_status: "EVENT_TOPIC_ACCOUNT_SESSION_STATUS".into(),
                command_ban: "COMMAND_TOPIC_BAN".into(),
                dead_letter: "account-service-dead-letters".into(),
            }
        );
        assert_eq!(s.consumer_group, "Account Service");
        assert_eq!(s.application_id, "account-service");
        assert_eq!(s.instance_id, "host-7");
        assert_eq!(s.state_dir, PathBuf::from("./state"));
        assert_eq!(s.internal_partitions.get(), 6);
        assert_eq!(s.commit_interval, Duration::from_millis(100));
        assert_eq!(s.rest_port, 8080);
        assert_eq!(s.ban_service_root, None);
        assert_eq!(s.ban_check_timeout, Duration::from_secs(2));
        assert_eq!(s.time_encoding, TimeEncoding::UnixMillis);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.rules, RuleOverrides::default());
        assert!(s.rules.as_env_pairs().is_empty());
    }

    #[test]
    fn dead_letter_topic_follows_the_application_id() {
        let s = parse(&["--application-id", "acc-eu"]).unwrap();
        assert_eq!(s.topics.dead_letter, "acc-eu-dead-letters");
    }

    #[test]
    fn consumer_group_is_verbatim_including_spaces() {
        let s = parse(&["--kafka-consumer-group", " my group "]).unwrap();
        assert_eq!(s.consumer_group, " my group ");
        let s = parse(&["--kafka-consumer-group", ""]).unwrap();
        assert_eq!(s.consumer_group, "Account Service");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        assert_eq!(
            parse(&["--internal-partitions", "0"]).unwrap_err(),
            SettingsError::NotPositive {
                name: "INTERNAL_PARTITIONS",
                value: 0
            }
        );
        assert_eq!(
            parse(&["--instance-id", "pod 1"]).unwrap_err().to_string(),
            "INSTANCE_ID \"pod 1\" may only contain ASCII letters, digits, '.', '_' and '-' (at most 200 characters)"
        );
        assert!(matches!(
            parse(&["--bans-service-url", "https://ban/"]).unwrap_err(),
            SettingsError::BadUrl {
                name: "BANS_SERVICE_URL",
                ..
            }
        ));
        assert!(matches!(
            parse(&["--log-level", "info,[[["]).unwrap_err(),
            SettingsError::BadLogLevel { .. }
        ));
        // Type errors are caught by clap before validation.
        assert!(Wrapper::try_parse_from(["x", "--internal-partitions", "six"]).is_err());
        assert!(Wrapper::try_parse_from(["x", "--time-encoding", "iso"]).is_err());
    }

    #[test]
    fn ban_root_gets_a_trailing_slash_and_bans_url_wins() {
        let s = parse(&[
            "--base-service-url",
            "http://nginx:80/api/",
            "--bans-service-url",
            "http://ban:8080/api",
        ])
        .unwrap();
        assert_eq!(s.ban_service_root.unwrap().as_str(), "http://ban:8080/api/");
        let s = parse(&["--base-service-url", "http://nginx/api/"]).unwrap();
        assert_eq!(s.ban_service_root.unwrap().as_str(), "http://nginx/api/");
    }

    #[test]
    fn rule_overrides_pass_through_raw() {
        let s = parse(&["--max-pin-attempts", "3", "--pin-ban-duration", "1h"]).unwrap();
        assert_eq!(
            s.rules.as_env_pairs(),
            vec![("MAX_PIN_ATTEMPTS", "3"), ("PIN_BAN_DURATION", "1h")]
        );
    }
}
