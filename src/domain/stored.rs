//! Stored value format: one version byte, then bincode 2 (serde, standard
//! configuration). The version byte lets a later release migrate records
//! restored from an older changelog.

use super::account::Account;
use super::registry::Registry;
use serde::{de::DeserializeOwned, Serialize};

pub const STORED_VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    #[error("empty stored value")]
    Empty,
    #[error("unsupported stored value version {0}")]
    Version(u8),
    #[error("undecodable stored value: {0}")]
    Decode(String),
    #[error("unencodable value: {0}")]
    Encode(String),
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoredError> {
    let mut out = vec![STORED_VERSION];
    let body = bincode::serde::encode_to_vec(v, bincode::config::standard())
        .map_err(|e| StoredError::Encode(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoredError> {
    let (&version, body) = bytes.split_first().ok_or(StoredError::Empty)?;
    if version != STORED_VERSION {
        return Err(StoredError::Version(version));
    }
    let (v, _) = bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map_err(|e| StoredError::Decode(e.to_string()))?;
    Ok(v)
}

pub fn encode_account(a: &Account) -> Result<Vec<u8>, StoredError> {
    encode(a)
}

pub fn decode_account(bytes: &[u8]) -> Result<Account, StoredError> {
    decode(bytes)
}

pub fn encode_registry(r: &Registry) -> Result<Vec<u8>, StoredError> {
    encode(r)
}

pub fn decode_registry(bytes: &[u8]) -> Result<Registry, StoredError> {
    decode(bytes)
}
