//! Identifier and time value types shared by the wire format and the rules.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An account id: Go `uint32`, global per deployment, written as a JSON number.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct AccountId(pub u32);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A 16-byte UUID as Go's `google/uuid` handles it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    pub const NIL: Uuid = Uuid([0; 16]);

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// Parse the forms `google/uuid.Parse` accepts: canonical 36 characters,
    /// 38 characters (the first and last character are skipped unchecked, as
    /// Go does for `{...}`), `urn:uuid:` + 36 (prefix case-insensitive), and
    /// 32 hex digits. Hex is case-insensitive.
    pub fn parse(s: &[u8]) -> Option<Uuid> {
        let canonical: &[u8] = match s.len() {
            36 => s,
            38 => &s[1..37],
            45 => {
                if !s[..9].eq_ignore_ascii_case(b"urn:uuid:") {
                    return None;
                }
                &s[9..]
            }
            32 => return Self::from_hex(s),
            _ => return None,
        };
        if canonical[8] != b'-'
            || canonical[13] != b'-'
            || canonical[18] != b'-'
            || canonical[23] != b'-'
        {
            return None;
        }
        let mut hex = [0u8; 32];
        let mut n = 0;
        for (i, &b) in canonical.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            hex[n] = b;
            n += 1;
        }
        Self::from_hex(&hex)
    }

    /// Strict parse of the 36-byte canonical form only (the tenant header
    /// rule).
    pub fn parse_canonical(s: &[u8]) -> Option<Uuid> {
        if s.len() != 36 {
            return None;
        }
        Self::parse(s)
    }

    fn from_hex(s: &[u8]) -> Option<Uuid> {
        let mut out = [0u8; 16];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Uuid(out))
    }

    /// Lowercase canonical 36-byte text.
    pub fn to_bytes36(&self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 36];
        let mut o = 0;
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out[o] = b'-';
                o += 1;
            }
            out[o] = HEX[(b >> 4) as usize];
            out[o + 1] = HEX[(b & 0xf) as usize];
            o += 2;
        }
        out
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes36();
        // Only ASCII hex digits and hyphens.
        f.write_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A login session id (a socket of the login server or a channel).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct SessionId(pub Uuid);

impl SessionId {
    pub const NIL: SessionId = SessionId(Uuid::NIL);
    pub fn is_nil(&self) -> bool {
        self.0.is_nil()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Tenant identity (D11: the id alone identifies a tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TenantId(pub Uuid);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The tenant headers of a command: the id is identity, region and versions
/// are attributes used by the gender and license rules and echoed on outputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub region: String,
    pub major: u16,
    pub minor: u16,
}

/// A wall-clock instant in Unix milliseconds. Time is an input to the rules,
/// never read inside them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub fn plus_millis(self, ms: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_forms() {
        let c = Uuid::parse(b"a0000000-0000-4000-8000-000000000001").unwrap();
        assert_eq!(c.to_string(), "a0000000-0000-4000-8000-000000000001");
        assert_eq!(
            Uuid::parse(b"A0000000-0000-4000-8000-000000000001"),
            Some(c)
        );
        assert_eq!(
            Uuid::parse(b"{a0000000-0000-4000-8000-000000000001}"),
            Some(c)
        );
        assert_eq!(
            Uuid::parse(b"URN:uuid:a0000000-0000-4000-8000-000000000001"),
            Some(c)
        );
        assert_eq!(Uuid::parse(b"a0000000000040008000000000000001"), Some(c));
        assert_eq!(Uuid::parse(b""), None);
        assert_eq!(Uuid::parse(b"a0000000-0000-4000-8000-00000000000g"), None);
        assert_eq!(Uuid::parse(b"a0000000+0000-4000-8000-000000000001"), None);
        assert_eq!(
            Uuid::parse_canonical(b"a0000000000040008000000000000001"),
            None
        );
    }
}
