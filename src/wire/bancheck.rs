//! atlas-ban's `GET bans/check`: the query we send (URL-encoded, D13) and
//! the JSON:API answer we read (both W1 time forms).

use super::error::DecodeError;
use super::fields;
use super::json::{self, name_matches, Value};
use crate::domain::login::{BanExpiry, BanQuery, BanStatus};
use crate::wire::ids::UnixMillis;

/// Path and query relative to the ban service's base URL, e.g.
/// `bans/check?ip=10.0.0.5&hwid=a1b2c3&accountId=7`. Every parameter is
/// percent-encoded (the original did not encode, B20).
pub fn ban_check_path(q: &BanQuery) -> String {
    format!(
        "bans/check?ip={}&hwid={}&accountId={}",
        percent_encode(&q.ip),
        percent_encode(&q.hwid),
        q.account_id.0
    )
}

fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
    }
    out
}

fn member<'a>(members: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    // Last duplicate wins, as in Go.
    members
        .iter()
        .rev()
        .find(|(k, _)| name_matches(k, name))
        .map(|(_, v)| v)
}

/// Read the `ban-checks` resource. `banned:false` (or absent) is
/// `NotBanned`; a ban whose `permanent` flag is set or whose `expiresAt` is
/// zero/Go's zero time is `Permanent` (`until` 0, W8); otherwise `At`.
/// `expiresAt` may be RFC 3339 or integer Unix milliseconds (W1). An
/// unreadable answer is an error; the caller fails open (`CheckFailed`).
pub fn decode_ban_check(body: &[u8]) -> Result<BanStatus, DecodeError> {
    let doc = json::parse(body)?;
    let top = fields::object(&doc, "(document)")?.unwrap_or(&[]);
    let data = member(top, "data")
        .map(|d| fields::object(d, "data"))
        .transpose()?
        .flatten()
        .unwrap_or(&[]);
    let attrs = member(data, "attributes")
        .map(|a| fields::object(a, "data.attributes"))
        .transpose()?
        .flatten()
        .unwrap_or(&[]);
    let banned = match member(attrs, "banned") {
        Some(v) => fields::boolean(v, "banned")?.unwrap_or(false),
        None => false,
    };
    if !banned {
        return Ok(BanStatus::NotBanned);
    }
    let reason_code = match member(attrs, "reasoncode") {
        Some(v) => fields::uint(v, "reasonCode", u8::MAX.into())?.unwrap_or(0) as u8,
        None => 0,
    };
    let permanent = match member(attrs, "permanent") {
        Some(v) => fields::boolean(v, "permanent")?.unwrap_or(false),
        None => false,
    };
    let expires = match member(attrs, "expiresat") {
        Some(v) => fields::time_millis(v, "expiresAt")?.unwrap_or(0),
        None => 0,
    };
    let expiry = if permanent || expires == 0 {
        BanExpiry::Permanent
    } else {
        BanExpiry::At(UnixMillis(expires))
    };
    Ok(BanStatus::Banned {
        reason_code,
        expiry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ids::AccountId;

    #[test]
    fn query_is_encoded() {
        let q = BanQuery {
            account_id: AccountId(7),
            ip: "10.0.0.5".into(),
            hwid: "a b&c#d+é".into(),
        };
        assert_eq!(
            ban_check_path(&q),
            "bans/check?ip=10.0.0.5&hwid=a%20b%26c%23d%2B%C3%A9&accountId=7"
        );
    }

    #[test]
    fn answers_in_both_time_forms() {
        let rfc = br#"{"data":{"type":"ban-checks","id":"x","attributes":{"banned":true,"banType":2,"reason":"r","reasonCode":3,"permanent":false,"expiresAt":"2030-01-01T00:00:00Z"}}}"#;
        let ms = br#"{"data":{"type":"ban-checks","id":"x","attributes":{"banned":true,"banType":2,"reason":"r","reasonCode":3,"permanent":false,"expiresAt":1893456000000}}}"#;
        let want = BanStatus::Banned {
            reason_code: 3,
            expiry: BanExpiry::At(UnixMillis(1_893_456_000_000)),
        };
        assert_eq!(decode_ban_check(rfc).unwrap(), want);
        assert_eq!(decode_ban_check(ms).unwrap(), want);
        let perm = br#"{"data":{"attributes":{"banned":true,"reasonCode":1,"permanent":true,"expiresAt":"2030-01-01T00:00:00Z"}}}"#;
        assert_eq!(
            decode_ban_check(perm).unwrap(),
            BanStatus::Banned {
                reason_code: 1,
                expiry: BanExpiry::Permanent
            }
        );
        let zero = br#"{"data":{"attributes":{"banned":true,"reasonCode":1,"expiresAt":"0001-01-01T00:00:00Z"}}}"#;
        assert_eq!(
            decode_ban_check(zero).unwrap(),
            BanStatus::Banned {
                reason_code: 1,
                expiry: BanExpiry::Permanent
            }
        );
        let not = br#"{"data":{"attributes":{"banned":false,"reasonCode":3}}}"#;
        assert_eq!(decode_ban_check(not).unwrap(), BanStatus::NotBanned);
        assert!(decode_ban_check(b"<html>").is_err());
        assert!(decode_ban_check(br#"{"data":{"attributes":{"banned":"yes"}}}"#).is_err());
    }
}
