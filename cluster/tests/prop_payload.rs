//! Property tests of the peer RPC payloads (bincode behind a CRC-32), through
//! `micro_cluster::fuzzing`; the fuzz target `peer_payload` (fuzz/) drives the same
//! decoder.
//!
//! ```text
//! PeerCall | VoteRequest | AppendEntriesRequest ─encode─> Payload { data, crc } ─decode─> the same
//! arbitrary bytes (right checksum) ─decode::<every server type>─> Ok | Err, never a panic
//! one flipped bit, in the data or the checksum ─decode─> Err("corrupt ...")
//! ```

use micro_cluster::TypeConfig;
use micro_cluster::fuzzing::{PeerCall, decode, encode};
use micro_core::Namespace;
use micro_core::cluster::MembershipChange;
use micro_core::state::Command;
use micro_core::store::{Record, TablePath};
use micro_proto::peer::Payload;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};
use proptest::prelude::*;

fn command() -> impl Strategy<Value = Command> {
    let path = (".{0,8}", ".{0,8}").prop_map(|(database, table)| TablePath {
        namespace: Namespace::default(),
        database,
        table,
    });
    prop_oneof![
        Just(Command::Tick),
        (
            path.clone(),
            ".{0,16}",
            proptest::collection::vec(any::<u8>(), 0..32),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(|(path, key, value, expiry_secs)| Command::StorePut {
                path,
                record: Record {
                    key,
                    value,
                    expiry_secs,
                    ..Record::default()
                },
            }),
        (path, ".{0,16}").prop_map(|(path, key)| Command::StoreDelete { path, key }),
    ]
}

fn peer_call() -> impl Strategy<Value = PeerCall> {
    prop_oneof![
        command().prop_map(|c| PeerCall::Forward(Box::new(c))),
        Just(PeerCall::ReadIndex),
        (any::<u64>(), ".{0,24}")
            .prop_map(|(id, addr)| PeerCall::Membership(MembershipChange::AddNode { id, addr })),
        any::<u64>().prop_map(|id| PeerCall::Membership(MembershipChange::RemoveNode { id })),
        any::<u64>().prop_map(|id| PeerCall::Membership(MembershipChange::TransferLeader { id })),
        any::<bool>().prop_map(PeerCall::SetElect),
        Just(PeerCall::Campaign),
        any::<u64>().prop_map(PeerCall::Removed),
    ]
}

fn log_id() -> impl Strategy<Value = LogId<u64>> {
    (any::<u64>(), any::<u64>(), any::<u64>())
        .prop_map(|(term, node, index)| LogId::new(CommittedLeaderId::new(term, node), index))
}

fn vote() -> impl Strategy<Value = Vote<u64>> {
    (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(term, node, committed)| {
        if committed {
            Vote::new_committed(term, node)
        } else {
            Vote::new(term, node)
        }
    })
}

fn append_entries() -> impl Strategy<Value = AppendEntriesRequest<TypeConfig>> {
    let entry = (
        log_id(),
        proptest::option::of((any::<u64>(), proptest::collection::vec(command(), 0..4))),
    )
        .prop_map(|(log_id, proposal)| Entry::<TypeConfig> {
            log_id,
            payload: match proposal {
                None => EntryPayload::Blank,
                Some((at_ms, commands)) => {
                    EntryPayload::Normal(micro_cluster::Proposal { at_ms, commands })
                }
            },
        });
    (
        vote(),
        proptest::option::of(log_id()),
        proptest::collection::vec(entry, 0..4),
        proptest::option::of(log_id()),
    )
        .prop_map(
            |(vote, prev_log_id, entries, leader_commit)| AppendEntriesRequest {
                vote,
                prev_log_id,
                entries,
                leader_commit,
            },
        )
}

/// Decodes `payload` as every type the peer server decodes; only whether each is `Ok`.
fn decode_as_the_server_does(payload: &Payload) -> [bool; 4] {
    [
        decode::<PeerCall>(payload).is_ok(),
        decode::<AppendEntriesRequest<TypeConfig>>(payload).is_ok(),
        decode::<VoteRequest<u64>>(payload).is_ok(),
        decode::<InstallSnapshotRequest<TypeConfig>>(payload).is_ok(),
    ]
}

proptest! {
    #[test]
    fn peer_calls_round_trip(call in peer_call()) {
        let payload = encode(&call).unwrap();
        prop_assert_eq!(decode::<PeerCall>(&payload).unwrap(), call);
    }

    #[test]
    fn vote_requests_round_trip(vote in vote(), last in proptest::option::of(log_id())) {
        let request = VoteRequest::new(vote, last);
        let payload = encode(&request).unwrap();
        prop_assert_eq!(decode::<VoteRequest<u64>>(&payload).unwrap(), request);
    }

    #[test]
    fn append_entries_round_trip(request in append_entries()) {
        let payload = encode(&request).unwrap();
        let back: AppendEntriesRequest<TypeConfig> = decode(&payload).unwrap();
        prop_assert_eq!(back.vote, request.vote);
        prop_assert_eq!(back.prev_log_id, request.prev_log_id);
        prop_assert_eq!(back.entries, request.entries);
        prop_assert_eq!(back.leader_commit, request.leader_commit);
    }

    #[test]
    fn a_wrong_checksum_is_an_error_not_a_panic(call in peer_call(), flip in 1..=u32::MAX) {
        let mut payload = encode(&call).unwrap();
        payload.crc ^= flip;
        let refused = decode::<PeerCall>(&payload).unwrap_err();
        prop_assert!(refused.contains("corrupt"), "{refused}");
        prop_assert_eq!(decode_as_the_server_does(&payload), [false; 4]);
    }

    #[test]
    fn a_flipped_data_bit_is_detected(
        call in peer_call(),
        at in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let mut payload = encode(&call).unwrap();
        let at = at.index(payload.data.len());
        payload.data[at] ^= 1 << bit;
        let refused = decode::<PeerCall>(&payload).unwrap_err();
        prop_assert!(refused.contains("corrupt"), "{refused}");
    }

    /// Arbitrary data behind the right checksum reaches the decoder: an error, never a
    /// panic (nor an abort on a length prefix claiming more than the payload holds).
    #[test]
    fn arbitrary_payloads_never_panic(
        data in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            // Shaped like a peer call: a small variant tag first.
            (0..8u8, proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(tag, rest)| [vec![tag], rest].concat()),
        ],
    ) {
        let crc = crc32fast::hash(&data);
        let _ = decode_as_the_server_does(&Payload {
            data,
            crc,
            format: micro_cluster::WIRE_FORMAT,
        });
    }
}
