//! Session `PROGRESS_STATE` and `LOGOUT`.

use super::account::Account;
use super::ctx::Ctx;
use super::effects::{Effects, Reject};
use super::registry::{DerivedState, Registry, RegistryError};
use crate::wire::commands::Issuer;
use crate::wire::events::{AccountStatus, ErrorCode, SessionStatusBody};
use crate::wire::ids::{AccountId, SessionId};
use crate::wire::params::Params;

/// `PROGRESS_STATE` (§4.4) with the issuer upper-cased (D8) and
/// `LOGGED_OUT` only on a real logged-in -> logged-out change (D3).
/// `account`/`registry` are the command's account in its tenant.
pub fn progress_state(
    account: Option<&Account>,
    registry: Option<&Registry>,
    session: SessionId,
    issuer: &Issuer,
    state: u8,
    params: &Params,
    ctx: &Ctx<'_>,
) -> Effects {
    let mut e = Effects::none();
    let Some(a) = account else {
        // B6 kept: the requested id is not echoed.
        e.session_error(session, AccountId(0), "", ErrorCode::NotRegistered, "", "");
        return e;
    };
    let Some(before) = registry.filter(|r| r.derived_state() != DerivedState::NotLoggedIn) else {
        e.session_error(session, a.id, &a.name, ErrorCode::SystemError, "", "");
        return e;
    };
    let mut r = before.clone();
    r.tenant = ctx.tenant.clone();
    let state_changed = |state| SessionStatusBody::StateChanged {
        state,
        params: params.clone(),
    };
    match state {
        0 => {
            let result = if session.is_nil() {
                r.terminate();
                Ok(())
            } else {
                r.logout(session, issuer)
            };
            if result.is_err() {
                e.session_error(session, a.id, &a.name, ErrorCode::SystemError, "", "");
                return e;
            }
            if r.is_empty() {
                e.account_status(a.id, &a.name, AccountStatus::LoggedOut);
            }
            if &r != before {
                e.store_registry(a.id, r);
            }
            e.session_status(session, a.id, &a.name, state_changed(0));
        }
        1 => match r.login(session, issuer, ctx.now) {
            Ok(()) => {
                e.store_registry(a.id, r);
                e.account_status(a.id, &a.name, AccountStatus::LoggedIn);
                e.session_status(session, a.id, &a.name, state_changed(1));
            }
            Err(_) => e.session_error(session, a.id, &a.name, ErrorCode::SystemError, "", ""),
        },
        2 => {
            // B5 kept: STATE_CHANGED(2) even if the transition failed.
            if r.transition(session, issuer, ctx.now).is_ok() {
                e.store_registry(a.id, r);
            }
            e.session_status(session, a.id, &a.name, state_changed(2));
        }
        _ => {
            // B6 kept.
            e.session_error(session, AccountId(0), "", ErrorCode::SystemError, "", "");
        }
    }
    e.finish()
}

/// `LOGOUT` (§4.5) with D3: `LOGGED_OUT` only when the account goes from
/// logged in to not logged in.
pub fn logout(
    account: Option<&Account>,
    registry: Option<&Registry>,
    session: SessionId,
    issuer: &Issuer,
    ctx: &Ctx<'_>,
) -> Effects {
    let Some(a) = account else {
        return Effects::rejected(Reject::AccountNotFound);
    };
    let Some(before) = registry.filter(|r| !r.is_empty()) else {
        return Effects::rejected(Reject::NotLoggedIn);
    };
    let mut r = before.clone();
    r.tenant = ctx.tenant.clone();
    if session.is_nil() {
        r.terminate();
    } else if let Err(RegistryError::Blocked) = r.logout(session, issuer) {
        return Effects::rejected(Reject::LogoutBlocked);
    }
    let mut e = Effects::none();
    if r.sessions().count() == before.sessions().count() {
        // Nothing was removed: no state change, nothing to say (D3).
        return e;
    }
    if r.is_empty() {
        e.account_status(a.id, &a.name, AccountStatus::LoggedOut);
    }
    e.store_registry(a.id, r);
    e.finish()
}
