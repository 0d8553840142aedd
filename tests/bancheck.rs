//! The ban-check client against a stub atlas-ban on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use account_streams::bancheck::{BanCheckError, BanCheckOutcome, BanChecker};
use account_streams::metrics::ServiceMetrics;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use reqwest::Url;

#[derive(Clone, Default)]
struct Stub {
    /// scenario -> raw query strings received.
    seen: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

fn attrs(a: &str) -> String {
    format!(r#"{{"data":{{"type":"ban-checks","id":"1","attributes":{a}}}}}"#)
}

async fn check(
    State(stub): State<Stub>,
    Path(scenario): Path<String>,
    RawQuery(query): RawQuery,
) -> (StatusCode, String) {
    stub.seen
        .lock()
        .unwrap()
        .entry(scenario.clone())
        .or_default()
        .push(query.unwrap_or_default());
    match scenario.as_str() {
        "rfc" => (
            StatusCode::OK,
            attrs(
                r#"{"banned":true,"banType":2,"reason":"botting","reasonCode":3,"permanent":false,"expiresAt":"2030-01-01T00:00:00Z"}"#,
            ),
        ),
        "int" => (
            StatusCode::OK,
            attrs(
                r#"{"banned":true,"banType":2,"reason":"botting","reasonCode":4,"permanent":false,"expiresAt":1893456000123}"#,
            ),
        ),
        "permanent" => (
            StatusCode::OK,
            attrs(
                r#"{"banned":true,"banType":0,"reason":"x","reasonCode":9,"permanent":true,"expiresAt":"2031-01-01T00:00:00Z"}"#,
            ),
        ),
        "zero" => (
            StatusCode::OK,
            attrs(
                r#"{"banned":true,"banType":1,"reason":"x","reasonCode":5,"permanent":false,"expiresAt":"0001-01-01T00:00:00Z"}"#,
            ),
        ),
        "clean" | "echo" => (
            StatusCode::OK,
            attrs(
                r#"{"banned":false,"banType":0,"reason":"","reasonCode":0,"permanent":false,"expiresAt":"0001-01-01T00:00:00Z"}"#,
            ),
        ),
        "flaky" => {
            // First call fails, the retry succeeds.
            let n = stub.seen.lock().unwrap()["flaky"].len();
            if n == 1 {
                (StatusCode::BAD_GATEWAY, String::new())
            } else {
                (
                    StatusCode::OK,
                    attrs(
                        r#"{"banned":true,"reasonCode":6,"permanent":false,"expiresAt":1893456000000}"#,
                    ),
                )
            }
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, attrs(r#"{"banned":false}"#))
        }
        "notfound" => (StatusCode::NOT_FOUND, String::new()),
        "garbage" => (StatusCode::OK, "<html>".into()),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "boom".into()),
    }
}

struct Server {
    base: String,
    stub: Stub,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_stub() -> Server {
    let stub = Stub::default();
    let app = Router::new()
        .route("/{scenario}/bans/check", get(check))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        stub,
        _stop: tx,
    }
}

fn checker(
    server: &Server,
    scenario: &str,
    deadline: Duration,
    metrics: &ServiceMetrics,
) -> BanChecker {
    // Root without a trailing slash on purpose: the client adds it.
    let root = Url::parse(&format!("{}/{scenario}", server.base)).unwrap();
    BanChecker::new(&root, deadline, Some(metrics.clone())).unwrap()
}

fn metrics() -> ServiceMetrics {
    ServiceMetrics::register(&prometheus::Registry::new()).unwrap()
}

#[tokio::test]
async fn banned_answers_in_both_time_forms() {
    let s = start_stub().await;
    let m = metrics();
    let d = Duration::from_secs(2);
    assert_eq!(
        checker(&s, "rfc", d, &m)
            .check("10.0.0.5", "a1b2c3", 7)
            .await,
        BanCheckOutcome::Banned {
            reason_code: 3,
            until_unix_millis: 1_893_456_000_000
        }
    );
    assert_eq!(
        checker(&s, "int", d, &m)
            .check("10.0.0.5", "a1b2c3", 7)
            .await,
        BanCheckOutcome::Banned {
            reason_code: 4,
            until_unix_millis: 1_893_456_000_123
        }
    );
    assert_eq!(
        checker(&s, "permanent", d, &m)
            .check("10.0.0.5", "a1b2c3", 7)
            .await,
        BanCheckOutcome::Banned {
            reason_code: 9,
            until_unix_millis: 0
        }
    );
    assert_eq!(
        checker(&s, "zero", d, &m)
            .check("10.0.0.5", "a1b2c3", 7)
            .await,
        BanCheckOutcome::Banned {
            reason_code: 5,
            until_unix_millis: 0
        }
    );
    assert_eq!(
        checker(&s, "clean", d, &m)
            .check("10.0.0.5", "a1b2c3", 7)
            .await,
        BanCheckOutcome::NotBanned
    );
    assert_eq!(m.ban_check_failures(), 0);
    assert_eq!(
        s.stub.seen.lock().unwrap()["rfc"],
        vec!["ip=10.0.0.5&hwid=a1b2c3&accountId=7".to_owned()]
    );
}

#[tokio::test]
async fn errors_fail_open_and_are_counted() {
    let s = start_stub().await;
    let m = metrics();
    let d = Duration::from_secs(2);
    assert_eq!(
        checker(&s, "boom", d, &m).check("1.2.3.4", "h", 1).await,
        BanCheckOutcome::Failed(BanCheckError::Status(500))
    );
    // A 5xx is retried once.
    assert_eq!(s.stub.seen.lock().unwrap()["boom"].len(), 2);
    // A 4xx is not.
    assert_eq!(
        checker(&s, "notfound", d, &m)
            .check("1.2.3.4", "h", 1)
            .await,
        BanCheckOutcome::Failed(BanCheckError::Status(404))
    );
    assert_eq!(s.stub.seen.lock().unwrap()["notfound"].len(), 1);
    assert!(matches!(
        checker(&s, "garbage", d, &m).check("1.2.3.4", "h", 1).await,
        BanCheckOutcome::Failed(BanCheckError::Decode(_))
    ));
    // Connection refused: nothing listens on port 9 of the stub's host.
    let dead = BanChecker::new(
        &Url::parse("http://127.0.0.1:9/").unwrap(),
        d,
        Some(m.clone()),
    )
    .unwrap();
    assert!(matches!(
        dead.check("1.2.3.4", "h", 1).await,
        BanCheckOutcome::Failed(BanCheckError::Transport(_))
    ));
    assert_eq!(m.ban_check_failures(), 4);
}

#[tokio::test]
async fn one_retry_inside_the_deadline() {
    let s = start_stub().await;
    let m = metrics();
    assert_eq!(
        checker(&s, "flaky", Duration::from_secs(2), &m)
            .check("1.2.3.4", "h", 1)
            .await,
        BanCheckOutcome::Banned {
            reason_code: 6,
            until_unix_millis: 1_893_456_000_000
        }
    );
    assert_eq!(s.stub.seen.lock().unwrap()["flaky"].len(), 2);
    assert_eq!(m.ban_check_failures(), 0);
}

#[tokio::test]
async fn a_hung_ban_service_costs_one_deadline() {
    let s = start_stub().await;
    let m = metrics();
    let deadline = Duration::from_millis(600);
    let started = Instant::now();
    let outcome = checker(&s, "slow", deadline, &m)
        .check("1.2.3.4", "h", 1)
        .await;
    let took = started.elapsed();
    assert!(
        matches!(outcome, BanCheckOutcome::Failed(BanCheckError::Timeout(_))),
        "{outcome:?}"
    );
    assert!(took >= Duration::from_millis(550), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    // First attempt cut at half the deadline, then the retry.
    assert_eq!(s.stub.seen.lock().unwrap()["slow"].len(), 2);
    assert_eq!(m.ban_check_failures(), 1);
}

#[tokio::test]
async fn parameters_arrive_url_encoded() {
    let s = start_stub().await;
    let m = metrics();
    let ip = "10.0.0.5&accountId=1";
    let hwid = "a b+c#d&e%f/ü";
    assert_eq!(
        checker(&s, "echo", Duration::from_secs(2), &m)
            .check(ip, hwid, 4_000_000_000)
            .await,
        BanCheckOutcome::NotBanned
    );
    let raw = s.stub.seen.lock().unwrap()["echo"][0].clone();
    assert!(!raw.contains('#') && !raw.contains(' '), "{raw}");
    let decoded: Vec<(String, String)> = Url::parse(&format!("http://x/?{raw}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(
        decoded,
        vec![
            ("ip".to_owned(), ip.to_owned()),
            ("hwid".to_owned(), hwid.to_owned()),
            ("accountId".to_owned(), "4000000000".to_owned()),
        ]
    );
}
