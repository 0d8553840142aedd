//! decode + rule + encode of a PROGRESS_STATE command, and one bcrypt
//! verify at cost 10. Run: `cargo bench --bench domain`.

use account_streams::config::AccountConfig;
use account_streams::domain::password::{hash, verify};
use account_streams::domain::session::progress_state;
use account_streams::domain::{Account, Ctx, Registry, Service, Session, SessionKey, SessionState};
use account_streams::wire::commands::{decode_session_command, Password, SessionCommandBody};
use account_streams::wire::ids::{AccountId, SessionId, Tenant, TenantId, UnixMillis, Uuid};
use account_streams::wire::{parse_headers, render, OutboundContext, TimeEncoding};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

const CMD: &[u8] = br#"{"sessionId":"a0000000-0000-4000-8000-000000000001","accountId":7,"author":"LOGIN","type":"PROGRESS_STATE","body":{"state":2,"params":{"ipAddress":"10.0.0.20","port":7575,"characterId":1001}}}"#;

fn progress(c: &mut Criterion) {
    let headers: Vec<(&str, Option<&[u8]>)> = vec![
        (
            "traceparent",
            Some(&b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"[..]),
        ),
        (
            "TENANT_ID",
            Some(&b"0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f"[..]),
        ),
        ("REGION", Some(&b"GMS"[..])),
        ("MAJOR_VERSION", Some(&[0u8, 83][..])),
        ("MINOR_VERSION", Some(&[0u8, 1][..])),
    ];
    let tenant = Tenant {
        id: TenantId(Uuid::parse(b"0f7a6c1e-8d2b-4c3a-9e5f-1a2b3c4d5e6f").unwrap()),
        region: "GMS".into(),
        major: 83,
        minor: 1,
    };
    let config = AccountConfig::default();
    let account = Account::new(
        AccountId(7),
        "alice".into(),
        account_streams::domain::password::PasswordHash::from_stored("$2a$10$x"),
        &tenant,
        UnixMillis(0),
    );
    let s1 = SessionId(Uuid::parse(b"a0000000-0000-4000-8000-000000000001").unwrap());
    let registry = Registry::with_sessions(
        tenant.clone(),
        [(
            SessionKey {
                session: s1,
                service: Service::Login,
            },
            Session {
                state: SessionState::LoggedIn,
                updated_at: UnixMillis(1),
            },
        )],
    );
    let run = || {
        let h = parse_headers(black_box(&headers).iter().copied()).unwrap();
        let cmd = decode_session_command(black_box(CMD)).unwrap();
        let SessionCommandBody::ProgressState {
            state, normalised, ..
        } = &cmd.body
        else {
            unreachable!()
        };
        let ctx = Ctx {
            now: UnixMillis(1_787_480_100_000),
            config: &config,
            tenant: &h.tenant,
        };
        let e = progress_state(
            Some(&account),
            Some(&registry),
            cmd.session_id,
            &cmd.issuer(),
            *state,
            normalised,
            &ctx,
        );
        let out = OutboundContext {
            tenant: h.tenant.clone(),
            trace: h.trace,
            environment: h.environment,
        };
        let msgs: Vec<_> = e
            .outputs
            .iter()
            .map(|o| render(o, &out, TimeEncoding::UnixMillis))
            .collect();
        black_box((msgs, e.changes))
    };
    c.bench_function("progress_state decode+rule+encode", |b| b.iter(run));
    // Wall time above includes time this thread waited for a CPU on a
    // shared machine; the scheduler's on-CPU time is the cost itself.
    const N: u32 = 200_000;
    let (cpu0, wall0) = (on_cpu_ns(), std::time::Instant::now());
    for _ in 0..N {
        run();
    }
    let (cpu, wall) = (on_cpu_ns(), wall0.elapsed());
    if let (Some(a), Some(b)) = (cpu0, cpu) {
        println!(
            "progress_state decode+rule+encode: {:.2} us on-CPU per command, {:.2} us wall ({N} commands)",
            (b - a) as f64 / f64::from(N) / 1000.0,
            wall.as_secs_f64() * 1e6 / f64::from(N)
        );
    }
}

/// This thread's on-CPU time in ns (Linux schedstat), if available.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn bcrypt_verify(c: &mut Criterion) {
    let pw = Password::new("secret");
    let stored = hash(&pw).unwrap();
    let mut g = c.benchmark_group("bcrypt");
    g.sample_size(10);
    g.bench_function("verify cost 10", |b| {
        b.iter(|| assert!(verify(black_box(&pw), black_box(&stored))))
    });
    g.finish();
}

criterion_group!(benches, progress, bcrypt_verify);
criterion_main!(benches);
