//! Payload encoding with a checksum.

use micro_proto::peer::Payload;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes `value` into a payload.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Payload, String> {
    let data = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| format!("encode: {e}"))?;
    let crc = crc32fast::hash(&data);
    Ok(Payload { data, crc })
}

/// Decodes a payload, refusing one whose checksum does not match.
pub(crate) fn decode<T: DeserializeOwned>(payload: &Payload) -> Result<T, String> {
    let actual = crc32fast::hash(&payload.data);
    if actual != payload.crc {
        return Err(format!(
            "corrupt peer payload: checksum {actual:#010x} does not match {:#010x}",
            payload.crc
        ));
    }
    bincode::serde::decode_from_slice(&payload.data, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| format!("decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_payloads_are_refused() {
        let mut payload = encode(&("hello", 42u64)).unwrap();
        assert_eq!(
            decode::<(String, u64)>(&payload).unwrap(),
            ("hello".to_owned(), 42)
        );
        payload.data[0] ^= 0x40;
        assert!(
            decode::<(String, u64)>(&payload)
                .unwrap_err()
                .contains("corrupt")
        );
    }
}
