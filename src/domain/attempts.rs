//! PIN / PIC attempt results (§4.6; over Kafka as `PIN_ATTEMPT` /
//! `PIC_ATTEMPT`, and later over the HTTP API).

use super::account::{Account, LocalBan};
use super::ctx::Ctx;
use super::effects::{Change, Effects, Output, Reject};
use crate::wire::commands::Attempt;
use crate::wire::events::{BanCommand, ErrorCode};
use crate::wire::ids::SessionId;

/// W6 constants of the ban command.
pub const BAN_TYPE_ACCOUNT: u8 = 2;
pub const BAN_REASON_CODE: u8 = 99;
pub const ISSUED_BY: &str = "atlas-account";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    Pin,
    Pic,
}

/// The HTTP API's response attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub attempts: u32,
    pub limit_reached: bool,
}

/// Apply one attempt result. `None` outcome: unknown account (nothing
/// produced; the HTTP API answers an error).
pub fn attempt(
    account: Option<&Account>,
    kind: AttemptKind,
    a: &Attempt,
    ctx: &Ctx<'_>,
) -> (Effects, Option<AttemptOutcome>) {
    let Some(acc) = account else {
        return (Effects::rejected(Reject::AccountNotFound), None);
    };
    let (counter, limit, duration, code, label) = match kind {
        AttemptKind::Pin => (
            acc.pin_attempts,
            ctx.config.max_pin_attempts,
            ctx.config.pin_ban_duration,
            ErrorCode::InvalidPin,
            "PIN",
        ),
        AttemptKind::Pic => (
            acc.pic_attempts,
            ctx.config.max_pic_attempts,
            ctx.config.pic_ban_duration,
            ErrorCode::InvalidPic,
            "PIC",
        ),
    };
    let mut e = Effects::none();
    let mut updated = acc.clone();
    let set_counter = |acc: &mut Account, n: u32| match kind {
        AttemptKind::Pin => acc.pin_attempts = n,
        AttemptKind::Pic => acc.pic_attempts = n,
    };
    if a.success {
        if counter > 0 {
            set_counter(&mut updated, 0);
            updated.updated_at = ctx.now;
            e.change(Change::PutAccount(updated));
        }
        return (
            e,
            Some(AttemptOutcome {
                attempts: 0,
                limit_reached: false,
            }),
        );
    }
    let n = counter.saturating_add(1);
    e.session_error(
        SessionId::NIL,
        acc.id,
        &acc.name,
        code,
        &a.ip_address,
        &a.hwid,
    );
    updated.updated_at = ctx.now;
    let outcome = if n >= limit {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let expires = ctx.now.plus_millis(ms);
        e.emit(Output::Ban {
            account_id: acc.id,
            command: BanCommand {
                ban_type: BAN_TYPE_ACCOUNT,
                value: acc.id.to_string(),
                reason: format!("Exceeded maximum {label} attempts ({limit})"),
                reason_code: BAN_REASON_CODE,
                permanent: false,
                expires_at: expires.0,
                issued_by: ISSUED_BY.to_string(),
            },
        });
        set_counter(&mut updated, 0);
        // D13: keep the later of an existing and the new local ban.
        let new_ban = LocalBan {
            until: expires,
            reason_code: BAN_REASON_CODE,
        };
        updated.local_ban = Some(match updated.local_ban {
            Some(old) if old.until > expires => old,
            _ => new_ban,
        });
        AttemptOutcome {
            attempts: 0,
            limit_reached: true,
        }
    } else {
        set_counter(&mut updated, n);
        AttemptOutcome {
            attempts: n,
            limit_reached: false,
        }
    };
    e.change(Change::PutAccount(updated));
    (e.finish(), Some(outcome))
}
