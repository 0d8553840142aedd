//! What a rule returns: explicit store changes and ordered outputs.

use super::account::Account;
use super::registry::Registry;
use crate::wire::events::{
    AccountStatus, AccountStatusEvent, BanCommand, ErrorCode, SessionError, SessionStatusBody,
    SessionStatusEvent,
};
use crate::wire::ids::{AccountId, SessionId};

/// A store mutation, scoped to the command's tenant id. The app applies
/// them in order to its key-value stores without re-deriving anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    PutAccount(Account),
    DeleteAccount(AccountId),
    /// Name index entry (D5: unique per tenant, exact).
    PutName {
        name: String,
        id: AccountId,
    },
    DeleteName(String),
    /// Never called with an empty registry: empty means `DeleteRegistry`.
    PutRegistry(AccountId, Registry),
    DeleteRegistry(AccountId),
    /// The id the caller offered for a new account was used.
    ConsumeAllocatedId(AccountId),
}

/// One produced message, before rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    AccountStatus(AccountStatusEvent),
    SessionStatus(SessionStatusEvent),
    /// Keyed by the banned account.
    Ban {
        account_id: AccountId,
        command: BanCommand,
    },
}

impl Output {
    /// D12 order: account status, then session status, then ban.
    fn rank(&self) -> u8 {
        match self {
            Output::AccountStatus(_) => 0,
            Output::SessionStatus(_) => 1,
            Output::Ban { .. } => 2,
        }
    }

    /// The account id the 8-byte key is made from.
    pub fn key_id(&self) -> AccountId {
        match self {
            Output::AccountStatus(e) => e.account_id,
            Output::SessionStatus(e) => e.account_id,
            Output::Ban { account_id, .. } => *account_id,
        }
    }
}

/// A well-formed command the rules refuse without any output; counted as
/// `rejected` with this reason (metrics contract), or just logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    DuplicateName,
    EmptyName,
    PasswordTooLong,
    AccountNotFound,
    LoggedIn,
    LogoutBlocked,
    NotLoggedIn,
}

impl Reject {
    /// Whether this counts in `account_streams_outcomes_total{kind="rejected"}`
    /// (docs/metrics.md); the others are ordinary no-op outcomes.
    pub fn is_metric_rejection(self) -> bool {
        matches!(
            self,
            Reject::DuplicateName | Reject::EmptyName | Reject::PasswordTooLong
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reject::DuplicateName => "duplicate_name",
            Reject::EmptyName => "empty_name",
            Reject::PasswordTooLong => "password_too_long",
            Reject::AccountNotFound => "account_not_found",
            Reject::LoggedIn => "logged_in",
            Reject::LogoutBlocked => "logout_blocked",
            Reject::NotLoggedIn => "not_logged_in",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effects {
    pub changes: Vec<Change>,
    pub outputs: Vec<Output>,
    pub rejected: Option<Reject>,
}

impl Effects {
    pub fn none() -> Effects {
        Effects::default()
    }

    pub fn rejected(r: Reject) -> Effects {
        Effects {
            rejected: Some(r),
            ..Effects::default()
        }
    }

    pub(crate) fn change(&mut self, c: Change) {
        self.changes.push(c);
    }

    pub(crate) fn emit(&mut self, o: Output) {
        self.outputs.push(o);
    }

    /// Put outputs in D12 order (stable within a topic).
    pub(crate) fn finish(mut self) -> Effects {
        self.outputs.sort_by_key(Output::rank);
        self
    }

    pub(crate) fn account_status(&mut self, id: AccountId, name: &str, status: AccountStatus) {
        self.emit(Output::AccountStatus(AccountStatusEvent {
            account_id: id,
            name: name.to_string(),
            status,
        }));
    }

    pub(crate) fn session_status(
        &mut self,
        session: SessionId,
        id: AccountId,
        name: &str,
        body: SessionStatusBody,
    ) {
        self.emit(Output::SessionStatus(SessionStatusEvent {
            session_id: session,
            account_id: id,
            account_name: name.to_string(),
            body,
        }));
    }

    /// `ERROR` with reason 0 and no expiry.
    pub(crate) fn session_error(
        &mut self,
        session: SessionId,
        id: AccountId,
        name: &str,
        code: ErrorCode,
        ip: &str,
        hwid: &str,
    ) {
        self.session_status(
            session,
            id,
            name,
            SessionStatusBody::Error(SessionError {
                code,
                reason: 0,
                until: 0,
                ip_address: ip.to_string(),
                hwid: hwid.to_string(),
            }),
        );
    }

    /// `PutRegistry` or, for an empty registry, `DeleteRegistry`.
    pub(crate) fn store_registry(&mut self, id: AccountId, r: Registry) {
        if r.is_empty() {
            self.change(Change::DeleteRegistry(id));
        } else {
            self.change(Change::PutRegistry(id, r));
        }
    }
}
