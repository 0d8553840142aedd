//! Decoding of atlas-ban's `GET bans/check` answer (JSON:API, type `ban-checks`).

use serde::Deserialize;
use serde_json::Value;

use super::rfc3339;

/// What a successful answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    NotBanned,
    /// `until_unix_millis` 0 = no expiry (permanent or zero time).
    Banned {
        reason_code: u8,
        until_unix_millis: u64,
    },
}

#[derive(Debug, Deserialize)]
struct Document {
    data: Resource,
}

#[derive(Debug, Deserialize)]
struct Resource {
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attributes {
    #[serde(default)]
    banned: bool,
    #[serde(default)]
    reason_code: u64,
    #[serde(default)]
    permanent: bool,
    #[serde(default)]
    expires_at: Value,
}

/// Parses the body. Errors are strings for the caller's error enum; they
/// never contain the body (it may echo the request's ip/hwid).
pub fn parse(body: &[u8]) -> Result<Verdict, String> {
    let doc: Document =
        serde_json::from_slice(body).map_err(|e| format!("bad JSON:API body: {e}"))?;
    let a = doc.data.attributes;
    if !a.banned {
        return Ok(Verdict::NotBanned);
    }
    let reason_code = u8::try_from(a.reason_code)
        .map_err(|_| format!("reasonCode {} is not a byte", a.reason_code))?;
    // DECISIONS D13/W8: a permanent ban has no expiry, whatever expiresAt says.
    let until_unix_millis = if a.permanent {
        0
    } else {
        expiry_millis(&a.expires_at)?
    };
    Ok(Verdict::Banned {
        reason_code,
        until_unix_millis,
    })
}

/// `expiresAt` as Unix milliseconds: RFC 3339 text (Go's encoding) or an
/// integer (the seed form, DECISIONS W1). The Go zero time, 0, null and any
/// instant before the epoch mean "no expiry".
fn expiry_millis(v: &Value) -> Result<u64, String> {
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(u)
            } else if n.as_i64().is_some() {
                Ok(0)
            } else {
                Err(format!("expiresAt {n} is not an integer"))
            }
        }
        Value::String(s) => rfc3339::parse_unix_millis(s)
            .map(|ms| u64::try_from(ms).unwrap_or(0))
            .ok_or_else(|| format!("expiresAt {s:?} is not RFC 3339")),
        other => Err(format!(
            "expiresAt has the wrong JSON type ({})",
            json_type(other)
        )),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(attrs: &str) -> Vec<u8> {
        format!(r#"{{"data":{{"type":"ban-checks","id":"x","attributes":{attrs}}}}}"#).into_bytes()
    }

    #[test]
    fn banned_with_both_expiry_forms() {
        let rfc = doc(
            r#"{"banned":true,"banType":0,"reason":"r","reasonCode":3,"permanent":false,"expiresAt":"2030-01-01T00:00:00Z"}"#,
        );
        let int = doc(
            r#"{"banned":true,"banType":0,"reason":"r","reasonCode":3,"permanent":false,"expiresAt":1893456000000}"#,
        );
        let expected = Verdict::Banned {
            reason_code: 3,
            until_unix_millis: 1_893_456_000_000,
        };
        assert_eq!(parse(&rfc), Ok(expected));
        assert_eq!(parse(&int), Ok(expected));
    }

    #[test]
    fn zero_time_and_permanent_mean_no_expiry() {
        for attrs in [
            r#"{"banned":true,"reasonCode":7,"permanent":false,"expiresAt":"0001-01-01T00:00:00Z"}"#,
            r#"{"banned":true,"reasonCode":7,"permanent":false,"expiresAt":0}"#,
            r#"{"banned":true,"reasonCode":7,"permanent":true,"expiresAt":"2030-01-01T00:00:00Z"}"#,
            r#"{"banned":true,"reasonCode":7,"permanent":true}"#,
        ] {
            assert_eq!(
                parse(&doc(attrs)),
                Ok(Verdict::Banned {
                    reason_code: 7,
                    until_unix_millis: 0
                }),
                "{attrs}"
            );
        }
    }

    #[test]
    fn not_banned_and_garbage() {
        assert_eq!(
            parse(&doc(
                r#"{"banned":false,"expiresAt":"0001-01-01T00:00:00Z"}"#
            )),
            Ok(Verdict::NotBanned)
        );
        assert!(parse(b"<html>").is_err());
        assert!(parse(br#"{"errors":[]}"#).is_err());
        assert!(parse(&doc(r#"{"banned":true,"reasonCode":300}"#)).is_err());
        assert!(parse(&doc(r#"{"banned":true,"reasonCode":1,"expiresAt":"soon"}"#)).is_err());
        assert!(parse(&doc(r#"{"banned":"yes"}"#)).is_err());
    }
}
