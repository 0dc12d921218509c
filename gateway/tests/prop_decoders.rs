//! Property tests of the HTTP API's decoders (the fuzz targets `gateway_path` and
//! `transcode` in fuzz/ drive the same functions):
//!
//! ```text
//! path ─resolve─> (service, Handler.Method)
//! body + query ─request_json─> JSON ─encode_request (method of micro-proto's descriptors)─> protobuf
//! ```
//!
//! Properties: never a panic on arbitrary paths, bodies, queries and forms; a well-formed
//! `/service/endpoint` path resolves to that service and its camel-cased endpoint; what
//! `encode_request` writes decodes as the method's input.

use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue, Method};
use micro_gateway::fuzzing::{encode_request, request_json};
use micro_gateway::resolve;
use proptest::prelude::*;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};

/// Every method of micro-proto's own services.
fn methods() -> &'static [MethodDescriptor] {
    static METHODS: OnceLock<Vec<MethodDescriptor>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let pool = DescriptorPool::decode(micro_proto::FILE_DESCRIPTOR_SET)
            .expect("micro-proto's descriptors");
        pool.services()
            .flat_map(|s| s.methods().collect::<Vec<_>>())
            .collect()
    })
}

fn headers(form: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let content_type = if form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers
}

/// Upper-cases the first letter of each `-`-separated word, as the handler names
/// endpoints.
fn camel(part: &str) -> String {
    part.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect()
}

/// A JSON body: mostly an object whose keys are common request fields.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::String),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    proptest::collection::btree_map(key(), value, 0..6).prop_map(|m| {
        serde_json::to_vec(&serde_json::Value::Object(m.into_iter().collect()))
            .expect("JSON values serialize")
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "key",
                "record",
                "value",
                "options",
                "prefix",
                "limit",
                "service",
                "name",
                "metadata",
                "expiry",
                "topic",
                "offset",
                "nodes",
                "endpoints",
                "id",
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ]
}

proptest! {
    #[test]
    fn resolve_never_panics(path in ".{0,64}") {
        if let Some((service, endpoint)) = resolve(&path) {
            prop_assert!(!service.is_empty() && !service.contains('/'), "{service:?}");
            prop_assert!(endpoint.contains('.'), "{endpoint:?}");
        }
    }

    #[test]
    fn resolve_of_service_endpoint_gives_that_service(
        service in "[a-z][a-z0-9]{0,10}",
        method in "[a-zA-Z][a-zA-Z0-9]{0,6}(-[a-z0-9]{1,4}){0,2}",
        trailing in any::<bool>(),
    ) {
        prop_assume!(!(service.len() > 1 && service.starts_with('v')
            && service[1..].bytes().all(|b| b.is_ascii_digit())));
        let path = format!("/{service}/{method}{}", if trailing { "/" } else { "" });
        let endpoint = format!("{}.{}", camel(&service), camel(&method));
        prop_assert_eq!(resolve(&path), Some((service, endpoint)));
    }

    #[test]
    fn resolve_of_a_versioned_path_prefixes_the_version(
        version in 1..1000u32,
        service in "[a-z][a-z0-9]{0,10}",
        method in "[a-z][a-zA-Z0-9]{0,8}",
    ) {
        let path = format!("/v{version}/{service}/{method}");
        let expected = (format!("v{version}.{service}"), format!("{}.{}", camel(&service), camel(&method)));
        prop_assert_eq!(resolve(&path), Some(expected));
    }

    #[test]
    fn request_json_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        query in proptest::option::of(".{0,64}"),
        get in any::<bool>(),
        form in any::<bool>(),
    ) {
        let method = if get { Method::GET } else { Method::POST };
        let _ = request_json(&method, query.as_deref(), &headers(form), &body);
    }

    #[test]
    fn forms_and_queries_decode_to_objects(
        pairs in proptest::collection::vec(("[a-z.]{0,12}", ".{0,8}"), 0..8),
    ) {
        let text: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let json = request_json(&Method::GET, Some(&text), &headers(true), b"").unwrap();
        prop_assert!(json.is_object());
        let json = request_json(&Method::POST, None, &headers(true), text.as_bytes());
        // A form that happens to be JSON (`1`, say) is JSON; any other is an object.
        prop_assert!(json.is_ok(), "{json:?}");
    }

    /// JSON bodies transcoded for a method of micro-proto's services: an error or
    /// protobuf that decodes as the method's input.
    #[test]
    fn encoded_requests_decode_as_the_input(
        index in any::<prop::sample::Index>(),
        body in json_body(),
    ) {
        let method = index.get(methods());
        let json = request_json(&Method::POST, None, &headers(false), &body).unwrap();
        if let Ok((_, bytes)) = encode_request("svc", Some(method), json) {
            let decoded = DynamicMessage::decode(method.input(), bytes.as_slice());
            prop_assert!(decoded.is_ok(), "{decoded:?}");
        }
    }
}

/// Regression: a form key of 100,000 dotted parts (a 200 KB body, far under the 10 MiB
/// limit) nested as deep, and the recursion that built it overflowed the stack: one
/// request aborted the node.
#[test]
fn a_deeply_dotted_form_key_does_not_overflow_the_stack() {
    let body = format!("{}b=1", "a.".repeat(100_000));
    let json = request_json(&Method::POST, None, &headers(true), body.as_bytes()).unwrap();
    let query = request_json(&Method::GET, Some(&body), &headers(true), b"").unwrap();
    assert_eq!(json, query);
    let mut depth = 0;
    let mut value = &json;
    while let Some((_, inner)) = value.as_object().and_then(|o| o.iter().next()) {
        depth += 1;
        value = inner;
    }
    assert!(depth <= 32, "nested {depth} deep");
    assert_eq!(value, &serde_json::json!("1"));
}
