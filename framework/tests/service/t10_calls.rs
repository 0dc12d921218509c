//! Protobuf and JSON calls, unknown endpoints, malformed bodies, streaming.

use micro_core::Namespace;
use prost::Message;

use crate::fixture::{
    CountRequest, CountResponse, PingRequest, PingResponse, json_call, proto_call, replies, reply,
    start,
};

#[tokio::test]
async fn protobuf_call_reaches_the_handler_with_its_context() {
    let service = start(2).await;
    let request = PingRequest {
        msg: "hi".into(),
        n: 41,
        ..PingRequest::default()
    };
    let mut call = proto_call("Echo.Ping", &request);
    call.namespace = Namespace::new("team-a").unwrap();
    let bytes = reply(&service, call).await.unwrap();
    let response = PingResponse::decode(bytes.as_slice()).unwrap();
    assert_eq!(response.msg, "hi from team-a");
    assert_eq!(response.n, 42);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn json_call_is_transcoded_both_ways() {
    let service = start(2).await;
    let body = r#"{"msg":"hi","n":"41","tags":["a"],"labels":{"k":"v"},"inner":{"ok":true}}"#;
    let bytes = reply(&service, json_call("Echo.Ping", body)).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json, serde_json::json!({"msg": "hi from micro", "n": 42}));

    tracing::info!("an empty JSON body is the empty message");
    let bytes = reply(&service, json_call("Echo.Ping", "")).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json, serde_json::json!({"msg": " from micro", "n": 1}));
    service.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_endpoint_is_404_naming_the_known_ones() {
    let service = start(1).await;
    let err = reply(&service, json_call("Echo.Nope", "{}"))
        .await
        .unwrap_err();
    assert_eq!(err.code, 404);
    assert!(err.detail.contains("Echo.Nope"), "{}", err.detail);
    assert!(err.detail.contains("Echo.Ping"), "{}", err.detail);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let service = start(1).await;
    for body in [
        "{not json",
        r#"{"msg": 5}"#,
        r#"{"unknown": 1}"#,
        "{} trailing",
    ] {
        let err = reply(&service, json_call("Echo.Ping", body))
            .await
            .unwrap_err();
        assert_eq!(err.code, 400, "{body}: {err:?}");
    }
    let mut call = proto_call("Echo.Ping", &PingRequest::default());
    call.body = vec![0xff, 0xff, 0xff];
    let err = reply(&service, call).await.unwrap_err();
    assert_eq!(err.code, 400, "{err:?}");
    service.stop().await.unwrap();
}

#[tokio::test]
async fn server_stream_sends_every_reply_in_both_encodings() {
    let service = start(1).await;
    let request = CountRequest {
        count: 3,
        panic_at_end: false,
    };
    let all = replies(&service, proto_call("Echo.Count", &request)).await;
    let counts: Vec<i64> = all
        .into_iter()
        .map(|r| CountResponse::decode(r.unwrap().as_slice()).unwrap().count)
        .collect();
    assert_eq!(counts, [1, 2, 3]);

    let all = replies(&service, json_call("Echo.Count", r#"{"count":2}"#)).await;
    let json: Vec<String> = all
        .into_iter()
        .map(|r| String::from_utf8(r.unwrap()).unwrap())
        .collect();
    assert_eq!(json, [r#"{"count":1}"#, r#"{"count":2}"#]);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn client_streaming_endpoint_is_501() {
    let service = start(1).await;
    let err = reply(&service, json_call("Echo.Upload", "{}"))
        .await
        .unwrap_err();
    assert_eq!(err.code, 501);
    service.stop().await.unwrap();
}
