//! JSON <-> protobuf for any registered service, driven by the descriptor set it
//! registered: the CLI (`micro call`, dynamic commands) and the HTTP gateway both
//! transcode this way.

use base64::Engine as _;
use micro_core::registry::{DESCRIPTOR_METADATA, PROTO_SERVICE_METADATA, Service};
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions,
};

/// The descriptor set `service` registered (base64 in its metadata), if any and valid.
pub fn descriptor_pool(service: &Service) -> Option<DescriptorPool> {
    let encoded = service.metadata.get(DESCRIPTOR_METADATA)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    DescriptorPool::decode(bytes.as_slice()).ok()
}

/// The method behind `endpoint` (`Handler.Method`) of registry service `name`: the proto
/// service its metadata names when the handler matches, else `<name>.<Handler>`, else any
/// proto service called `Handler`.
pub fn find_method(
    pool: &DescriptorPool,
    service: &Service,
    name: &str,
    endpoint: &str,
) -> Option<MethodDescriptor> {
    let (handler, method) = endpoint.split_once('.')?;
    let proto_service = service
        .metadata
        .get(PROTO_SERVICE_METADATA)
        .filter(|p| p.rsplit('.').next() == Some(handler))
        .cloned()
        .unwrap_or_else(|| format!("{name}.{handler}"));
    pool.get_service_by_name(&proto_service)
        .or_else(|| pool.services().find(|s| s.name() == handler))
        .and_then(|s| s.methods().find(|m| m.name() == method))
}

/// The protobuf `bytes` of `message` as JSON (proto field names, 64-bit integers as
/// numbers, as Micro v3's Go structs wrote them), pretty or on one line.
pub fn reply_json(
    message: &MessageDescriptor,
    bytes: &[u8],
    pretty: bool,
) -> Result<Vec<u8>, String> {
    let decoded = DynamicMessage::decode(message.clone(), bytes)
        .map_err(|e| format!("the reply is not a valid {}: {e}", message.full_name()))?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false);
    let mut out = Vec::new();
    let result = if pretty {
        decoded.serialize_with_options(&mut serde_json::Serializer::pretty(&mut out), &options)
    } else {
        decoded.serialize_with_options(&mut serde_json::Serializer::new(&mut out), &options)
    };
    result.map_err(|e| format!("cannot write the reply as JSON: {e}"))?;
    Ok(out)
}
