//! Go `encoding/json` assignment rules for one struct field.
//!
//! `null` leaves a non-pointer field unchanged (so these return `None`);
//! a number lands in an integer field only if its text parses as that
//! integer type (`1.0`, `1e2`, `-1` fail for `uint8`); any other JSON kind
//! is a type error that fails the whole decode.

use super::error::DecodeError;
use super::ids::Uuid;
use super::json::Value;
use super::time::parse_rfc3339;

pub type FieldResult<T> = Result<Option<T>, DecodeError>;

pub fn string(v: &Value, field: &'static str) -> FieldResult<String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(DecodeError::ty(field, "expected a string")),
    }
}

pub fn uint(v: &Value, field: &'static str, max: u64) -> FieldResult<u64> {
    match v {
        Value::Null => Ok(None),
        Value::Number(text) => {
            if !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(DecodeError::ty(field, "not an unsigned integer"));
            }
            match text.parse::<u64>() {
                Ok(n) if n <= max => Ok(Some(n)),
                _ => Err(DecodeError::ty(field, "integer out of range")),
            }
        }
        _ => Err(DecodeError::ty(field, "expected a number")),
    }
}

pub fn int64(v: &Value, field: &'static str) -> FieldResult<i64> {
    match v {
        Value::Null => Ok(None),
        Value::Number(text) => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(DecodeError::ty(field, "not an integer"));
            }
            text.parse::<i64>()
                .map(Some)
                .map_err(|_| DecodeError::ty(field, "integer out of range"))
        }
        _ => Err(DecodeError::ty(field, "expected a number")),
    }
}

pub fn boolean(v: &Value, field: &'static str) -> FieldResult<bool> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        _ => Err(DecodeError::ty(field, "expected a bool")),
    }
}

/// `uuid.UUID` implements `TextUnmarshaler`: only strings reach it, and
/// `""` is an invalid UUID.
pub fn uuid(v: &Value, field: &'static str) -> FieldResult<Uuid> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Uuid::parse(s.as_bytes())
            .map(Some)
            .ok_or(DecodeError::ty(field, "invalid UUID")),
        _ => Err(DecodeError::ty(field, "expected a UUID string")),
    }
}

/// A time field in either W1 form: an integer of Unix milliseconds or an
/// RFC 3339 string (Go zero time = 0).
pub fn time_millis(v: &Value, field: &'static str) -> FieldResult<i64> {
    match v {
        Value::String(s) => parse_rfc3339(s)
            .map(|t| Some(t.0))
            .ok_or(DecodeError::ty(field, "invalid RFC 3339 time")),
        other => int64(other, field),
    }
}

/// Members of an object value; `None` for `null` (a struct is left as is).
pub fn object<'a>(v: &'a Value, field: &'static str) -> FieldResult<&'a [(String, Value)]> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        _ => Err(DecodeError::ty(field, "expected an object")),
    }
}
