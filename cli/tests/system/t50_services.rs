//! Services on a three-node cluster of real processes: `micro run helloworld`, then
//! every node lists it and calls it (the nodes that do not run it forward), through the
//! CLI, dynamic commands, streams, and a gRPC client generated from helloworld's
//! `.proto` alone, with protobuf and JSON bodies.

use std::time::{Duration, Instant};

use tonic::codegen::http::uri::PathAndQuery;

use crate::harness::{Node, fails, http, ok};

/// The client generated from `tests/proto/v3_helloworld.proto` by the build script.
#[allow(
    clippy::all,
    clippy::pedantic,
    unreachable_pub,
    missing_docs,
    dead_code
)]
pub(crate) mod hello {
    include!(concat!(env!("OUT_DIR"), "/v3/helloworld.rs"));
}

pub(crate) fn start_cluster(dirs: &[tempfile::TempDir]) -> Vec<Node> {
    let peers = crate::t40_cluster::peer_list();
    let start = |id: usize| {
        let id_text = (id + 1).to_string();
        Node::start_with(dirs[id].path(), &["--node-id", &id_text, "--peers", &peers])
    };
    let nodes: Vec<Node> = (0..3).map(start).collect();
    crate::t40_cluster::wait_leader(&nodes[0]);
    nodes
}

/// Polls `check` for up to 20 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn helloworld_runs_once_and_answers_through_every_node() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = start_cluster(&dirs);
    ok(&nodes[0].micro(&["run", "helloworld"]));
    for node in &nodes {
        eventually("helloworld in micro services", || {
            ok(&node.micro(&["services"]))
                .lines()
                .any(|l| l == "helloworld")
        });
        let services = ok(&node.micro(&["services"]));
        for core in ["registry", "runtime", "store"] {
            assert!(services.lines().any(|l| l == core), "{services}");
        }
    }
    let status = json(&ok(&nodes[1].micro(&["status", "--output", "json"])));
    assert_eq!(status[0]["name"], "helloworld");
    assert_eq!(status[0]["status"], "running");
    let runs_on = status[0]["metadata"]["node"].as_str().unwrap().to_owned();

    let expected = serde_json::json!({"msg": "Hello John"});
    for node in &nodes {
        let out = ok(&node.micro(&[
            "call",
            "helloworld",
            "Helloworld.Call",
            r#"{"name":"John"}"#,
        ]));
        assert_eq!(json(&out), expected, "through {}", node.proxy);
        let out = ok(&node.micro(&["helloworld", "call", "--name=John"]));
        assert_eq!(json(&out), expected);
    }
    assert!(
        (1..=3).any(|id| id.to_string() != runs_on),
        "some node does not run it, and forwarded"
    );
    let help = ok(&nodes[2].micro(&["helloworld", "--help"]));
    assert!(help.contains("call") && help.contains("stream"), "{help}");
    let streamed = ok(&nodes[2].micro(&[
        "stream",
        "helloworld",
        "Helloworld.Stream",
        r#"{"count":3}"#,
    ]));
    let counts: Vec<i64> = streamed
        .lines()
        .map(|l| json(l)["count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2, 3]);

    clear_errors(&nodes[0]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    for node in &nodes {
        rt.block_on(generated_client_calls(&node.proxy));
        http_calls(node);
        rt.block_on(websocket_stream(&node.api));
    }

    ok(&nodes[2].micro(&["kill", "helloworld"]));
    for node in &nodes {
        eventually("helloworld gone", || {
            !ok(&node.micro(&["services"]))
                .lines()
                .any(|l| l == "helloworld")
        });
    }
    let err = fails(
        &nodes[0].micro(&["call", "helloworld", "Helloworld.Call"]),
        4,
    );
    assert!(err.contains("not found"), "{err}");
}

/// Unknown service (exit 4), unknown endpoint (5), malformed JSON (64), unknown
/// compiled-in service: one clear line each.
fn clear_errors(node: &Node) {
    // Clear errors: unknown service (4), unknown endpoint (5), malformed JSON (64).
    let err = fails(&node.micro(&["call", "nosuch", "Foo.Bar"]), 4);
    assert!(err.contains("not found"), "{err}");
    let err = fails(&node.micro(&["call", "helloworld", "Helloworld.Nope"]), 5);
    assert!(err.contains("Helloworld.Call"), "{err}");
    fails(
        &node.micro(&["call", "helloworld", "Helloworld.Call", "{bad"]),
        64,
    );
    // A service's own not-found (a missing key) is not "no such service".
    let err = fails(
        &node.micro(&["call", "store", "Store.Read", r#"{"key":"nope"}"#]),
        127,
    );
    assert!(err.contains("nope"), "{err}");
    let err = fails(&node.micro(&["run", "nosuch"]), 127);
    assert!(err.contains("helloworld"), "names what it knows: {err}");
}

/// The HTTP gateway of `node`, as curl uses it.
fn http_calls(node: &Node) {
    let expected = serde_json::json!({"msg": "Hello John"});
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (status, body) = http(
        &node.api,
        "POST",
        "/helloworld/call",
        &form,
        br#"{"name":"John"}"#,
    );
    assert_eq!(
        (status, json(&body)),
        (200, expected.clone()),
        "through {}",
        node.api
    );
    let (status, body) = http(&node.api, "GET", "/helloworld/call?name=John", &[], b"");
    assert_eq!((status, json(&body)), (200, expected));
    // A core service answers the same way (the store for an admin only).
    let (status, body) = http(&node.api, "POST", "/store/read", &[], br#"{"key":"nope"}"#);
    assert_eq!(status, 401, "{body}");
    let bearer = format!("Bearer {}", node.token());
    let admin = [("authorization", bearer.as_str())];
    let (status, body) = http(
        &node.api,
        "POST",
        "/store/read",
        &admin,
        br#"{"key":"nope"}"#,
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(json(&body)["id"], "store");
    let (status, body) = http(&node.api, "POST", "/nosuch/call", &[], b"{}");
    assert_eq!((status, json(&body)["code"].as_i64()), (404, Some(404)));
    let json_type = [("content-type", "application/json")];
    let (status, body) = http(&node.api, "POST", "/helloworld/call", &json_type, b"{bad");
    assert_eq!((status, json(&body)["code"].as_i64()), (400, Some(400)));
    let (status, _) = http(
        &node.api,
        "POST",
        "/any/path",
        &[],
        &vec![b'x'; 11 * 1024 * 1024],
    );
    assert_eq!(status, 413);
    let (status, _) = http(
        &node.api,
        "OPTIONS",
        "/helloworld/call",
        &[("origin", "https://a.example")],
        b"",
    );
    assert_eq!(status, 204);
}

/// The streaming endpoint over WebSocket: the request, then one message per reply.
async fn websocket_stream(api: &str) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("ws://{api}/helloworld/stream");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.send(Message::text(r#"{"count":3}"#)).await.unwrap();
    let mut counts = Vec::new();
    while let Some(message) = socket.next().await {
        match message.unwrap() {
            Message::Text(text) => counts.push(json(text.as_str())["count"].as_i64().unwrap()),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(counts, [1, 2, 3]);
}

/// A client that knows only helloworld's `.proto`: protobuf, then JSON bodies.
async fn generated_client_calls(proxy: &str) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{proxy}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = hello::helloworld_client::HelloworldClient::new(channel.clone());
    let reply = client
        .call(hello::CallRequest { name: "Ada".into() })
        .await
        .unwrap();
    assert_eq!(reply.into_inner().msg, "Hello Ada");
    let mut stream = client
        .stream(hello::StreamRequest { count: 2 })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        seen.push(message.count);
    }
    assert_eq!(seen, [1, 2]);

    // JSON body: `application/grpc+json`, as Micro v3 clients sent it.
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(br#"{"name":"Json"}"#.to_vec());
    request
        .metadata_mut()
        .insert("x-content-type", "application/grpc+json".parse().unwrap());
    let reply = grpc
        .unary(
            request,
            PathAndQuery::from_static("/helloworld.Helloworld/Call"),
            micro_proto::raw::RawCodec,
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        json(&String::from_utf8(reply).unwrap()),
        serde_json::json!({"msg": "Hello Json"})
    );
    let mut bad = tonic::Request::new(b"{not json".to_vec());
    bad.metadata_mut()
        .insert("x-content-type", "application/grpc+json".parse().unwrap());
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            bad,
            PathAndQuery::from_static("/helloworld.Helloworld/Call"),
            micro_proto::raw::RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
}
