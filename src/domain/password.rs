//! bcrypt hashing and verification, compatible with Go's
//! `golang.org/x/crypto/bcrypt`. Slow by design (cost 10): the app calls
//! these on its worker pool, never inside `plan`/`decide`.

use crate::wire::commands::Password;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The original's cost.
pub const COST: u32 = 10;
/// Go rejects longer passwords at hash time (D15).
pub const MAX_PASSWORD_BYTES: usize = 72;

/// A stored password value: normally a bcrypt hash, but imported legacy rows
/// may hold anything (D9). Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wrap a stored value (e.g. imported rows).
    pub fn from_stored(s: impl Into<String>) -> PasswordHash {
        PasswordHash(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("bcrypt failure")]
    Bcrypt,
}

/// Hash at cost 10, `$2a$` prefix as Go writes it.
pub fn hash(password: &Password) -> Result<PasswordHash, PasswordError> {
    hash_with_cost(password, COST)
}

/// Hash at another cost: tests and fixtures use 4 to stay fast; verify reads
/// the cost from the hash.
pub fn hash_with_cost(password: &Password, cost: u32) -> Result<PasswordHash, PasswordError> {
    let p = password.expose().as_bytes();
    if p.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    bcrypt::hash_with_result(p, cost)
        .map(|h| PasswordHash(h.format_for_version(bcrypt::Version::TwoA)))
        .map_err(|_| PasswordError::Bcrypt)
}

/// Does `password` match `stored`? Like the original, a stored value that
/// does not start with `$2` never matches; unlike it (B12, D9), an empty or
/// `"$"` value, or any malformed hash, is simply `false`, never a panic.
/// `$2a$`, `$2b$`, `$2x$` and `$2y$` hashes are accepted.
pub fn verify(password: &Password, stored: &PasswordHash) -> bool {
    let s = stored.expose();
    if !s.starts_with("$2") {
        return false;
    }
    bcrypt::verify(password.expose().as_bytes(), s).unwrap_or(false)
}
