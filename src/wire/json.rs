//! A small JSON reader that accepts exactly what Go's `encoding/json` accepts.
//!
//! serde_json is stricter than Go in ways that matter for a drop-in
//! replacement: it rejects invalid UTF-8 and lone surrogate escapes inside
//! strings (Go replaces them with U+FFFD), and it does not keep a number's
//! text (Go re-parses it per target type, so `1.0` into a `uint8` fails while
//! `1.0` into `interface{}` becomes `1`). This reader keeps number text and
//! member order so the typed decoders can apply Go's rules.

/// A parsed JSON document. Numbers keep their source text; objects keep
/// member order and duplicates (Go's "last one wins" is applied by the users).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Box<str>),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The JSON kind, for error messages that must not echo the value.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

/// Why a document is not JSON. Carries only a position and a fixed text so it
/// can never leak a secret from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct SyntaxError {
    pub offset: usize,
    pub what: &'static str,
}

/// Nesting limit. Go allows 10000; a recursive reader that deep could exhaust
/// a thread stack, and no Atlas producer nests more than three levels.
pub const MAX_DEPTH: usize = 512;

/// Parse one JSON document (surrounding whitespace allowed, nothing else).
pub fn parse(input: &[u8]) -> Result<Value, SyntaxError> {
    let mut p = Parser { s: input, i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("invalid character after top-level value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> SyntaxError {
        SyntaxError {
            offset: self.i,
            what,
        }
    }

    fn ws(&mut self) {
        while let Some(&b) = self.s.get(self.i) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        match self.peek() {
            None => Err(self.err("unexpected end of JSON input")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("invalid character looking for beginning of value")),
        }
    }

    fn literal(&mut self, word: &'static [u8], v: Value) -> Result<Value, SyntaxError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid character in numeric literal")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid character after decimal point"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid character in exponent"));
            }
        }
        // The slice holds only ASCII digits, signs, '.', 'e' and 'E'.
        let text =
            std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.err("invalid number"))?;
        Ok(Value::Number(text.into()))
    }

    fn array(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.err("exceeded max depth"));
        }
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.err("unexpected end of JSON input")),
                _ => return Err(self.err("invalid character after array element")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.err("exceeded max depth"));
        }
        self.i += 1;
        let mut members = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("invalid character looking for beginning of object key"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("invalid character after object key"));
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth)?;
            members.push((key, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Object(members));
                }
                None => return Err(self.err("unexpected end of JSON input")),
                _ => return Err(self.err("invalid character after object key:value pair")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return Err(self.err("invalid \\u escape"));
        };
        let mut v = 0u32;
        for &b in h {
            let d = (b as char)
                .to_digit(16)
                .ok_or_else(|| self.err("invalid \\u escape"))?;
            v = v * 16 + d;
        }
        self.i += 4;
        Ok(v)
    }

    /// A string literal, decoded as Go does: invalid UTF-8 bytes and lone
    /// surrogates become U+FFFD, raw control characters are an error.
    fn string(&mut self) -> Result<String, SyntaxError> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(&b) = self.s.get(self.i) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            push_lossy_go(&mut out, &self.s[start..self.i]);
            match self.peek() {
                None => return Err(self.err("unexpected end of JSON input")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err("unexpected end of JSON input"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            out.push(self.surrogate_aware(first));
                        }
                        _ => return Err(self.err("invalid character in string escape code")),
                    }
                }
                Some(_) => return Err(self.err("invalid character in string literal")),
            }
        }
    }

    /// Go combines a high surrogate with a directly following `\u` low
    /// surrogate; anything else that is a surrogate becomes U+FFFD and the
    /// following escape is read on its own.
    fn surrogate_aware(&mut self, first: u32) -> char {
        if (0xD800..0xDC00).contains(&first) && self.s[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            if let Ok(second) = self.hex4() {
                if (0xDC00..0xE000).contains(&second) {
                    let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                    return char::from_u32(c).unwrap_or('\u{FFFD}');
                }
            }
            self.i = save;
            return '\u{FFFD}';
        }
        char::from_u32(first).unwrap_or('\u{FFFD}')
    }
}

/// Append bytes, replacing each byte that does not start a valid UTF-8
/// sequence by U+FFFD (Go's `utf8.DecodeRune` advances one byte per error,
/// unlike `String::from_utf8_lossy`, which replaces maximal subparts).
pub fn push_lossy_go(out: &mut String, mut bytes: &[u8]) {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return;
            }
            Err(e) => {
                let (ok, rest) = bytes.split_at(e.valid_up_to());
                // `ok` is valid by construction of valid_up_to.
                out.push_str(std::str::from_utf8(ok).unwrap_or_default());
                out.push('\u{FFFD}');
                bytes = &rest[1..];
            }
        }
    }
}

/// Go's case-insensitive member matching (`bytes.EqualFold`) against a field
/// name written in lowercase ASCII. Unicode simple folding maps only two
/// non-ASCII characters onto ASCII letters: KELVIN SIGN to `k` and LONG S to
/// `s`; every other non-ASCII character cannot match an ASCII name.
pub fn name_matches(key: &str, lower_field: &str) -> bool {
    let mut f = lower_field.bytes();
    for c in key.chars() {
        let folded = match c {
            '\u{212A}' => 'k',
            '\u{017F}' => 's',
            c if c.is_ascii() => c.to_ascii_lowercase(),
            _ => return false,
        };
        if f.next() != Some(folded as u8) {
            return false;
        }
    }
    f.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_follow_go_replacement_rules() {
        let v = parse(b"\"a\xF0\x9F\x98b\"").unwrap();
        assert_eq!(v, Value::String("a\u{FFFD}\u{FFFD}\u{FFFD}b".into()));
        let v = parse(br#""\ud83d\ude00 \ud800x \udc00""#).unwrap();
        assert_eq!(v, Value::String("\u{1F600} \u{FFFD}x \u{FFFD}".into()));
        let v = parse(br#""\ud800\u0041""#).unwrap();
        assert_eq!(v, Value::String("\u{FFFD}A".into()));
        assert!(parse(b"\"a\nb\"").is_err());
    }

    #[test]
    fn numbers_keep_their_text_and_grammar_is_strict() {
        assert_eq!(parse(b" 1.0e+2 ").unwrap(), Value::Number("1.0e+2".into()));
        for bad in [
            &b"01"[..],
            b"1.",
            b"-",
            b"1e",
            b".5",
            b"+1",
            b"[1,]",
            b"{\"a\":1,}",
            b"nul",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn folding_matches_go() {
        assert!(name_matches("Author", "author"));
        assert!(name_matches("AUTHOR", "author"));
        assert!(name_matches("pa\u{17F}sword", "password"));
        assert!(name_matches("\u{212A}ey", "key"));
        assert!(!name_matches("issuer", "author"));
        assert!(!name_matches("authors", "author"));
        assert!(!name_matches("autho", "author"));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
    }
}
