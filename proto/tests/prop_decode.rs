//! Property tests of micro-proto's decoders (the fuzz targets `proto_requests` and
//! `transcode` in fuzz/ drive the same functions):
//!
//! ```text
//! bytes ─prost decode─> every *Request the proxy accepts ─> wire -> domain conversion
//! registration metadata ─descriptor_pool─> pool;  reply bytes ─reply_json─> JSON
//! ```
//!
//! Properties: never a panic on arbitrary bytes; a decoded message survives an
//! encode-decode round trip; a domain record survives the wire and back; a wire record
//! with a negative expiry is refused; a registration has one entry per node.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::OnceLock;

use base64::Engine as _;
use micro_core::registry::{DESCRIPTOR_METADATA, Service};
use micro_core::store::{Field, Record};
use micro_proto::transcode::{descriptor_pool, reply_json};
use micro_proto::{
    auth, broker, cluster, config, debug, errors, events, network, peer, registry, runtime, store,
};
use proptest::prelude::*;
use prost::Message;
use prost_reflect::{DescriptorPool, MessageDescriptor};

/// Decodes `data` as a `T`; a decoded message survives an encode-decode round trip.
fn round_trip<T: Message + Default + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let message = T::decode(data).ok()?;
    let again = T::decode(message.encode_to_vec().as_slice()).expect("an encoded message decodes");
    assert_eq!(again, message);
    Some(message)
}

/// Decodes `data` as each type; when it is one, runs the conversion after `=>`.
macro_rules! requests {
    ($data:expr; $($ty:ty $(=> $then:expr)?),* $(,)?) => {
        $(
            #[allow(unused_variables)]
            if let Some(message) = round_trip::<$ty>($data) {
                $( ($then)(message); )?
            }
        )*
    };
}

fn decode_every_request(data: &[u8]) {
    requests!(data;
        auth::ListAccountsRequest, auth::DeleteAccountRequest, auth::GenerateRequest,
        auth::GrantRequest, auth::RevokeRequest, auth::InspectRequest, auth::TokenRequest,
        auth::CreateRequest, auth::DeleteRequest, auth::ListRequest, auth::ChangeSecretRequest,
        broker::PublishRequest, broker::SubscribeRequest,
        cluster::AddNodeRequest, cluster::RemoveNodeRequest, cluster::TransferLeaderRequest,
        cluster::StatusRequest,
        config::SetRequest, config::DeleteRequest, config::GetRequest, config::ReadRequest,
        debug::HealthRequest, debug::StatsRequest, debug::LogRequest, debug::TraceRequest,
        events::PublishRequest, events::ConsumeRequest, events::ReadRequest,
        events::WriteRequest, events::AckRequest,
        network::ConnectRequest, network::GraphRequest, network::NodesRequest,
        network::RoutesRequest, network::ServicesRequest, network::StatusRequest,
        peer::Payload,
        registry::GetRequest, registry::ListRequest, registry::WatchRequest,
        registry::Service => |s: registry::Service| {
            let nodes = s.nodes.len();
            assert_eq!(micro_proto::registrations_from_wire(s).len(), nodes);
        },
        runtime::CreateRequest, runtime::ReadRequest, runtime::DeleteRequest,
        runtime::UpdateRequest, runtime::ListRequest, runtime::LogsRequest,
        runtime::UploadRequest, runtime::Service,
        store::ReadRequest => |r: store::ReadRequest| {
            let _ = micro_proto::read_options(r.key, r.options);
        },
        store::WriteRequest => |r: store::WriteRequest| {
            if let Some(Ok(record)) = r.record.clone().map(micro_proto::record_from_wire) {
                assert_eq!(Some(micro_proto::record_to_wire(record)), r.record);
            }
        },
        store::DeleteRequest,
        store::ListRequest => |r: store::ListRequest| {
            let _ = micro_proto::list_options(r.options);
        },
        store::DatabasesRequest, store::TablesRequest, store::BlobReadRequest,
        store::BlobWriteRequest, store::BlobDeleteRequest, store::BlobListRequest,
        errors::Error,
    );
}

/// Bytes that are mostly well-formed protobuf: fields with small numbers and every wire
/// type, so decoders get past the first tag.
fn protobuf_like() -> impl Strategy<Value = Vec<u8>> {
    let field = (
        1..12u8,
        0..6u8,
        proptest::collection::vec(any::<u8>(), 0..12),
    )
        .prop_map(|(number, wire_type, payload)| {
            let mut out = vec![(number << 3) | wire_type];
            if wire_type == 2 {
                out.push(u8::try_from(payload.len()).expect("under 12 bytes"));
            }
            out.extend(payload);
            out
        });
    proptest::collection::vec(field, 0..6).prop_map(|fields| fields.concat())
}

/// Every message of micro-proto's descriptor set.
fn messages() -> &'static [MessageDescriptor] {
    static MESSAGES: OnceLock<Vec<MessageDescriptor>> = OnceLock::new();
    MESSAGES.get_or_init(|| {
        DescriptorPool::decode(micro_proto::FILE_DESCRIPTOR_SET)
            .expect("micro-proto's descriptors")
            .all_messages()
            .collect()
    })
}

fn record() -> impl Strategy<Value = Record> {
    (
        ".{0,16}",
        proptest::collection::vec(any::<u8>(), 0..32),
        proptest::option::of(1..=i64::MAX.unsigned_abs()),
        proptest::collection::btree_map(".{0,6}", (".{0,6}", ".{0,6}"), 0..4),
    )
        .prop_map(|(key, value, expiry_secs, metadata)| Record {
            key,
            value,
            expiry_secs,
            metadata: metadata
                .into_iter()
                .map(|(k, (kind, value))| (k, Field { kind, value }))
                .collect(),
        })
}

proptest! {
    #[test]
    fn every_request_decodes_arbitrary_bytes_without_panicking(
        data in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        decode_every_request(&data);
    }

    #[test]
    fn every_request_decodes_protobuf_like_bytes_without_panicking(data in protobuf_like()) {
        decode_every_request(&data);
    }

    #[test]
    fn records_survive_the_wire(record in record()) {
        let wire = micro_proto::record_to_wire(record.clone());
        prop_assert_eq!(micro_proto::record_from_wire(wire).unwrap(), record);
    }

    #[test]
    fn a_negative_expiry_is_refused(expiry in i64::MIN..0, key in ".{0,8}") {
        let wire = store::Record { key, expiry, ..store::Record::default() };
        prop_assert!(micro_proto::record_from_wire(wire).is_err());
    }

    #[test]
    fn descriptor_pool_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        as_text in any::<bool>(),
    ) {
        let encoded = if as_text {
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        };
        let service = Service {
            metadata: BTreeMap::from([(DESCRIPTOR_METADATA.to_owned(), encoded)]),
            ..Service::default()
        };
        let _ = descriptor_pool(&service);
    }

    /// Reply bytes of any shape as JSON, for every message of the contract.
    #[test]
    fn reply_json_never_panics(
        index in any::<prop::sample::Index>(),
        bytes in prop_oneof![protobuf_like(), proptest::collection::vec(any::<u8>(), 0..64)],
        pretty in any::<bool>(),
    ) {
        let _ = reply_json(index.get(messages()), &bytes, pretty);
    }
}
