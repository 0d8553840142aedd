//! The `params` of `PROGRESS_STATE`, echoed in `STATE_CHANGED`.

use super::gojson::{write_normalised, NormaliseError};
use super::json::Value;
use serde::{Deserialize, Serialize};

/// A JSON value already in Go's `interface{}` round-trip form (sorted keys,
/// float64 numbers, Go escaping): exactly the bytes the original writes.
/// atlas-channel and atlas-login branch on `params.ipAddress` /
/// `params.characterId`, so the echo must be faithful.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params(Box<str>);

impl Params {
    pub fn null() -> Params {
        Params("null".into())
    }

    pub fn normalise(v: &Value) -> Result<Params, NormaliseError> {
        let mut out = Vec::with_capacity(64);
        write_normalised(&mut out, v)?;
        // The writer emits only UTF-8 (strings are Rust strings, the rest ASCII).
        Ok(Params(String::from_utf8_lossy(&out).into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Params {
    fn default() -> Self {
        Params::null()
    }
}
