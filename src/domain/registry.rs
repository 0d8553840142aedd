//! The session registry of one account and its exact operations (§3.4).

use crate::wire::commands::Issuer;
use crate::wire::ids::{SessionId, Tenant, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The only services that can hold a session; any other issuer fails to
/// log in, so it never appears in a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Service {
    Login,
    Channel,
}

impl Service {
    pub fn from_issuer(i: &Issuer) -> Option<Service> {
        match i {
            Issuer::Login => Some(Service::Login),
            Issuer::Channel => Some(Service::Channel),
            Issuer::Other(_) => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Login => "LOGIN",
            Service::Channel => "CHANNEL",
        }
    }
}

/// A stored session's state. "Not logged in" is not stored: it is the
/// derived state of an empty registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SessionState {
    LoggedIn = 1,
    Transition = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionKey {
    pub session: SessionId,
    pub service: Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub state: SessionState,
    pub updated_at: UnixMillis,
}

/// The account's login state as the REST API and the rules see it (0/1/2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DerivedState {
    NotLoggedIn = 0,
    LoggedIn = 1,
    Transition = 2,
}

impl DerivedState {
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("already logged in")]
    AlreadyLoggedIn,
    #[error("no other service transitioning")]
    NoTransition,
    #[error("undefined service")]
    UndefinedService,
    #[error("not logged in")]
    NotLoggedIn,
    #[error("session in transition")]
    Blocked,
}

/// Sessions of one account, plus the tenant headers last seen on a command
/// that wrote it (the expiry punctuator renders its `LOGGED_OUT` with them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    pub tenant: Tenant,
    sessions: BTreeMap<SessionKey, Session>,
}

impl Registry {
    pub fn new(tenant: Tenant) -> Registry {
        Registry {
            tenant,
            sessions: BTreeMap::new(),
        }
    }

    /// A registry holding exactly the given sessions (tests, imports).
    pub fn with_sessions(
        tenant: Tenant,
        sessions: impl IntoIterator<Item = (SessionKey, Session)>,
    ) -> Registry {
        Registry {
            tenant,
            sessions: sessions.into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn sessions(&self) -> impl Iterator<Item = (&SessionKey, &Session)> {
        self.sessions.iter()
    }

    pub fn get(&self, key: &SessionKey) -> Option<&Session> {
        self.sessions.get(key)
    }

    /// The minimum state over all entries (the original's "MaximalState",
    /// B4 kept), 0 when empty.
    pub fn derived_state(&self) -> DerivedState {
        match self.sessions.values().map(|s| s.state).min() {
            None => DerivedState::NotLoggedIn,
            Some(SessionState::LoggedIn) => DerivedState::LoggedIn,
            Some(SessionState::Transition) => DerivedState::Transition,
        }
    }

    /// Login(SK): `LOGIN` needs an empty map; `CHANNEL` needs some session
    /// in transition and replaces the whole map (B22 kept).
    pub fn login(
        &mut self,
        session: SessionId,
        issuer: &Issuer,
        now: UnixMillis,
    ) -> Result<(), RegistryError> {
        let service = Service::from_issuer(issuer).ok_or(RegistryError::UndefinedService)?;
        let entry = Session {
            state: SessionState::LoggedIn,
            updated_at: now,
        };
        let key = SessionKey { session, service };
        match service {
            Service::Login => {
                if !self.sessions.is_empty() {
                    return Err(RegistryError::AlreadyLoggedIn);
                }
            }
            Service::Channel => {
                if !self
                    .sessions
                    .values()
                    .any(|s| s.state == SessionState::Transition)
                {
                    return Err(RegistryError::NoTransition);
                }
                self.sessions.clear();
            }
        }
        self.sessions.insert(key, entry);
        Ok(())
    }

    /// Transition(SK): only an existing entry; refreshes the timestamp.
    pub fn transition(
        &mut self,
        session: SessionId,
        issuer: &Issuer,
        now: UnixMillis,
    ) -> Result<(), RegistryError> {
        let service = Service::from_issuer(issuer).ok_or(RegistryError::NotLoggedIn)?;
        let s = self
            .sessions
            .get_mut(&SessionKey { session, service })
            .ok_or(RegistryError::NotLoggedIn)?;
        s.state = SessionState::Transition;
        s.updated_at = now;
        Ok(())
    }

    /// Logout(SK): blocked while that entry is in transition; removing an
    /// absent entry is a successful no-op.
    pub fn logout(&mut self, session: SessionId, issuer: &Issuer) -> Result<(), RegistryError> {
        let Some(service) = Service::from_issuer(issuer) else {
            return Ok(());
        };
        let key = SessionKey { session, service };
        if let Some(s) = self.sessions.get(&key) {
            if s.state == SessionState::Transition {
                return Err(RegistryError::Blocked);
            }
        }
        self.sessions.remove(&key);
        Ok(())
    }

    /// Remove every session.
    pub fn terminate(&mut self) {
        self.sessions.clear();
    }

    /// Remove transitions older than `timeout_ms` (strictly). Returns
    /// whether anything was removed.
    pub fn expire_transitions(&mut self, now: UnixMillis, timeout_ms: u64) -> bool {
        let before = self.sessions.len();
        self.sessions.retain(|_, s| {
            !(s.state == SessionState::Transition && is_expired(s.updated_at, now, timeout_ms))
        });
        self.sessions.len() != before
    }

    /// When the oldest transition of this registry expires (the first
    /// instant at which `expire_transitions` removes something), if any.
    pub fn next_expiry(&self, timeout_ms: u64) -> Option<UnixMillis> {
        self.sessions
            .values()
            .filter(|s| s.state == SessionState::Transition)
            .map(|s| s.updated_at.plus_millis(timeout_ms).plus_millis(1))
            .min()
    }
}

fn is_expired(updated: UnixMillis, now: UnixMillis, timeout_ms: u64) -> bool {
    i128::from(now.0) - i128::from(updated.0) > i128::from(timeout_ms)
}
