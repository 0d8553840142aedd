//! Transition expiry (D4), run by the app's punctuator (every second).

use super::account::Account;
use super::effects::Effects;
use super::registry::Registry;
use crate::config::AccountConfig;
use crate::wire::events::AccountStatus;
use crate::wire::ids::{AccountId, UnixMillis};

/// Remove transitions older than `transitionTimeout`. When that leaves the
/// account without a session, emit `LOGGED_OUT` (D4), to be rendered with
/// `registry.tenant` and no trace headers. Empty effects if nothing expired.
pub fn expire(
    account: Option<&Account>,
    id: AccountId,
    registry: &Registry,
    now: UnixMillis,
    config: &AccountConfig,
) -> Effects {
    let mut r = registry.clone();
    let timeout = u64::try_from(config.transition_timeout.as_millis()).unwrap_or(u64::MAX);
    if !r.expire_transitions(now, timeout) {
        return Effects::none();
    }
    let mut e = Effects::none();
    if r.is_empty() {
        if let Some(a) = account {
            e.account_status(a.id, &a.name, AccountStatus::LoggedOut);
        }
    }
    e.store_registry(id, r);
    e.finish()
}
