//! Secret removal for dead-lettered values (W7, D16).
//!
//! Choice: a lexical pass instead of parse-and-re-encode. It keeps every
//! other byte of the value as it was (useful for diagnosis), and it also
//! works on the values that are dead-lettered *because* they are not valid
//! JSON, e.g. a truncated login command that still holds its password.
//!
//! Rule: every JSON-ish member whose key (after unescaping, matched with Go's
//! case folding) is `password`, `pin` or `pic` has its value replaced by
//! `"***"`. A string value is replaced up to its closing quote (to the end of
//! the input if it is unterminated); an object or array value up to its
//! matching bracket (or the end); any other value up to the next `,` `}` `]`
//! or whitespace. Values that contain no such key come back unchanged. Text
//! that is not JSON-like at all (no quoted keys) cannot be interpreted and is
//! returned unchanged: no Atlas producer writes such payloads.

use super::json::name_matches;

const SECRET_KEYS: [&str; 3] = ["password", "pin", "pic"];
const MASK: &[u8] = b"\"***\"";

/// Return `value` with secret members masked (see the module docs).
pub fn redact_secrets(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] != b'"' {
            out.push(value[i]);
            i += 1;
            continue;
        }
        let end = string_end(value, i);
        out.extend_from_slice(&value[i..end]);
        let key = unescape(&value[i..end]);
        i = end;
        // Is this string a member name?
        let mut j = i;
        while j < value.len() && value[j].is_ascii_whitespace() {
            j += 1;
        }
        if j < value.len() && value[j] == b':' && is_secret(&key) {
            j += 1;
            while j < value.len() && value[j].is_ascii_whitespace() {
                j += 1;
            }
            out.extend_from_slice(&value[i..j]);
            out.extend_from_slice(MASK);
            i = value_end(value, j);
        }
    }
    out
}

fn is_secret(key: &str) -> bool {
    SECRET_KEYS.iter().any(|k| name_matches(key, k))
}

/// Index just past the string starting at `start` (a quote), or the end.
fn string_end(s: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

/// Index just past the value starting at `start`.
fn value_end(s: &[u8], start: usize) -> usize {
    match s.get(start) {
        None => start,
        Some(b'"') => string_end(s, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < s.len() {
                match s[i] {
                    b'"' => {
                        i = string_end(s, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            s.len()
        }
        Some(_) => {
            let mut i = start;
            while i < s.len() && !matches!(s[i], b',' | b'}' | b']') && !s[i].is_ascii_whitespace()
            {
                i += 1;
            }
            i
        }
    }
}

/// Best-effort unescape of a quoted key (with its quotes), enough to see
/// through `"pass\u0077ord"`.
fn unescape(quoted: &[u8]) -> String {
    let inner = match quoted {
        [b'"', inner @ .., b'"'] => inner,
        [_, inner @ ..] => inner,
        [] => quoted,
    };
    let mut out = String::new();
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        if b == b'\\' && i + 1 < inner.len() {
            let e = inner[i + 1];
            if e == b'u' && i + 6 <= inner.len() {
                let hex = std::str::from_utf8(&inner[i + 2..i + 6]).ok();
                if let Some(c) = hex
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
                {
                    out.push(c);
                    i += 6;
                    continue;
                }
            }
            out.push(e as char);
            i += 2;
            continue;
        }
        let rest = &inner[i..];
        let len = match b {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        }
        .min(rest.len());
        out.push_str(&String::from_utf8_lossy(&rest[..len]));
        i += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        String::from_utf8(redact_secrets(s.as_bytes())).unwrap()
    }

    #[test]
    fn masks_secret_members_anywhere() {
        assert_eq!(
            r(r#"{"type":"CREATE","body":{"name":"zed","password":"zedpass1"}}"#),
            r#"{"type":"CREATE","body":{"name":"zed","password":"***"}}"#
        );
        assert_eq!(
            r(r#"{"PassWord" : "a\"b", "pin":1234,"Pic":{"x":[1,"}"]},"n":1}"#),
            r#"{"PassWord" : "***", "pin":"***","Pic":"***","n":1}"#
        );
        assert_eq!(
            r(r#"{"pass\u0077ord":"s3cret"}"#),
            r#"{"pass\u0077ord":"***"}"#
        );
        assert_eq!(
            r(r#"{"name":"password","x":"pin"}"#),
            r#"{"name":"password","x":"pin"}"#
        );
    }

    #[test]
    fn masks_truncated_documents() {
        assert_eq!(
            r(r#"{"sessionId":"x","body":{"password":"zedpass1"#),
            r#"{"sessionId":"x","body":{"password":"***""#
        );
        assert_eq!(r("not json"), "not json");
    }
}
