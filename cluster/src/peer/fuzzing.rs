//! The peer payload codec and the call enum the peer server decodes, private to the peer
//! network, reachable here for the fuzz targets (`fuzz/`) and property tests only: not a
//! stable API, hidden from the docs.
//!
//! ```text
//! arbitrary bytes ─> Payload { data, crc } ─decode::<T>─> Ok(T) | Err(why), never a panic
//! ```

use micro_proto::peer::Payload;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use super::messages::PeerCall;

/// Encodes `value` as a checksummed payload, as a peer client sends it.
pub fn encode<T: Serialize>(value: &T) -> Result<Payload, String> {
    super::payload::encode(value)
}

/// Decodes `payload` as the peer server does: an error, never a panic, for a payload
/// that is corrupt (checksum) or not a `T`.
pub fn decode<T: DeserializeOwned>(payload: &Payload) -> Result<T, String> {
    super::payload::decode(payload)
}
