//! Protobuf decoding of every request the proxy accepts, on arbitrary bytes:
//!
//! ```text
//! bytes ─prost decode─> XRequest ─encode─> decode: the same message
//!                           └─wire -> domain conversion, where one exists (store options
//!                             and records, registrations, consume options, error details)
//! ```
//!
//! Never a panic. Every input is tried as every type, so the fuzzer's coverage guides all.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use micro_proto::{
    auth, broker, cluster, config, debug, errors, events, network, peer, registry, runtime, store,
};
use prost::Message;

/// Decodes `data` as a `T`; a decoded message survives an encode-decode round trip.
fn round_trip<T: Message + Default + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let message = T::decode(data).ok()?;
    let again = T::decode(message.encode_to_vec().as_slice())
        .unwrap_or_else(|e| panic!("{message:?} does not decode once encoded: {e}"));
    assert_eq!(again, message, "the round trip changed the message");
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

fn store_write(request: store::WriteRequest) {
    let Some(record) = request.record else { return };
    if let Ok(domain) = micro_proto::record_from_wire(record.clone()) {
        assert_eq!(
            micro_proto::record_to_wire(domain),
            record,
            "record round trip"
        );
    }
}

fn registration(service: registry::Service) {
    let nodes = service.nodes.len();
    let registrations = micro_proto::registrations_from_wire(service.clone());
    assert_eq!(registrations.len(), nodes, "one registration per node");
    let _ = micro_proto::service_from_wire(service);
}

fn error_details(error: errors::Error) {
    let details = bytes::Bytes::from(error.encode_to_vec());
    let status = tonic::Status::with_details(tonic::Code::Internal, "boom", details);
    let _ = micro_proto::micro_from_status("fuzz", &status);
}

fuzz_target!(|data: &[u8]| {
    requests!(data;
        auth::ListAccountsRequest, auth::DeleteAccountRequest, auth::GenerateRequest,
        auth::GrantRequest, auth::RevokeRequest, auth::InspectRequest, auth::TokenRequest,
        auth::CreateRequest, auth::DeleteRequest, auth::ListRequest, auth::ChangeSecretRequest,
        broker::PublishRequest, broker::SubscribeRequest,
        cluster::AddNodeRequest, cluster::RemoveNodeRequest, cluster::TransferLeaderRequest,
        cluster::StatusRequest,
        config::SetRequest, config::DeleteRequest, config::GetRequest, config::ReadRequest,
        debug::HealthRequest, debug::StatsRequest, debug::LogRequest, debug::TraceRequest,
        events::PublishRequest, events::ReadRequest, events::WriteRequest, events::AckRequest,
        events::ConsumeRequest => |r: events::ConsumeRequest| {
            let _ = micro_gateway::consume_options(&r);
        },
        network::ConnectRequest, network::GraphRequest, network::NodesRequest,
        network::RoutesRequest, network::ServicesRequest, network::StatusRequest,
        peer::Payload,
        registry::GetRequest, registry::ListRequest, registry::WatchRequest,
        registry::Service => registration,
        runtime::CreateRequest, runtime::ReadRequest, runtime::DeleteRequest,
        runtime::UpdateRequest, runtime::ListRequest, runtime::LogsRequest,
        runtime::UploadRequest, runtime::Service,
        store::ReadRequest => |r: store::ReadRequest| {
            let _ = micro_proto::read_options(r.key, r.options);
        },
        store::WriteRequest => store_write,
        store::DeleteRequest,
        store::ListRequest => |r: store::ListRequest| {
            let _ = micro_proto::list_options(r.options);
        },
        store::DatabasesRequest, store::TablesRequest, store::BlobReadRequest,
        store::BlobWriteRequest, store::BlobDeleteRequest, store::BlobListRequest,
        errors::Error => error_details,
    );
    // The error a status carries in its details, as every client reads it.
    let status = tonic::Status::with_details(
        tonic::Code::Unknown,
        String::from_utf8_lossy(data),
        bytes::Bytes::copy_from_slice(data),
    );
    let _ = micro_proto::micro_from_status("fuzz", &status);
});
