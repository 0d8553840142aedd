//! Account `CREATE` and `DELETE` (`COMMAND_TOPIC_ACCOUNT`).

use super::account::Account;
use super::ctx::Ctx;
use super::effects::{Change, Effects, Reject};
use super::password::{PasswordError, PasswordHash, MAX_PASSWORD_BYTES};
use super::registry::Registry;
use crate::wire::commands::CreateAccount;
use crate::wire::events::AccountStatus;
use crate::wire::ids::AccountId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatePlan {
    /// Refused without slow work.
    Done(Effects),
    /// Hash the password (cost 10), then call [`decide_create`].
    Hash,
}

fn refuse(c: &CreateAccount, name_taken: bool) -> Option<Reject> {
    if c.name.is_empty() {
        Some(Reject::EmptyName) // D6
    } else if name_taken {
        Some(Reject::DuplicateName) // D5
    } else if c.password.expose().len() > MAX_PASSWORD_BYTES {
        Some(Reject::PasswordTooLong) // D15
    } else {
        None
    }
}

/// `name_taken`: the name index of the command's tenant holds the name.
pub fn plan_create(c: &CreateAccount, name_taken: bool) -> CreatePlan {
    tracing::debug!(command = ?c, "planning account create");
    match refuse(c, name_taken) {
        Some(r) => CreatePlan::Done(Effects::rejected(r)),
        None => CreatePlan::Hash,
    }
}

/// After hashing: re-check the name with the current index, then create
/// account `new_id` and emit `CREATED`.
pub fn decide_create(
    c: &CreateAccount,
    name_taken: bool,
    new_id: AccountId,
    hash: Result<PasswordHash, PasswordError>,
    ctx: &Ctx<'_>,
) -> Effects {
    if let Some(r) = refuse(c, name_taken) {
        return Effects::rejected(r);
    }
    let Ok(hash) = hash else {
        return Effects::rejected(Reject::PasswordTooLong);
    };
    let a = Account::new(new_id, c.name.clone(), hash, ctx.tenant, ctx.now);
    let mut e = Effects::none();
    e.account_status(a.id, &a.name, AccountStatus::Created);
    e.change(Change::PutName {
        name: a.name.clone(),
        id: a.id,
    });
    e.change(Change::ConsumeAllocatedId(a.id));
    e.change(Change::PutAccount(a));
    e.finish()
}

/// `DELETE`: refused while any session exists (derived state != 0).
pub fn delete(account: Option<&Account>, registry: Option<&Registry>) -> Effects {
    let Some(a) = account else {
        return Effects::rejected(Reject::AccountNotFound);
    };
    if registry.is_some_and(|r| !r.is_empty()) {
        return Effects::rejected(Reject::LoggedIn);
    }
    let mut e = Effects::none();
    e.change(Change::DeleteAccount(a.id));
    e.change(Change::DeleteName(a.name.clone()));
    e.change(Change::DeleteRegistry(a.id));
    e.account_status(a.id, &a.name, AccountStatus::Deleted);
    e.finish()
}
