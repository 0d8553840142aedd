//! Session `CREATE`: a login attempt, split around the slow work.
//!
//! `plan_login` (cheap) either answers at once or names the slow facts the
//! app must gather on its worker pool (bcrypt verify or hash, remote ban
//! check). `decide_login` then takes the state as it is *after* that work
//! (other commands may have run meanwhile) and produces the effects.
//!
//! Order (D2): name lookup / auto-register, login limit (D1, first as in the
//! original), password, ban (remote, then local D13), already logged in,
//! register, license agreement.

use super::account::{Account, LocalBan};
use super::ctx::Ctx;
use super::effects::{Change, Effects, Reject};
use super::password::{PasswordHash, MAX_PASSWORD_BYTES};
use super::registry::Registry;
use crate::wire::commands::{CreateSession, Issuer};
use crate::wire::events::{AccountStatus, ErrorCode, SessionError, SessionStatusBody};
use crate::wire::ids::{AccountId, SessionId, UnixMillis};

/// The state a login reads: the account found by name in the command's
/// tenant (if any) and that account's registry (`None` = no sessions).
#[derive(Debug, Clone, Copy)]
pub struct LoginState<'a> {
    pub account: Option<&'a Account>,
    pub registry: Option<&'a Registry>,
}

/// The bcrypt work a login needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordWork {
    /// Verify the command's password against this stored value.
    Verify(PasswordHash),
    /// Auto-register: hash the command's password (cost 10).
    HashNew,
}

/// Parameters of atlas-ban's `GET bans/check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanQuery {
    pub account_id: AccountId,
    pub ip: String,
    pub hwid: String,
}

/// The slow facts `decide_login` needs. The ban check is only consulted
/// when the password is right (D2): the app may skip it otherwise and pass
/// `BanStatus::CheckFailed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPlan {
    pub password: PasswordWork,
    pub ban_check: BanQuery,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStep {
    Done(Effects),
    Need(LoginPlan),
}

/// The outcome of the password work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordFact {
    Verified(bool),
    NewHash(PasswordHash),
    /// Hashing failed (should not happen for <= 72 bytes).
    HashFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanExpiry {
    Permanent,
    At(UnixMillis),
}

/// atlas-ban's answer. `CheckFailed` (timeout, error, not configured) fails
/// open (D13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanStatus {
    NotBanned,
    Banned { reason_code: u8, expiry: BanExpiry },
    CheckFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFacts {
    pub password: PasswordFact,
    pub remote_ban: BanStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginDecision {
    Done(Effects),
    /// The state changed under the slow work in a way the facts do not
    /// cover (the account appeared, vanished or changed its password): run
    /// `plan_login` again with the current state.
    Replan,
}

fn error_zero(session: SessionId, code: ErrorCode, cmd: &CreateSession) -> Effects {
    let mut e = Effects::none();
    e.session_error(session, AccountId(0), "", code, &cmd.ip_address, &cmd.hwid);
    e
}

/// Checks that need no slow work, shared by plan and decide.
enum Early<'a> {
    Answer(Effects),
    Existing(&'a Account),
    New,
}

fn early<'a>(
    state: &LoginState<'a>,
    session: SessionId,
    cmd: &CreateSession,
    ctx: &Ctx<'_>,
) -> Early<'a> {
    if cmd.account_name.is_empty() {
        // D6: never auto-register an empty name.
        let mut e = error_zero(session, ErrorCode::NotRegistered, cmd);
        e.rejected = Some(Reject::EmptyName);
        return Early::Answer(e);
    }
    match state.account {
        Some(a) => {
            let limit = ctx.config.max_login_attempts;
            if limit > 0 && a.login_failures.get(&session).copied().unwrap_or(0) >= limit {
                return Early::Answer(error_zero(session, ErrorCode::TooManyAttempts, cmd));
            }
            Early::Existing(a)
        }
        None if !ctx.config.automatic_register => {
            Early::Answer(error_zero(session, ErrorCode::NotRegistered, cmd))
        }
        None if cmd.password.expose().len() > MAX_PASSWORD_BYTES => {
            // D15: cannot be registered.
            let mut e = error_zero(session, ErrorCode::SystemError, cmd);
            e.rejected = Some(Reject::PasswordTooLong);
            Early::Answer(e)
        }
        None => Early::New,
    }
}

/// First step of a login. `new_id` is the id the app would give an
/// auto-registered account (reserve it now; gaps are harmless).
pub fn plan_login(
    state: &LoginState<'_>,
    session: SessionId,
    cmd: &CreateSession,
    ctx: &Ctx<'_>,
    new_id: AccountId,
) -> LoginStep {
    tracing::debug!(session = %session, command = ?cmd, "planning login");
    let ban_check = |id| BanQuery {
        account_id: id,
        ip: cmd.ip_address.clone(),
        hwid: cmd.hwid.clone(),
    };
    match early(state, session, cmd, ctx) {
        Early::Answer(e) => LoginStep::Done(e.finish()),
        Early::Existing(a) => LoginStep::Need(LoginPlan {
            password: PasswordWork::Verify(a.password.clone()),
            ban_check: ban_check(a.id),
        }),
        Early::New => LoginStep::Need(LoginPlan {
            password: PasswordWork::HashNew,
            ban_check: ban_check(new_id),
        }),
    }
}

/// The ban that applies: atlas-ban's if it says banned, else our own
/// PIN/PIC ban while active (D13). Permanent bans give `until` 0 (W8).
fn effective_ban(remote: BanStatus, local: Option<LocalBan>) -> Option<(u8, u64)> {
    match remote {
        BanStatus::Banned {
            reason_code,
            expiry,
        } => {
            let until = match expiry {
                BanExpiry::Permanent => 0,
                BanExpiry::At(t) => u64::try_from(t.0).unwrap_or(0),
            };
            Some((reason_code, until))
        }
        BanStatus::NotBanned | BanStatus::CheckFailed => {
            local.map(|b| (b.reason_code, u64::try_from(b.until.0).unwrap_or(0)))
        }
    }
}

/// Second step of a login; see the module docs.
pub fn decide_login(
    state: &LoginState<'_>,
    session: SessionId,
    cmd: &CreateSession,
    ctx: &Ctx<'_>,
    new_id: AccountId,
    plan: &LoginPlan,
    facts: &LoginFacts,
) -> LoginDecision {
    tracing::debug!(session = %session, command = ?cmd, ban = ?facts.remote_ban, "deciding login");
    let mut e = Effects::none();
    let (account, registry, created) = match early(state, session, cmd, ctx) {
        Early::Answer(e) => return LoginDecision::Done(e.finish()),
        Early::Existing(a) => {
            let ok = match (&plan.password, &facts.password) {
                (PasswordWork::Verify(h), PasswordFact::Verified(ok)) if *h == a.password => *ok,
                _ => return LoginDecision::Replan,
            };
            if !ok {
                e.session_error(
                    session,
                    a.id,
                    &a.name,
                    ErrorCode::IncorrectPassword,
                    &cmd.ip_address,
                    &cmd.hwid,
                );
                if ctx.config.max_login_attempts > 0 {
                    let mut updated = a.clone();
                    updated.record_login_failure(session);
                    e.change(Change::PutAccount(updated));
                }
                return LoginDecision::Done(e.finish());
            }
            let mut a = a.clone();
            let reset = a.login_failures.remove(&session).is_some();
            if reset {
                a.updated_at = ctx.now;
            }
            let registry = state
                .registry
                .cloned()
                .unwrap_or_else(|| Registry::new(ctx.tenant.clone()));
            if reset {
                e.change(Change::PutAccount(a.clone()));
            }
            (a, registry, false)
        }
        Early::New => {
            let hash = match (&plan.password, &facts.password) {
                (PasswordWork::HashNew, PasswordFact::NewHash(h)) => h.clone(),
                (PasswordWork::HashNew, PasswordFact::HashFailed) => {
                    return LoginDecision::Done(
                        error_zero(session, ErrorCode::SystemError, cmd).finish(),
                    )
                }
                _ => return LoginDecision::Replan,
            };
            let a = Account::new(new_id, cmd.account_name.clone(), hash, ctx.tenant, ctx.now);
            e.change(Change::PutAccount(a.clone()));
            e.change(Change::PutName {
                name: a.name.clone(),
                id: a.id,
            });
            e.change(Change::ConsumeAllocatedId(a.id));
            e.account_status(a.id, &a.name, AccountStatus::Created);
            (a, Registry::new(ctx.tenant.clone()), true)
        }
    };

    if let Some((reason, until)) =
        effective_ban(facts.remote_ban, account.active_local_ban(ctx.now))
    {
        e.session_status(
            session,
            account.id,
            &account.name,
            SessionStatusBody::Error(SessionError {
                code: ErrorCode::DeletedOrBlocked,
                reason,
                until,
                ip_address: cmd.ip_address.clone(),
                hwid: cmd.hwid.clone(),
            }),
        );
        return LoginDecision::Done(e.finish());
    }
    if !created && registry.derived_state().as_u8() != 0 {
        e.session_error(
            session,
            account.id,
            &account.name,
            ErrorCode::AlreadyLoggedIn,
            &cmd.ip_address,
            &cmd.hwid,
        );
        return LoginDecision::Done(e.finish());
    }
    let mut registry = registry;
    registry.tenant = ctx.tenant.clone();
    if registry.login(session, &Issuer::Login, ctx.now).is_err() {
        // Unreachable with one writer per account (the map is empty here);
        // kept as the original's answer.
        e.session_error(
            session,
            account.id,
            &account.name,
            ErrorCode::SystemError,
            &cmd.ip_address,
            &cmd.hwid,
        );
        return LoginDecision::Done(e.finish());
    }
    e.store_registry(account.id, registry);
    e.account_status(account.id, &account.name, AccountStatus::LoggedIn);
    let body = if !account.tos && ctx.tenant.region != "JMS" {
        SessionStatusBody::RequestLicenseAgreement
    } else {
        SessionStatusBody::Created {
            ip_address: cmd.ip_address.clone(),
            hwid: cmd.hwid.clone(),
        }
    };
    e.session_status(session, account.id, &account.name, body);
    LoginDecision::Done(e.finish())
}
