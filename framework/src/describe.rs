//! What a service registers: name, version, metadata (descriptor included) and
//! endpoints with their schemas.

use std::collections::BTreeMap;

use base64::Engine as _;
use micro_core::registry::{self, DESCRIPTOR_METADATA, Endpoint, PROTO_SERVICE_METADATA};

use crate::dispatch::Route;
use crate::options::Options;
use crate::schema::message_value;
use crate::transcoder::Transcoder;

/// The registration of a service (without nodes). `proto_service` is the first
/// handler's proto service: the registry keeps one per service.
pub(crate) fn describe(
    options: &Options,
    proto_service: Option<String>,
    transcoder: &Transcoder,
    routes: &[Route],
) -> registry::Service {
    let mut metadata = options.metadata.clone();
    let encoded = transcoder.encoded_descriptor_set();
    if !encoded.is_empty() {
        let descriptor = base64::engine::general_purpose::STANDARD.encode(encoded);
        metadata.insert(DESCRIPTOR_METADATA.to_owned(), descriptor);
    }
    if let Some(proto_service) = proto_service {
        metadata.insert(PROTO_SERVICE_METADATA.to_owned(), proto_service);
    }
    let endpoints = routes
        .iter()
        .map(|route| {
            let schema = |name: &str| transcoder.message(name).map(|m| message_value(&m));
            if schema(&route.info.request).is_none() {
                tracing::warn!(
                    endpoint = %route.info.name,
                    message = %route.info.request,
                    "the handler's descriptor lacks this message: JSON calls will fail"
                );
            }
            Endpoint {
                name: route.info.name.clone(),
                request: schema(&route.info.request),
                response: schema(&route.info.response),
                metadata: BTreeMap::from([("stream".to_owned(), route.info.stream.to_string())]),
            }
        })
        .collect();
    registry::Service {
        name: options.name.clone(),
        version: options.version.clone(),
        metadata,
        endpoints,
        nodes: Vec::new(),
    }
}
