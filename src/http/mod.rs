//! The operational HTTP server: `/metrics`, `/healthz`, `/readyz`.
//!
//! Liveness and readiness are separate on purpose: a processor restoring
//! its stores from the changelogs is alive (do not restart it) but not
//! ready (do not count on it for traffic or declare a rollout done).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::Registry;
use tokio::net::TcpListener;

/// Answers "is this instance ready?" — provided by the runtime (true once
/// every assigned task has restored its stores).
#[derive(Clone)]
pub struct Readiness(Arc<dyn Fn() -> bool + Send + Sync>);

impl Readiness {
    pub fn new(f: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Readiness(Arc::new(f))
    }

    /// Readiness read from a shared flag.
    pub fn flag(flag: Arc<AtomicBool>) -> Self {
        Readiness::new(move || flag.load(Ordering::Acquire))
    }

    pub fn is_ready(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Readiness").field(&self.is_ready()).finish()
    }
}

#[derive(Clone, Debug)]
struct HttpState {
    registry: Registry,
    readiness: Readiness,
}

/// The router; exposed for tests and for adding query routes later.
pub fn router(registry: Registry, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(HttpState {
            registry,
            readiness,
        })
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(registry, readiness))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(state): State<HttpState>) -> Response {
    match crate::metrics::render(&state.registry) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable\n").into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{OutcomeKind, ServiceMetrics};

    async fn get(client: &reqwest::Client, url: String) -> (u16, String) {
        let resp = client.get(url).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let registry = Registry::new();
        let metrics = ServiceMetrics::register(&registry).unwrap();
        let ready = Arc::new(AtomicBool::new(false));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            registry,
            Readiness::flag(ready.clone()),
            async {
                let _ = stop_rx.await;
            },
        ));
        let client = reqwest::Client::new();
        let base = format!("http://{addr}");

        metrics.outcome(OutcomeKind::AccountStatus, "LOGGED_IN");
        metrics.outcome(OutcomeKind::AccountStatus, "LOGGED_IN");
        let (status, body) = get(&client, format!("{base}/metrics")).await;
        assert_eq!(status, 200);
        assert!(
            body.lines().any(|l| l
                == "account_streams_outcomes_total{code=\"LOGGED_IN\",kind=\"account_status\"} 2"),
            "{body}"
        );

        assert_eq!(
            get(&client, format!("{base}/healthz")).await,
            (200, "ok".into())
        );
        assert_eq!(
            get(&client, format!("{base}/readyz")).await,
            (503, "not ready".into())
        );
        ready.store(true, Ordering::Release);
        assert_eq!(
            get(&client, format!("{base}/readyz")).await,
            (200, "ready".into())
        );
        assert_eq!(get(&client, format!("{base}/nope")).await.0, 404);

        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
