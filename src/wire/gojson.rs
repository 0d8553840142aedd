//! Byte-exact imitation of Go's `encoding/json` output (Go 1.25, the
//! toolchain of the original service).
//!
//! Consumers compare some payloads byte for byte (golden tests of the login
//! server) and re-parse others, so we reproduce: HTML escaping of `<`, `>`,
//! `&`; escaping of U+2028/U+2029; `\b \f \n \r \t` short escapes (Go >=
//! 1.22), other control characters as `\u00XX`; and the float64 formatting of
//! numbers held in `interface{}` values.

use super::json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append `s` as a Go-escaped JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            let esc: Option<&[u8]> = match b {
                b'"' => Some(b"\\\""),
                b'\\' => Some(b"\\\\"),
                0x08 => Some(b"\\b"),
                0x0c => Some(b"\\f"),
                b'\n' => Some(b"\\n"),
                b'\r' => Some(b"\\r"),
                b'\t' => Some(b"\\t"),
                b'<' | b'>' | b'&' => None,
                0x00..=0x1f => None,
                _ => {
                    i += 1;
                    continue;
                }
            };
            out.extend_from_slice(&bytes[start..i]);
            match esc {
                Some(e) => out.extend_from_slice(e),
                None => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]),
            }
            i += 1;
            start = i;
            continue;
        }
        // U+2028 and U+2029 are E2 80 A8 / E2 80 A9.
        if b == 0xE2 && bytes.get(i + 1) == Some(&0x80) {
            if let Some(&c) = bytes.get(i + 2) {
                if c == 0xA8 || c == 0xA9 {
                    out.extend_from_slice(&bytes[start..i]);
                    out.extend_from_slice(if c == 0xA8 { b"\\u2028" } else { b"\\u2029" });
                    i += 3;
                    start = i;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append an unsigned integer.
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Append a signed integer.
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// Append a float64 the way Go's encoder does: shortest round-trip digits,
/// plain notation for 1e-6 <= |f| < 1e21, otherwise exponent notation with
/// an explicit sign and (for positive exponents) at least two digits.
pub fn write_f64(out: &mut Vec<u8>, f: f64) {
    let abs = f.abs();
    let mut s = String::new();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let _ = write!(s, "{f:e}");
        // Rust gives "1.5e-7" / "1e21"; Go gives "1.5e-07" cleaned to
        // "1.5e-7" by encoding/json, and "1e+21".
        if let Some(pos) = s.find('e') {
            let (mant, exp) = s.split_at(pos);
            let exp = &exp[1..];
            let mut t = String::with_capacity(s.len() + 2);
            t.push_str(mant);
            t.push('e');
            if let Some(neg) = exp.strip_prefix('-') {
                t.push('-');
                t.push_str(neg);
            } else {
                t.push('+');
                if exp.len() < 2 {
                    t.push('0');
                }
                t.push_str(exp);
            }
            s = t;
        }
    } else {
        let _ = write!(s, "{f}");
    }
    out.extend_from_slice(s.as_bytes());
}

/// Why a value cannot go through Go's `interface{}` round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    /// Go's float64 parse reports a range error (e.g. `1e400`), failing the
    /// whole decode.
    #[error("number out of float64 range")]
    NumberOutOfRange,
}

/// Append `v` as Go re-encodes a value decoded into `interface{}`: object
/// keys sorted by bytes with the last duplicate winning, numbers through
/// float64, whitespace dropped, strings Go-escaped.
pub fn write_normalised(out: &mut Vec<u8>, v: &Value) -> Result<(), NormaliseError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(text) => write_f64(out, number_as_f64(text)?),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_normalised(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut sorted: BTreeMap<&str, &Value> = BTreeMap::new();
            for (k, v) in members {
                sorted.insert(k.as_str(), v);
            }
            out.push(b'{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_normalised(out, v)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Go's `strconv.ParseFloat(text, 64)` for text that already matched the
/// JSON number grammar: correctly rounded, overflow is an error, underflow
/// gives zero.
pub fn number_as_f64(text: &str) -> Result<f64, NormaliseError> {
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        _ => Err(NormaliseError::NumberOutOfRange),
    }
}

/// Append `v` compactly, keeping member order, duplicates and number text
/// (how a Go producer's struct or map comes back out after we decoded it).
pub fn write_compact(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(text) => out.extend_from_slice(text.as_bytes()),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_compact(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_compact(out, v);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut v = Vec::new();
        write_f64(&mut v, x);
        String::from_utf8(v).unwrap()
    }

    fn s(x: &str) -> String {
        let mut v = Vec::new();
        write_str(&mut v, x);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn floats_match_go() {
        assert_eq!(f(1.0), "1");
        assert_eq!(f(100.0), "100");
        assert_eq!(f(-0.0), "-0");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(1e20), "100000000000000000000");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1.5e300), "1.5e+300");
        assert_eq!(f(1e-6), "0.000001");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(1.2345e-10), "1.2345e-10");
        assert_eq!(f(-2.5e-100), "-2.5e-100");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(12345678901234567890.0), "12345678901234567000");
        assert_eq!(f(9007199254740993.0), "9007199254740992");
        assert_eq!(f(7575.0), "7575");
        assert_eq!(f(2.5), "2.5");
    }

    #[test]
    fn strings_match_go() {
        assert_eq!(s("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(s("\u{2028}\u{2029}"), r#""\u2028\u2029""#);
        assert_eq!(
            s("\u{8}\u{c}\n\r\t\u{1}\u{1f}"),
            r#""\b\f\n\r\t\u0001\u001f""#
        );
        assert_eq!(s("\"\\/\u{7f}é\u{FFFD}"), "\"\\\"\\\\/\u{7f}é\u{FFFD}\"");
    }

    #[test]
    fn normalisation_sorts_and_floats() {
        let v = super::super::json::parse(
            br#" {"port":7575, "ipAddress":"10.0.0.20","characterId":1001,"x":[1.0,1e2,{"b":1,"a":2,"b":3}],"z":null} "#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_normalised(&mut out, &v).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"characterId":1001,"ipAddress":"10.0.0.20","port":7575,"x":[1,100,{"a":2,"b":3}],"z":null}"#
        );
        let v = super::super::json::parse(b"[1e400]").unwrap();
        assert_eq!(
            write_normalised(&mut Vec::new(), &v),
            Err(NormaliseError::NumberOutOfRange)
        );
    }
}
