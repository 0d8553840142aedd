//! Configuration: the original's YAML keys, ours, env overrides, and clear
//! startup errors for invalid values (D14).

use account_streams::config::{load, time_encoding, AccountConfig, ConfigError};
use account_streams::wire::TimeEncoding;
use std::collections::HashMap;
use std::time::Duration;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn no_file_means_the_shipped_defaults() {
    let c = load(None, env(&[])).unwrap();
    assert_eq!(
        c,
        AccountConfig {
            automatic_register: true,
            max_pin_attempts: 5,
            pin_ban_duration: Duration::from_secs(900),
            max_pic_attempts: 5,
            pic_ban_duration: Duration::from_secs(900),
            max_login_attempts: 0,
            transition_timeout: Duration::from_secs(5),
        }
    );
}

#[test]
fn yaml_keys_as_the_original_plus_ours() {
    let f = file(
        "automaticRegister: false\nmaxPinAttempts: 3\npinBanDuration: 1h30m\nmaxPicAttempts: 4\npicBanDuration: 500ms\nmaxLoginAttempts: 7\ntransitionTimeout: 2s\nsomethingElse: [1, 2]\n",
    );
    let c = load(Some(f.path()), env(&[])).unwrap();
    assert_eq!(
        c,
        AccountConfig {
            automatic_register: false,
            max_pin_attempts: 3,
            pin_ban_duration: Duration::from_secs(5400),
            max_pic_attempts: 4,
            pic_ban_duration: Duration::from_millis(500),
            max_login_attempts: 7,
            transition_timeout: Duration::from_secs(2),
        }
    );
    // Missing keys take the defaults.
    let f = file("maxPicAttempts: 3\npicBanDuration: 1h\n");
    let c = load(Some(f.path()), env(&[])).unwrap();
    assert_eq!(
        (c.max_pic_attempts, c.pic_ban_duration, c.max_pin_attempts),
        (3, Duration::from_secs(3600), 5)
    );
    // An empty file is all defaults.
    let f = file("");
    assert_eq!(
        load(Some(f.path()), env(&[])).unwrap(),
        AccountConfig::default()
    );
}

#[test]
fn environment_overrides_the_file() {
    let f = file("maxPinAttempts: 3\nautomaticRegister: true\n");
    let c = load(
        Some(f.path()),
        env(&[
            ("MAX_PIN_ATTEMPTS", "9"),
            ("AUTOMATIC_REGISTER", "false"),
            ("PIN_BAN_DURATION", "2m"),
            ("MAX_PIC_ATTEMPTS", "1"),
            ("PIC_BAN_DURATION", "1h"),
            ("MAX_LOGIN_ATTEMPTS", "3"),
            ("TRANSITION_TIMEOUT", "10s"),
        ]),
    )
    .unwrap();
    assert_eq!(
        c,
        AccountConfig {
            automatic_register: false,
            max_pin_attempts: 9,
            pin_ban_duration: Duration::from_secs(120),
            max_pic_attempts: 1,
            pic_ban_duration: Duration::from_secs(3600),
            max_login_attempts: 3,
            transition_timeout: Duration::from_secs(10),
        }
    );
}

#[test]
fn invalid_values_are_startup_errors_naming_the_key_and_source() {
    let f = file("pinBanDuration: soon\n");
    let err = load(Some(f.path()), env(&[])).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                key: "pinBanDuration",
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("pinBanDuration") && msg.contains(&f.path().display().to_string()),
        "{msg}"
    );

    let f = file("maxPinAttempts: -1\n");
    let err = load(Some(f.path()), env(&[])).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                key: "maxPinAttempts",
                ..
            }
        ),
        "{err:?}"
    );

    let f = file("transitionTimeout: 5\n");
    assert!(matches!(
        load(Some(f.path()), env(&[])).unwrap_err(),
        ConfigError::Invalid {
            key: "transitionTimeout",
            ..
        }
    ));

    let f = file("automaticRegister: maybe\n");
    assert!(matches!(
        load(Some(f.path()), env(&[])).unwrap_err(),
        ConfigError::Invalid {
            key: "automaticRegister",
            ..
        }
    ));

    let err = load(None, env(&[("TRANSITION_TIMEOUT", "-5s")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for transitionTimeout in environment variable TRANSITION_TIMEOUT: negative duration \"-5s\""
    );
    let err = load(None, env(&[("MAX_LOGIN_ATTEMPTS", "x")])).unwrap_err();
    assert!(err.to_string().contains("MAX_LOGIN_ATTEMPTS"), "{err}");
}

#[test]
fn named_file_missing_or_not_yaml_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = load(Some(&missing), env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("nope.yaml"), "{err}");
    let f = file("automaticRegister: [\n");
    assert!(matches!(
        load(Some(f.path()), env(&[])).unwrap_err(),
        ConfigError::Yaml { .. }
    ));
    let f = file("- a\n- b\n");
    assert!(matches!(
        load(Some(f.path()), env(&[])).unwrap_err(),
        ConfigError::Yaml { .. }
    ));
}

#[test]
fn time_encoding_setting() {
    assert_eq!(time_encoding(env(&[])).unwrap(), TimeEncoding::UnixMillis);
    assert_eq!(
        time_encoding(env(&[("TIME_ENCODING", "rfc3339")])).unwrap(),
        TimeEncoding::Rfc3339
    );
    assert_eq!(
        time_encoding(env(&[("TIME_ENCODING", "unix_millis")])).unwrap(),
        TimeEncoding::UnixMillis
    );
    assert!(time_encoding(env(&[("TIME_ENCODING", "iso")]))
        .unwrap_err()
        .to_string()
        .contains("TIME_ENCODING"));
}
