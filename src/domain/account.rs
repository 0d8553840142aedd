//! The account record (one per tenant id and account id).

use super::password::PasswordHash;
use crate::wire::ids::{AccountId, SessionId, Tenant, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A PIN or PIC value: set over the HTTP API, never printed.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A ban this service issued (PIN/PIC limit), enforced locally until it
/// expires even when atlas-ban is unreachable (D13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalBan {
    pub until: UnixMillis,
    pub reason_code: u8,
}

/// How many login-failure counters one account keeps (D1). The limit is per
/// session, so an attacker rotating sessions is not stopped by it anyway;
/// the cap only bounds the record's size.
pub const MAX_TRACKED_LOGIN_SESSIONS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub password: PasswordHash,
    pub pin: Secret,
    pub pic: Secret,
    pub birth_date: u32,
    pub pin_attempts: u32,
    pub pic_attempts: u32,
    pub gender: u8,
    pub tos: bool,
    pub local_ban: Option<LocalBan>,
    /// Failed password checks per login session (D1); only kept while
    /// `maxLoginAttempts` > 0, reset on a correct password.
    pub login_failures: BTreeMap<SessionId, u32>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl Account {
    /// A new account as the original creates it: tos false, attempts 0,
    /// empty pin/pic, gender by region and version.
    pub fn new(
        id: AccountId,
        name: String,
        password: PasswordHash,
        tenant: &Tenant,
        now: UnixMillis,
    ) -> Account {
        Account {
            id,
            name,
            password,
            pin: Secret::default(),
            pic: Secret::default(),
            birth_date: 0,
            pin_attempts: 0,
            pic_attempts: 0,
            gender: default_gender(tenant),
            tos: false,
            local_ban: None,
            login_failures: BTreeMap::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The local ban if it is still in force at `now`.
    pub fn active_local_ban(&self, now: UnixMillis) -> Option<LocalBan> {
        self.local_ban.filter(|b| b.until > now)
    }

    pub(crate) fn record_login_failure(&mut self, session: SessionId) {
        if !self.login_failures.contains_key(&session)
            && self.login_failures.len() >= MAX_TRACKED_LOGIN_SESSIONS
        {
            if let Some(first) = self.login_failures.keys().next().copied() {
                self.login_failures.remove(&first);
            }
        }
        *self.login_failures.entry(session).or_insert(0) += 1;
    }
}

/// Gender 10 ("choose in the UI") for GMS from version 87 on, else 0.
pub fn default_gender(tenant: &Tenant) -> u8 {
    if tenant.region == "GMS" && tenant.major >= 87 {
        10
    } else {
        0
    }
}
