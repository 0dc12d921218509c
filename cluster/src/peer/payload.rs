//! Payload encoding with a checksum and a wire format version.
//!
//! Every payload names the format its bytes are in ([`WIRE_FORMAT`]). A node refuses a
//! format outside `WIRE_FORMAT_MIN..=WIRE_FORMAT` before it decodes anything, so a node
//! of an incompatible release is told so by name instead of misreading the bincode (a
//! changed type decodes into garbage, or into a different variant, without an error).

use micro_proto::peer::Payload;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The peer wire format this node writes. Raise it when a peer type's encoding changes
/// (an openraft upgrade, a field added to a `PeerCall`), and say in the release notes
/// whether the previous format is still read (`WIRE_FORMAT_MIN`).
pub const WIRE_FORMAT: u32 = 1;
/// The oldest peer wire format this node still reads.
pub const WIRE_FORMAT_MIN: u32 = 1;

/// Encodes `value` into a payload.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Payload, String> {
    let data = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| format!("encode: {e}"))?;
    let crc = crc32fast::hash(&data);
    Ok(Payload {
        data,
        crc,
        format: WIRE_FORMAT,
    })
}

/// Refuses a payload in a wire format this node does not speak. Format 0 is what nodes
/// from before the field sent: their bytes are format 1.
pub(crate) fn check_format(payload: &Payload) -> Result<(), String> {
    let format = payload.format.max(1);
    if (WIRE_FORMAT_MIN..=WIRE_FORMAT).contains(&format) {
        return Ok(());
    }
    Err(format!(
        "peer wire format {format} is not one this node speaks ({WIRE_FORMAT_MIN}..={WIRE_FORMAT}): \
         run the same micro-node release on every member (docs/DEPLOY.md, \"Upgrades\")"
    ))
}

/// Decodes a payload, refusing one in an unknown format or whose checksum does not match.
pub(crate) fn decode<T: DeserializeOwned>(payload: &Payload) -> Result<T, String> {
    check_format(payload)?;
    let actual = crc32fast::hash(&payload.data);
    if actual != payload.crc {
        return Err(format!(
            "corrupt peer payload: checksum {actual:#010x} does not match {:#010x}",
            payload.crc
        ));
    }
    // bincode allocates what a length prefix claims before it reads the bytes: 7 bytes
    // claiming a 1 TiB string aborted the node. Decoding within a limit refuses such a
    // claim first. Every encoded byte claims at most 16 (a string byte 1, a one-byte
    // varint its integer's size), so 16 per byte of the payload refuses nothing valid.
    let data = payload.data.as_slice();
    match data.len() {
        n if n <= 1 << 12 => decode_within::<T, { 1 << 16 }>(data),
        n if n <= 1 << 16 => decode_within::<T, { 1 << 20 }>(data),
        n if n <= 1 << 20 => decode_within::<T, { 1 << 24 }>(data),
        n if n <= 1 << 24 => decode_within::<T, { 1 << 28 }>(data),
        n if n <= 1 << 28 => decode_within::<T, { pow2(32) }>(data),
        _ => decode_within::<T, { pow2(36) }>(data),
    }
}

/// `2^bits`, or `usize::MAX` where that does not fit.
const fn pow2(bits: u32) -> usize {
    match 1usize.checked_shl(bits) {
        Some(value) => value,
        None => usize::MAX,
    }
}

/// Decodes `data`, refusing it once what it decodes claims over `LIMIT` bytes (a string's
/// length is claimed before anything is allocated for it).
fn decode_within<T: DeserializeOwned, const LIMIT: usize>(data: &[u8]) -> Result<T, String> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    bincode::serde::decode_from_slice(data, config)
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

    #[test]
    fn a_payload_in_an_unknown_wire_format_is_refused_by_name() {
        let mut payload = encode(&("hello", 42u64)).unwrap();
        assert_eq!(payload.format, WIRE_FORMAT);
        // A node from before the field sends 0: the same bytes, read as format 1.
        payload.format = 0;
        assert_eq!(decode::<(String, u64)>(&payload).unwrap().1, 42);
        payload.format = WIRE_FORMAT + 1;
        let err = decode::<(String, u64)>(&payload).unwrap_err();
        assert!(
            err.contains(&format!("wire format {}", WIRE_FORMAT + 1)) && err.contains("Upgrades"),
            "{err}"
        );
    }

    /// Regression (found by the fuzz target `peer_payload`): a length prefix claiming
    /// more than the payload holds is refused before anything is allocated for it; it
    /// was allocated first (`Err(Rejected(<2.2 GB string>))` in 7 bytes; 1 TiB aborted).
    #[test]
    fn a_length_prefix_past_the_payload_is_refused_unallocated() {
        let honest = |data: Vec<u8>| Payload {
            crc: crc32fast::hash(&data),
            data,
            format: WIRE_FORMAT,
        };
        // What the fuzzer found: Err (1) of ReplicaError::Rejected (1), a string of
        // 0x840021ff bytes (0xfc: a u32 length follows).
        let found = honest(vec![0x01, 0x01, 0xfc, 0xff, 0x21, 0x00, 0x84]);
        let err = decode::<Result<u64, micro_core::replicator::ReplicaError>>(&found);
        assert!(err.unwrap_err().contains("decode"));
        for claim in [1u64 << 40, u64::MAX] {
            // A string of `claim` bytes (0xfd: a u64 length follows), then 3 bytes.
            let mut data = vec![0xfd];
            data.extend_from_slice(&claim.to_le_bytes());
            data.extend_from_slice(b"abc");
            let err = decode::<String>(&honest(data)).unwrap_err();
            assert!(err.contains("decode"), "{err}");
        }
        // Every tier still decodes what fills it: strings of 4 KiB to 1 MiB, and
        // integers claiming 8 bytes for each byte they take.
        for bits in [12, 16, 20] {
            let long = "x".repeat((1 << bits) - 5);
            assert_eq!(decode::<String>(&encode(&long).unwrap()).unwrap(), long);
            let small = vec![1u64; (1 << bits) - 5];
            assert_eq!(decode::<Vec<u64>>(&encode(&small).unwrap()).unwrap(), small);
        }
    }
}
