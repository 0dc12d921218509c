//! Registry wire types <-> core's [`micro_core::registry`] types.

use micro_core::registry::{Endpoint, Node, Registration, Service, Value, WatchEvent};

use crate::registry as pb;

/// A wire value schema as the core's.
pub fn value_from_wire(value: pb::Value) -> Value {
    Value {
        name: value.name,
        r#type: value.r#type,
        values: value.values.into_iter().map(value_from_wire).collect(),
    }
}

/// A core value schema on the wire.
pub fn value_to_wire(value: Value) -> pb::Value {
    pb::Value {
        name: value.name,
        r#type: value.r#type,
        values: value.values.into_iter().map(value_to_wire).collect(),
    }
}

/// A wire service as the core's (its options are read by the caller).
pub fn service_from_wire(service: pb::Service) -> Service {
    Service {
        name: service.name,
        version: service.version,
        metadata: service.metadata.into_iter().collect(),
        endpoints: service
            .endpoints
            .into_iter()
            .map(|e| Endpoint {
                name: e.name,
                request: e.request.map(value_from_wire),
                response: e.response.map(value_from_wire),
                metadata: e.metadata.into_iter().collect(),
            })
            .collect(),
        nodes: service
            .nodes
            .into_iter()
            .map(|n| Node {
                id: n.id,
                address: n.address,
                metadata: n.metadata.into_iter().collect(),
            })
            .collect(),
    }
}

/// A core service on the wire, with `domain` (its namespace) in its options.
pub fn service_to_wire(service: Service, domain: &str) -> pb::Service {
    pb::Service {
        name: service.name,
        version: service.version,
        metadata: service.metadata.into_iter().collect(),
        endpoints: service
            .endpoints
            .into_iter()
            .map(|e| pb::Endpoint {
                name: e.name,
                request: e.request.map(value_to_wire),
                response: e.response.map(value_to_wire),
                metadata: e.metadata.into_iter().collect(),
            })
            .collect(),
        nodes: service
            .nodes
            .into_iter()
            .map(|n| pb::Node {
                id: n.id,
                address: n.address,
                port: 0,
                metadata: n.metadata.into_iter().collect(),
            })
            .collect(),
        options: Some(pb::Options {
            ttl: 0,
            domain: domain.to_owned(),
        }),
    }
}

/// The registrations a wire `Register` carries: one per node, with the TTL of its
/// options (0 or absent: no expiry).
pub fn registrations_from_wire(service: pb::Service) -> Vec<Registration> {
    let ttl = service.options.as_ref().map_or(0, |o| o.ttl);
    let ttl_secs = u64::try_from(ttl).ok().filter(|t| *t > 0);
    let mut core = service_from_wire(service);
    let nodes = std::mem::take(&mut core.nodes);
    nodes
        .into_iter()
        .map(|node| Registration {
            service: core.clone(),
            node,
            ttl_secs,
        })
        .collect()
}

/// A watch event on the wire.
pub fn watch_event_to_wire(event: WatchEvent, domain: &str) -> pb::Result {
    pb::Result {
        action: event.action,
        service: Some(service_to_wire(event.service, domain)),
        timestamp: event.timestamp,
    }
}
