//! Rule configuration: the original's `config.yaml` keys plus ours (D14).
//!
//! Sources, later wins: built-in defaults (the original's shipped values),
//! the YAML file if one is given, then environment variables:
//!
//! | YAML key            | env variable          | default |
//! |---------------------|-----------------------|---------|
//! | `automaticRegister` | `AUTOMATIC_REGISTER`  | `true`  |
//! | `maxPinAttempts`    | `MAX_PIN_ATTEMPTS`    | `5`     |
//! | `pinBanDuration`    | `PIN_BAN_DURATION`    | `15m`   |
//! | `maxPicAttempts`    | `MAX_PIC_ATTEMPTS`    | `5`     |
//! | `picBanDuration`    | `PIC_BAN_DURATION`    | `15m`   |
//! | `maxLoginAttempts`  | `MAX_LOGIN_ATTEMPTS`  | `0` (off) |
//! | `transitionTimeout` | `TRANSITION_TIMEOUT`  | `5s`    |
//!
//! Durations use Go's syntax (`15m`, `1h30m`, `500ms`, `1.5h`). Booleans
//! accept Go's `strconv.ParseBool` spellings. A present but invalid value,
//! or a named file that is missing or not YAML, is an error naming the file
//! or key: the service refuses to start instead of answering every login
//! with `SYSTEM_ERROR` as the original did (B27). `TIME_ENCODING` (W1) is
//! read by [`time_encoding`].

use crate::wire::time::TimeEncoding;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    pub automatic_register: bool,
    pub max_pin_attempts: u32,
    pub pin_ban_duration: Duration,
    pub max_pic_attempts: u32,
    pub pic_ban_duration: Duration,
    /// 0 = off (D1).
    pub max_login_attempts: u32,
    pub transition_timeout: Duration,
}

impl Default for AccountConfig {
    fn default() -> Self {
        AccountConfig {
            automatic_register: true,
            max_pin_attempts: 5,
            pin_ban_duration: Duration::from_secs(15 * 60),
            max_pic_attempts: 5,
            pic_ban_duration: Duration::from_secs(15 * 60),
            max_login_attempts: 0,
            transition_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("invalid value for {key} in {source_name}: {problem}")]
    Invalid {
        key: &'static str,
        source_name: String,
        problem: String,
    },
}

/// The environment variable naming the configuration file.
pub const CONFIG_FILE_ENV: &str = "CONFIG_FILE";

/// Which file to load: `CONFIG_FILE` if set (it must then exist), else
/// `config.yaml` in the working directory if present (the original's
/// location), else none (all defaults).
pub fn resolve_config_path(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env(CONFIG_FILE_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from("config.yaml");
    local.exists().then_some(local)
}

struct Key {
    yaml: &'static str,
    env: &'static str,
}

const AUTOMATIC_REGISTER: Key = Key {
    yaml: "automaticRegister",
    env: "AUTOMATIC_REGISTER",
};
const MAX_PIN_ATTEMPTS: Key = Key {
    yaml: "maxPinAttempts",
    env: "MAX_PIN_ATTEMPTS",
};
const PIN_BAN_DURATION: Key = Key {
    yaml: "pinBanDuration",
    env: "PIN_BAN_DURATION",
};
const MAX_PIC_ATTEMPTS: Key = Key {
    yaml: "maxPicAttempts",
    env: "MAX_PIC_ATTEMPTS",
};
const PIC_BAN_DURATION: Key = Key {
    yaml: "picBanDuration",
    env: "PIC_BAN_DURATION",
};
const MAX_LOGIN_ATTEMPTS: Key = Key {
    yaml: "maxLoginAttempts",
    env: "MAX_LOGIN_ATTEMPTS",
};
const TRANSITION_TIMEOUT: Key = Key {
    yaml: "transitionTimeout",
    env: "TRANSITION_TIMEOUT",
};

/// Load the configuration (see the module docs for sources and keys).
pub fn load(
    config_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<AccountConfig, ConfigError> {
    let mut c = AccountConfig::default();
    if let Some(path) = config_file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        apply_yaml(&mut c, &text, path)?;
    }
    let src = |k: &Key| format!("environment variable {}", k.env);
    if let Some(v) = env(AUTOMATIC_REGISTER.env) {
        c.automatic_register = parse_bool(&v).ok_or_else(|| {
            invalid(
                &AUTOMATIC_REGISTER,
                src(&AUTOMATIC_REGISTER),
                "expected true or false",
            )
        })?;
    }
    for (key, slot) in [
        (&MAX_PIN_ATTEMPTS, &mut c.max_pin_attempts),
        (&MAX_PIC_ATTEMPTS, &mut c.max_pic_attempts),
        (&MAX_LOGIN_ATTEMPTS, &mut c.max_login_attempts),
    ] {
        if let Some(v) = env(key.env) {
            *slot = v
                .trim()
                .parse::<u32>()
                .map_err(|_| invalid(key, src(key), "expected a non-negative integer"))?;
        }
    }
    for (key, slot) in [
        (&PIN_BAN_DURATION, &mut c.pin_ban_duration),
        (&PIC_BAN_DURATION, &mut c.pic_ban_duration),
        (&TRANSITION_TIMEOUT, &mut c.transition_timeout),
    ] {
        if let Some(v) = env(key.env) {
            *slot = parse_duration(v.trim()).map_err(|p| invalid(key, src(key), p))?;
        }
    }
    Ok(c)
}

/// `TIME_ENCODING`: `unix_millis` (default) or `rfc3339` (W1).
pub fn time_encoding(env: impl Fn(&str) -> Option<String>) -> Result<TimeEncoding, ConfigError> {
    match env("TIME_ENCODING") {
        None => Ok(TimeEncoding::UnixMillis),
        Some(v) => TimeEncoding::parse(v.trim()).ok_or_else(|| ConfigError::Invalid {
            key: "TIME_ENCODING",
            source_name: "environment variable TIME_ENCODING".into(),
            problem: "expected unix_millis or rfc3339".into(),
        }),
    }
}

fn invalid(key: &Key, source_name: String, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.yaml,
        source_name,
        problem: problem.into(),
    }
}

fn apply_yaml(c: &mut AccountConfig, text: &str, path: &Path) -> Result<(), ConfigError> {
    use serde_yaml_ng::Value as Y;
    let doc: Y = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let map = match doc {
        Y::Null => return Ok(()),
        Y::Mapping(m) => m,
        _ => {
            return Err(ConfigError::Yaml {
                path: path.to_path_buf(),
                message: "top level is not a mapping".into(),
            })
        }
    };
    let src = || path.display().to_string();
    let get = |k: &Key| {
        map.get(Y::String(k.yaml.to_string()))
            .filter(|v| !v.is_null())
    };
    if let Some(v) = get(&AUTOMATIC_REGISTER) {
        c.automatic_register = v
            .as_bool()
            .ok_or_else(|| invalid(&AUTOMATIC_REGISTER, src(), "expected true or false"))?;
    }
    for (key, slot) in [
        (&MAX_PIN_ATTEMPTS, &mut c.max_pin_attempts),
        (&MAX_PIC_ATTEMPTS, &mut c.max_pic_attempts),
        (&MAX_LOGIN_ATTEMPTS, &mut c.max_login_attempts),
    ] {
        if let Some(v) = get(key) {
            *slot = v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| invalid(key, src(), "expected a non-negative integer"))?;
        }
    }
    for (key, slot) in [
        (&PIN_BAN_DURATION, &mut c.pin_ban_duration),
        (&PIC_BAN_DURATION, &mut c.pic_ban_duration),
        (&TRANSITION_TIMEOUT, &mut c.transition_timeout),
    ] {
        if let Some(v) = get(key) {
            let s = v
                .as_str()
                .ok_or_else(|| invalid(key, src(), "expected a Go duration string such as 15m"))?;
            *slot = parse_duration(s).map_err(|p| invalid(key, src(), p))?;
        }
    }
    Ok(())
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration`, restricted to non-negative values.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (expected e.g. 15m, 1h30m, 500ms)");
    let mut rest = s;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if rest.starts_with('-') {
        if rest == "-0" {
            return Ok(Duration::ZERO);
        }
        return Err(format!("negative duration {s:?}"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let unit_len = tail
            .bytes()
            .take_while(|b| !(b.is_ascii_digit() || *b == b'.'))
            .count();
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit in duration {s:?}")),
            _ => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
        };
        let n: f64 = num.parse().map_err(|_| bad())?;
        total_ns += n * scale;
        rest = tail;
    }
    if total_ns > i64::MAX as f64 {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_nanos(total_ns.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("5 s").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
