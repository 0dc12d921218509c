//! Calls in both encodings, streaming, and what the service registers.

use futures::StreamExt;
use helloworld::pb;
use micro::{Call, RunningService};
use micro_core::registry::{DESCRIPTOR_METADATA, PROTO_SERVICE_METADATA};
use micro_core::service::{CONTENT_JSON, CONTENT_PROTO, LocalService};
use prost::Message;

fn call(endpoint: &str, content_type: &str, body: Vec<u8>) -> Call {
    Call {
        service: helloworld::NAME.into(),
        endpoint: endpoint.into(),
        content_type: content_type.into(),
        body,
        ..Call::default()
    }
}

async fn replies(service: &RunningService, call: Call) -> Vec<Result<Vec<u8>, micro::Error>> {
    service.call(call).collect().await
}

#[tokio::test]
async fn call_greets_in_json_and_protobuf() {
    let service = helloworld::service().start_local().await.unwrap();
    let json = replies(
        &service,
        call(
            "Helloworld.Call",
            CONTENT_JSON,
            br#"{"name":"Alice"}"#.to_vec(),
        ),
    )
    .await;
    assert_eq!(json[0].as_ref().unwrap(), br#"{"msg":"Hello Alice"}"#);

    let request = pb::CallRequest { name: "Bob".into() };
    let proto = replies(
        &service,
        call("Helloworld.Call", CONTENT_PROTO, request.encode_to_vec()),
    )
    .await;
    let response = pb::CallResponse::decode(proto[0].as_ref().unwrap().as_slice()).unwrap();
    assert_eq!(response.msg, "Hello Bob");
    service.stop().await.unwrap();
}

#[tokio::test]
async fn stream_counts_to_the_requested_number() {
    let service = helloworld::service().start_local().await.unwrap();
    let all = replies(
        &service,
        call(
            "Helloworld.Stream",
            CONTENT_JSON,
            br#"{"count":3}"#.to_vec(),
        ),
    )
    .await;
    let texts: Vec<String> = all
        .into_iter()
        .map(|r| String::from_utf8(r.unwrap()).unwrap())
        .collect();
    assert_eq!(
        texts,
        [r#"{"count":1}"#, r#"{"count":2}"#, r#"{"count":3}"#]
    );

    let too_many = format!(r#"{{"count":{}}}"#, helloworld::STREAM_COUNT_MAX + 1);
    let all = replies(
        &service,
        call("Helloworld.Stream", CONTENT_JSON, too_many.into_bytes()),
    )
    .await;
    assert_eq!(all[0].as_ref().unwrap_err().code, 400);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn describe_carries_descriptor_and_schemas() {
    let service = helloworld::service().start_local().await.unwrap();
    let described = service.describe();
    assert_eq!(described.name, "helloworld");
    assert_eq!(described.version, "latest");
    assert_eq!(
        described.metadata[PROTO_SERVICE_METADATA],
        "helloworld.Helloworld"
    );
    assert!(!described.metadata[DESCRIPTOR_METADATA].is_empty());
    let call = &described.endpoints[0];
    assert_eq!(call.name, "Helloworld.Call");
    let request = call.request.as_ref().unwrap();
    assert_eq!(request.r#type, "CallRequest");
    assert_eq!(
        (
            request.values[0].name.as_str(),
            request.values[0].r#type.as_str()
        ),
        ("name", "string")
    );
    assert_eq!(described.endpoints[1].metadata["stream"], "true");
    assert_eq!(pb::FILE_DESCRIPTOR_SET, micro::include_descriptor!());
    service.stop().await.unwrap();
}
