//! The command line: documented environment, startup errors.

use std::process::{Command, Output};

fn bin(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_account-streams"))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_documents_every_environment_variable() {
    let o = bin(&["run", "--help"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let help = String::from_utf8_lossy(&o.stdout);
    for var in [
        "BOOTSTRAP_SERVERS",
        "COMMAND_TOPIC_ACCOUNT",
        "COMMAND_TOPIC_ACCOUNT_SESSION",
        "EVENT_TOPIC_ACCOUNT_STATUS",
        "EVENT_TOPIC_ACCOUNT_SESSION_STATUS",
        "COMMAND_TOPIC_BAN",
        "KAFKA_CONSUMER_GROUP",
        "APPLICATION_ID",
        "INSTANCE_ID",
        "STATE_DIR",
        "INTERNAL_PARTITIONS",
        "COMMIT_INTERVAL_MS",
        "REST_PORT",
        "DEAD_LETTER_TOPIC",
        "BANS_SERVICE_URL",
        "BASE_SERVICE_URL",
        "BAN_CHECK_TIMEOUT_MS",
        "CONFIG_FILE",
        "TIME_ENCODING",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "TRACE_ENDPOINT",
        "AUTOMATIC_REGISTER",
        "MAX_PIN_ATTEMPTS",
        "PIN_BAN_DURATION",
        "MAX_PIC_ATTEMPTS",
        "PIC_BAN_DURATION",
        "MAX_LOGIN_ATTEMPTS",
        "TRANSITION_TIMEOUT",
    ] {
        assert!(
            help.contains(&format!("[env: {var}=")),
            "--help lacks {var}:\n{help}"
        );
    }
    assert!(help.contains("[default: \"Account Service\"]"), "{help}");
    assert!(
        help.contains("- unix_millis: ") && help.contains("- rfc3339: "),
        "{help}"
    );
    assert!(help.contains("[default: unix_millis]"), "{help}");
    // Without a subcommand the same options apply (run is the default).
    let top = bin(&["--help"], &[]);
    assert!(String::from_utf8_lossy(&top.stdout).contains("[env: INTERNAL_PARTITIONS="));
}

#[test]
fn invalid_values_are_one_line_and_exit_2() {
    /// (arguments, environment, text the error line must name)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 5] = [
        (&[], &[("INTERNAL_PARTITIONS", "six")], "six"),
        (
            &["run"],
            &[("INTERNAL_PARTITIONS", "0")],
            "INTERNAL_PARTITIONS",
        ),
        (&[], &[("TIME_ENCODING", "iso8601")], "iso8601"),
        (&["run", "--rest-port", "70000"], &[], "70000"),
        (
            &[],
            &[("BANS_SERVICE_URL", "nginx/api")],
            "BANS_SERVICE_URL",
        ),
    ];
    for (args, env, needle) in cases {
        let o = bin(args, env);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?} {env:?}: {err}");
        assert!(err.starts_with("account-streams: "), "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn loadgen_has_its_own_options() {
    let o = bin(&["loadgen", "--help"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    for opt in [
        "--rate",
        "--accounts",
        "--tenants",
        "--duration",
        "--commands",
        "--seed",
        "--print-events",
        "--mode",
    ] {
        assert!(help.contains(opt), "{opt} missing:\n{help}");
    }
    let o = bin(&["loadgen", "--duration", "soon"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}
