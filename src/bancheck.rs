//! Client of atlas-ban's `GET bans/check` (DECISIONS D13, BEHAVIOUR 4.3 step 4).
//!
//! The URL is `<root>bans/check?ip=..&hwid=..&accountId=..`, where `<root>`
//! is BANS_SERVICE_URL, else BASE_SERVICE_URL, with a `/` appended when it
//! does not end in one (Atlas services concatenate `BASE_SERVICE_URL +
//! "bans/"`, so roots end in `/` by convention, e.g. `http://nginx/api/`).
//! Parameters are form-URL-encoded (the original did not encode them, B20).
//!
//! A check never takes longer than its deadline (default 2 s): the first
//! attempt gets half of it, so that a hung ban service still leaves time
//! for the one retry. Any failure is fail-open: the caller proceeds as if
//! not banned, and the failure is counted.

mod response;
pub mod rfc3339;

use std::time::{Duration, Instant};

use reqwest::Url;

use crate::metrics::{ServiceMetrics, SlowStage};

pub use response::Verdict;

/// Result of one ban check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanCheckOutcome {
    NotBanned,
    /// `until_unix_millis` 0 = permanent or no expiry.
    Banned {
        reason_code: u8,
        until_unix_millis: u64,
    },
    /// The check failed; the login proceeds (fail-open).
    Failed(BanCheckError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BanCheckError {
    #[error("ban check timed out after {0:?}")]
    Timeout(Duration),
    #[error("ban service unreachable: {0}")]
    Transport(String),
    #[error("ban service answered HTTP {0}")]
    Status(u16),
    #[error("ban service answer not understood: {0}")]
    Decode(String),
}

impl BanCheckError {
    /// Worth a second attempt: the service may answer next time.
    fn retryable(&self) -> bool {
        match self {
            BanCheckError::Timeout(_) | BanCheckError::Transport(_) => true,
            BanCheckError::Status(code) => *code >= 500,
            BanCheckError::Decode(_) => false,
        }
    }
}

/// A configured ban-check client; cheap to clone.
#[derive(Debug, Clone)]
pub struct BanChecker {
    client: reqwest::Client,
    check_url: Url,
    deadline: Duration,
    metrics: Option<ServiceMetrics>,
}

impl BanChecker {
    /// `root` must end in `/` (as [`crate::settings::service_root`] returns it).
    pub fn new(
        root: &Url,
        deadline: Duration,
        metrics: Option<ServiceMetrics>,
    ) -> Result<Self, BanCheckError> {
        let check_url = check_url(root)?;
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| BanCheckError::Transport(e.to_string()))?;
        Ok(BanChecker {
            client,
            check_url,
            deadline,
            metrics,
        })
    }

    /// The request URL for these parameters.
    pub fn url_for(&self, ip: &str, hwid: &str, account_id: u32) -> Url {
        let mut url = self.check_url.clone();
        url.query_pairs_mut()
            .append_pair("ip", ip)
            .append_pair("hwid", hwid)
            .append_pair("accountId", &account_id.to_string());
        url
    }

    /// Asks atlas-ban; never fails, never exceeds the deadline (plus scheduling).
    pub async fn check(&self, ip: &str, hwid: &str, account_id: u32) -> BanCheckOutcome {
        let started = Instant::now();
        let url = self.url_for(ip, hwid, account_id);
        let outcome = match self.attempts(url, started).await {
            Ok(Verdict::NotBanned) => BanCheckOutcome::NotBanned,
            Ok(Verdict::Banned {
                reason_code,
                until_unix_millis,
            }) => BanCheckOutcome::Banned {
                reason_code,
                until_unix_millis,
            },
            Err(e) => {
                tracing::warn!(account_id, error = %e, "ban check failed; proceeding as not banned");
                if let Some(m) = &self.metrics {
                    m.ban_check_failed();
                }
                BanCheckOutcome::Failed(e)
            }
        };
        if let Some(m) = &self.metrics {
            m.slow_work(SlowStage::BanCheck, started.elapsed());
        }
        outcome
    }

    async fn attempts(&self, url: Url, started: Instant) -> Result<Verdict, BanCheckError> {
        let first_budget = self.deadline / 2;
        let first = match tokio::time::timeout(first_budget, self.attempt(url.clone())).await {
            Ok(result) => result,
            Err(_) => Err(BanCheckError::Timeout(first_budget)),
        };
        match first {
            Err(e) if e.retryable() => {
                let left = self.deadline.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(BanCheckError::Timeout(self.deadline));
                }
                tracing::debug!(error = %e, "ban check retry");
                match tokio::time::timeout(left, self.attempt(url)).await {
                    Ok(result) => result,
                    Err(_) => Err(BanCheckError::Timeout(self.deadline)),
                }
            }
            other => other,
        }
    }

    async fn attempt(&self, url: Url) -> Result<Verdict, BanCheckError> {
        let resp = self
            .client
            .get(url)
            .header("Accept", "application/vnd.api+json, application/json")
            .send()
            .await
            .map_err(|e| BanCheckError::Transport(without_url(e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(BanCheckError::Status(status.as_u16()));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| BanCheckError::Transport(without_url(e)))?;
        response::parse(&body).map_err(BanCheckError::Decode)
    }
}

/// `<root>bans/check`; `root` gets a trailing `/` if it lacks one.
pub fn check_url(root: &Url) -> Result<Url, BanCheckError> {
    let mut base = root.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join("bans/check")
        .map_err(|e| BanCheckError::Transport(format!("bad ban service URL: {e}")))
}

/// reqwest errors print the URL, which carries the ip and hwid of a player;
/// keep logs and errors free of them.
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_joins_the_root_and_encodes_parameters() {
        let with_slash = Url::parse("http://nginx:80/api/").unwrap();
        let without = Url::parse("http://ban:8080/api").unwrap();
        assert_eq!(
            check_url(&with_slash).unwrap().as_str(),
            "http://nginx/api/bans/check"
        );
        assert_eq!(
            check_url(&without).unwrap().as_str(),
            "http://ban:8080/api/bans/check"
        );
        let c = BanChecker::new(&with_slash, Duration::from_secs(2), None).unwrap();
        assert_eq!(
            c.url_for("10.0.0.5", "a&b#c+d e", 7).as_str(),
            "http://nginx/api/bans/check?ip=10.0.0.5&hwid=a%26b%23c%2Bd+e&accountId=7"
        );
    }
}
