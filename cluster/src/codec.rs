//! The one codec of Raft's own data on disk (bincode 2 over serde).

use openraft::AnyError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes `value`.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AnyError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| AnyError::new(&e))
}

/// Decodes a value written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AnyError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| AnyError::new(&e))
}
