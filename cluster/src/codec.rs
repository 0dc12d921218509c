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

/// Encodes `value` behind a CRC-32 of its bytes, so corruption on disk is detected.
pub(crate) fn encode_checked<T: Serialize>(value: &T) -> Result<Vec<u8>, AnyError> {
    let body = encode(value)?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a value written by [`encode_checked`], refusing it if its checksum is wrong.
pub(crate) fn decode_checked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AnyError> {
    let Some((crc, body)) = bytes.split_first_chunk::<4>() else {
        return Err(AnyError::error("corrupt: shorter than its checksum"));
    };
    let expected = u32::from_be_bytes(*crc);
    let actual = crc32fast::hash(body);
    if expected != actual {
        return Err(AnyError::error(format!(
            "corrupt: checksum {actual:#010x} does not match the stored {expected:#010x}"
        )));
    }
    decode(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_bit_is_detected() {
        let mut bytes = encode_checked(&("entry", 7u64)).unwrap();
        assert_eq!(
            decode_checked::<(String, u64)>(&bytes).unwrap(),
            ("entry".to_owned(), 7)
        );
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = decode_checked::<(String, u64)>(&bytes).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(decode_checked::<u64>(&[1, 2]).is_err());
    }
}
