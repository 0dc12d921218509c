//! The peer RPC payloads: `micro_cluster::fuzzing::decode` (bincode behind a CRC-32) of
//! every type the peer server decodes, and of every reply a peer client decodes:
//!
//! ```text
//! Payload { data, crc: CRC-32 of data (mostly) or arbitrary } ─decode::<T>─> Ok(T) | Err
//!     Ok(T) ─encode─> decode: the same value
//! ```
//!
//! Never a panic (nor an allocation of what a length prefix claims). The checksum is
//! mostly made right, else almost no input would get past it to the decoder.

#![no_main]

use std::fmt::Debug;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use micro_cluster::TypeConfig;
use micro_cluster::fuzzing::{PeerCall, decode, encode};
use micro_core::replicator::ReplicaError;
use micro_core::state::Response;
use micro_proto::peer::Payload;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Whether `crc` is used as it is rather than the right checksum.
    wrong_crc: bool,
    crc: u32,
    data: &'a [u8],
}

/// Decodes `payload` as a `T`; a decoded value survives an encode-decode round trip.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(payload: &Payload) {
    round_trip_by::<T>(payload, T::eq);
}

/// [`round_trip`] for a type without `PartialEq`, compared by `same`.
fn round_trip_by<T: Serialize + DeserializeOwned + Debug>(
    payload: &Payload,
    same: impl Fn(&T, &T) -> bool,
) {
    let Ok(value) = decode::<T>(payload) else {
        return;
    };
    let again = encode(&value).unwrap_or_else(|e| panic!("{value:?} does not encode: {e}"));
    let back = decode::<T>(&again).unwrap_or_else(|e| panic!("{value:?} does not decode: {e}"));
    assert!(
        same(&back, &value),
        "the round trip changed {value:?} into {back:?}"
    );
}

fn same_append(a: &AppendEntriesRequest<TypeConfig>, b: &AppendEntriesRequest<TypeConfig>) -> bool {
    a.vote == b.vote
        && a.prev_log_id == b.prev_log_id
        && a.entries == b.entries
        && a.leader_commit == b.leader_commit
}

fuzz_target!(|input: Input<'_>| {
    let crc = if input.wrong_crc {
        input.crc
    } else {
        crc32fast::hash(input.data)
    };
    let payload = Payload {
        data: input.data.to_vec(),
        crc,
        format: micro_cluster::WIRE_FORMAT,
    };
    let honest = crc == crc32fast::hash(input.data);
    // What the peer server decodes.
    round_trip::<PeerCall>(&payload);
    round_trip_by::<AppendEntriesRequest<TypeConfig>>(&payload, same_append);
    round_trip::<VoteRequest<u64>>(&payload);
    round_trip::<InstallSnapshotRequest<TypeConfig>>(&payload);
    // What a peer client decodes from the answers.
    round_trip::<Result<AppendEntriesResponse<u64>, RaftError<u64>>>(&payload);
    round_trip::<Result<VoteResponse<u64>, RaftError<u64>>>(&payload);
    round_trip::<Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>>(
        &payload,
    );
    round_trip::<Result<Response, ReplicaError>>(&payload);
    round_trip::<Result<u64, ReplicaError>>(&payload);
    round_trip::<Result<(), ReplicaError>>(&payload);
    if !honest {
        let refused = decode::<PeerCall>(&payload).expect_err("a wrong checksum is refused");
        assert!(refused.contains("corrupt"), "{refused}");
    }
});
