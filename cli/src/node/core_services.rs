//! The registrations of the core services a node serves, built from the wire contract's
//! descriptors so `micro services`, `micro call` and dynamic commands work on them like
//! on any other service.

use std::collections::BTreeMap;

use base64::Engine as _;
use micro_core::registry::{DESCRIPTOR_METADATA, Endpoint, PROTO_SERVICE_METADATA, Service};
use prost_reflect::DescriptorPool;

/// The core services a node registers in namespace `micro`: registry name and proto
/// service.
pub const CORE_SERVICES: [(&str, &str); 9] = [
    ("auth", "auth.Auth"),
    ("broker", "broker.Broker"),
    ("config", "config.Config"),
    ("events", "events.Stream"),
    ("store", "store.Store"),
    ("registry", "registry.Registry"),
    ("runtime", "runtime.Runtime"),
    ("cluster", "cluster.Cluster"),
    ("network", "network.Network"),
];

/// The registration body (no nodes) of each core service.
pub fn core_services() -> Vec<Service> {
    let Ok(pool) = DescriptorPool::decode(micro_proto::FILE_DESCRIPTOR_SET) else {
        tracing::error!(
            "the built-in descriptor set does not decode; core services stay unregistered"
        );
        return Vec::new();
    };
    CORE_SERVICES
        .iter()
        .filter_map(|(name, proto)| describe(&pool, name, proto, micro_proto::FILE_DESCRIPTOR_SET))
        .collect()
}

/// Describes proto service `proto` of `pool` as registry service `name`, with the
/// descriptor set in its metadata.
pub fn describe(
    pool: &DescriptorPool,
    name: &str,
    proto: &str,
    descriptor: &[u8],
) -> Option<Service> {
    let service = pool.get_service_by_name(proto)?;
    let endpoints = service
        .methods()
        .map(|m| Endpoint {
            name: format!("{}.{}", service.name(), m.name()),
            request: Some(micro::schema::message_value(&m.input())),
            response: Some(micro::schema::message_value(&m.output())),
            metadata: BTreeMap::from([(
                "stream".to_owned(),
                (m.is_server_streaming() || m.is_client_streaming()).to_string(),
            )]),
        })
        .collect();
    let metadata = BTreeMap::from([
        (
            DESCRIPTOR_METADATA.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(descriptor),
        ),
        (PROTO_SERVICE_METADATA.to_owned(), proto.to_owned()),
    ]);
    Some(Service {
        name: name.to_owned(),
        version: "latest".to_owned(),
        metadata,
        endpoints,
        nodes: Vec::new(),
    })
}
