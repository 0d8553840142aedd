//! No password, hash, PIN or PIC reaches a log line (D16).

mod common;

use account_streams::domain::Secret;
use common::*;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn login_logs_carry_no_secrets() {
    let cap = Capture::default();
    let writer = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let mut w = World::new();
    {
        let a = w
            .accounts
            .get_mut(&(T1.tid(), account_streams::wire::ids::AccountId(7)))
            .unwrap();
        a.pin = Secret::new("9137");
        a.pic = Secret::new("5521");
    }
    let alice_hash = w.account(&T1, 7).unwrap().password.expose().to_string();
    tracing::subscriber::with_default(subscriber, || {
        w.session(&T1, &login(S1, "alice", "wrong-Pa55"));
        w.session(&T1, &login(S1, "alice", "secret"));
        w.session(&T2, &login(S1, "newuser", "fresh-Pa55"));
        w.account_cmd(&T1, &create("carl", "create-Pa55"));
        tracing::info!(account = ?w.account(&T1, 7), "state after login");
    });
    let logs = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    // The logs are real: the rules did log the commands and the account.
    assert!(logs.contains("planning login"), "{logs}");
    assert!(logs.contains("deciding login"), "{logs}");
    assert!(
        logs.contains("a1b2c3")
            && logs.contains("Password(***)")
            && logs.contains("PasswordHash(***)"),
        "{logs}"
    );
    for secret in [
        "wrong-Pa55",
        "secret",
        "fresh-Pa55",
        "create-Pa55",
        "9137",
        "5521",
        alice_hash.as_str(),
        "$2a$",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into: {logs}");
    }
}
