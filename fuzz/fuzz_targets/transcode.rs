//! JSON transcoding as the HTTP gateway does it (`micro_proto::transcode` and the default
//! handler's request decoding):
//!
//! ```text
//! registration metadata (descriptor set: micro-proto's own, or arbitrary bytes / text)
//!   ─descriptor_pool─> pool ─find_method(name, endpoint)─> method (else one picked by index)
//! body + query ─request_json─> JSON ─encode_request─> protobuf (must decode as the input)
//! arbitrary reply bytes ─reply_json─> JSON
//! ```
//!
//! Never a panic; what `encode_request` writes decodes as the method's input.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use micro_core::registry::{DESCRIPTOR_METADATA, PROTO_SERVICE_METADATA, Service};
use micro_gateway::fuzzing::{encode_request, request_json};
use micro_proto::transcode::{descriptor_pool, find_method, reply_json};
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};

/// The descriptor set a registration carries.
#[derive(Arbitrary, Debug)]
enum Descriptors<'a> {
    /// micro-proto's own (every core service): transcoding of well-formed schemas.
    Builtin,
    /// Arbitrary bytes, base64-encoded as a registration carries them.
    Bytes(&'a [u8]),
    /// Arbitrary metadata text (mostly not base64 at all).
    Text(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    descriptors: Descriptors<'a>,
    proto_service: Option<&'a str>,
    name: &'a str,
    endpoint: &'a str,
    /// Picks a method of the pool when `endpoint` names none.
    method_index: u16,
    get: bool,
    form: bool,
    query: Option<&'a str>,
    body: &'a [u8],
    reply: &'a [u8],
    pretty: bool,
}

/// micro-proto's descriptor set, decoded once.
fn builtin() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(micro_proto::FILE_DESCRIPTOR_SET).expect("micro-proto's descriptors")
    })
}

fn service_of(input: &Input<'_>) -> Service {
    let mut metadata = BTreeMap::new();
    match input.descriptors {
        Descriptors::Builtin => {}
        Descriptors::Bytes(bytes) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            metadata.insert(DESCRIPTOR_METADATA.to_owned(), encoded);
        }
        Descriptors::Text(text) => {
            metadata.insert(DESCRIPTOR_METADATA.to_owned(), text.to_owned());
        }
    }
    if let Some(proto_service) = input.proto_service {
        metadata.insert(PROTO_SERVICE_METADATA.to_owned(), proto_service.to_owned());
    }
    Service {
        name: input.name.to_owned(),
        metadata,
        ..Service::default()
    }
}

fn method_of(
    input: &Input<'_>,
    service: &Service,
    pool: &DescriptorPool,
) -> Option<MethodDescriptor> {
    find_method(pool, service, input.name, input.endpoint).or_else(|| {
        let methods: Vec<MethodDescriptor> = pool
            .services()
            .flat_map(|s| s.methods().collect::<Vec<_>>())
            .collect();
        let count = methods.len();
        (count > 0).then(|| methods[usize::from(input.method_index) % count].clone())
    })
}

fuzz_target!(|input: Input<'_>| {
    let service = service_of(&input);
    let pool = match input.descriptors {
        Descriptors::Builtin => Some(builtin().clone()),
        _ => descriptor_pool(&service),
    };
    let method = pool
        .as_ref()
        .and_then(|pool| method_of(&input, &service, pool));
    let mut headers = http::HeaderMap::new();
    let content_type = if input.form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    headers.insert("content-type", http::HeaderValue::from_static(content_type));
    let verb = if input.get {
        http::Method::GET
    } else {
        http::Method::POST
    };
    let Ok(json) = request_json(&verb, input.query, &headers, input.body) else {
        return;
    };
    let Ok((_, bytes)) = encode_request(input.name, method.as_ref(), json) else {
        return;
    };
    let Some(method) = method else {
        return;
    };
    if let Err(e) = DynamicMessage::decode(method.input(), bytes.as_slice()) {
        panic!(
            "the encoded request is not a {}: {e}",
            method.input().full_name()
        );
    }
    let _ = reply_json(&method.input(), &bytes, input.pretty);
    let _ = reply_json(&method.output(), input.reply, input.pretty);
});
