//! Bad input on every listener of a node (api, proxy, peer): oversized, malformed and
//! garbage requests get clear errors, and afterwards the node still serves. Failed logins
//! back off. No secret or token reaches the node's log, even at debug level.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use tonic::codegen::http::uri::PathAndQuery;

use crate::harness::{Node, fails, http, micro_in, ok, stderr};

/// The admin password of the node under test: it must never appear in its log.
const PASSWORD: &str = "Sekrit-Pw-4f1d9c";

/// Logs in as the admin with `password` in `home`, retrying while auth bootstraps.
fn login(node: &Node, home: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let login = micro_in(
            home,
            &["--proxy", &node.proxy],
            &["login", "--email", "admin", "--password", PASSWORD],
        );
        if login.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cannot log in: {}",
            stderr(&login)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends `body` as the raw message of a unary call to `path` at `addr`, with extra
/// `metadata`.
async fn raw_call(
    addr: &str,
    path: &'static str,
    body: Vec<u8>,
    metadata: &[(&'static str, String)],
) -> Result<Vec<u8>, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(body);
    for (name, value) in metadata {
        request.metadata_mut().insert(*name, value.parse().unwrap());
    }
    let reply = grpc
        .unary(
            request,
            PathAndQuery::from_static(path),
            micro_proto::raw::RawCodec,
        )
        .await?;
    Ok(reply.into_inner())
}

/// A peer `Payload` message (data = 1, crc = 2 as fixed32) around `data`, with a
/// correct CRC when `good_crc`.
fn payload(data: &[u8], good_crc: bool) -> Vec<u8> {
    let crc = if good_crc {
        crc32fast::hash(data)
    } else {
        crc32fast::hash(data) ^ 1
    };
    let message = micro_proto::peer::Payload {
        data: data.to_vec(),
        crc,
        format: micro_cluster::WIRE_FORMAT,
    };
    prost::Message::encode_to_vec(&message)
}

/// Writes `garbage` on a fresh connection to `addr`; true when the node closed or reset
/// it (after an answer or not) within a few seconds instead of keeping it open.
fn garbage_is_closed(addr: &str, garbage: &[u8]) -> bool {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let _ = stream.write_all(garbage);
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(err) => !matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

async fn proxy_refuses(proxy: &str, token: &str) {
    let auth = [("authorization", format!("Bearer {token}"))];
    let big = vec![0x0a; 5 * 1024 * 1024];
    let err = raw_call(proxy, "/store.Store/Write", big.clone(), &auth)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "an oversized message: {err:?}"
    );
    let err = raw_call(proxy, "/nosuch.Service/Call", big, &auth)
        .await
        .unwrap_err();
    assert_ne!(err.code(), tonic::Code::Ok);
    let huge_header = [("x-junk", "j".repeat(100 * 1024))];
    let err = raw_call(proxy, "/store.Store/List", Vec::new(), &huge_header).await;
    assert!(err.is_err(), "a 100 KiB header was served");
    let err = raw_call(proxy, "/store.Store/Write", vec![0xff; 64], &auth)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
}

/// The `SETTINGS_MAX_CONCURRENT_STREAMS` the gRPC server at `addr` announces.
async fn stream_limit(addr: &str) -> usize {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (_send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    // Drive the connection until the server's SETTINGS have arrived.
    let _ = tokio::time::timeout(Duration::from_millis(500), &mut connection).await;
    connection.max_concurrent_send_streams()
}

async fn peer_refuses(peer: &str) {
    for path in [
        "/peer.Peer/Vote",
        "/peer.Peer/AppendEntries",
        "/peer.Peer/InstallSnapshot",
        "/peer.Peer/Call",
    ] {
        // A damaged payload (wrong CRC), a well-formed one holding junk, a big junk one,
        // and bytes that are not a Payload at all.
        for body in [
            payload(b"junk", false),
            payload(&[0xff; 1000], true),
            payload(&vec![0x07; 5 * 1024 * 1024], true),
            vec![0xff, 0xff, 0xff, 0xff, 0x0f],
        ] {
            let err = raw_call(peer, path, body, &[]).await.unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{path}: {err:?}");
        }
        // A member of a release with another wire format: refused by name, unread.
        let newer = micro_proto::peer::Payload {
            data: b"junk".to_vec(),
            crc: crc32fast::hash(b"junk"),
            format: micro_cluster::WIRE_FORMAT + 1,
        };
        let body = prost::Message::encode_to_vec(&newer);
        let err = raw_call(peer, path, body, &[]).await.unwrap_err();
        assert_eq!(
            err.code(),
            tonic::Code::FailedPrecondition,
            "{path}: {err:?}"
        );
        let wanted = format!("wire format {}", micro_cluster::WIRE_FORMAT + 1);
        assert!(err.message().contains(&wanted), "{path}: {err:?}");
    }
}

#[test]
fn every_listener_refuses_bad_input_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    let data = dir.path().join("data");
    let node = Node::start_logging_at(&data, &log, "debug", &["--admin-password", PASSWORD]);
    let home = tempfile::tempdir().unwrap();
    login(&node, home.path());
    let cli = |args: &[&str]| micro_in(home.path(), &["--proxy", &node.proxy], args);
    ok(&cli(&["store", "write", "keep", "safe"]));
    let token = ok(&cli(&["user", "token"])).trim().to_owned();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(proxy_refuses(&node.proxy, &token));
    rt.block_on(peer_refuses(&node.peer));
    assert_eq!(rt.block_on(stream_limit(&node.proxy)), 256);
    assert_eq!(rt.block_on(stream_limit(&node.peer)), 1024);
    for addr in [&node.proxy, &node.peer, &node.api] {
        assert!(
            garbage_is_closed(addr, b"\x16\x03\x01garbage that is no protocol\r\n\r\n"),
            "{addr} kept a garbage connection open"
        );
    }

    // The HTTP API: a huge header, a huge path, malformed JSON, an oversized body.
    let junk = "j".repeat(100 * 1024);
    let (status, _) = http(&node.api, "GET", "/health", &[("x-junk", &junk)], b"");
    assert_eq!(status, 431);
    let long_path = format!("/store/{}", "p".repeat(64 * 1024));
    let (status, _) = http(&node.api, "POST", &long_path, &[], b"{}");
    assert!((400..500).contains(&status), "a 64 KiB path: {status}");
    let bearer = format!("Bearer {token}");
    let json = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let (status, body) = http(&node.api, "POST", "/store/read", &json, b"{\"key\":");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"code\":400"), "{body}");
    let (status, _) = http(
        &node.api,
        "POST",
        "/store/write",
        &json,
        &vec![b'x'; 11 << 20],
    );
    assert_eq!(status, 413);

    // Failed logins: five are free, then even the right password waits (429, exit 127).
    let wrong = ["login", "--email", "admin", "--password", "wrong"];
    let fresh = tempfile::tempdir().unwrap();
    for _ in 0..6 {
        fails(
            &micro_in(fresh.path(), &["--proxy", &node.proxy], &wrong),
            2,
        );
    }
    let right = ["login", "--email", "admin", "--password", PASSWORD];
    let err = fails(
        &micro_in(fresh.path(), &["--proxy", &node.proxy], &right),
        127,
    );
    assert!(err.contains("too many failed logins"), "{err}");

    // The node still serves: health, reads of what was stored before, new writes.
    let (status, _) = http(&node.api, "GET", "/health", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(ok(&cli(&["store", "read", "keep"])).trim(), "safe");
    ok(&cli(&["store", "write", "after", "still fine"]));
    assert_eq!(ok(&cli(&["store", "read", "after"])).trim(), "still fine");

    // The log holds neither the password nor any token.
    let tokens = std::fs::read_to_string(home.path().join("tokens.json")).unwrap();
    let refresh = serde_json::from_str::<serde_json::Value>(&tokens).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.len() > 1000, "the debug log is suspiciously short");
    assert!(!text.contains(PASSWORD), "the admin password was logged");
    assert!(!text.contains(&token), "an access token was logged");
    for secret in strings(&refresh).filter(|s| s.len() > 40) {
        assert!(!text.contains(secret), "a stored token was logged");
    }
}

/// Every string inside `value`.
fn strings(value: &serde_json::Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match value {
        serde_json::Value::String(s) => Box::new(std::iter::once(s.as_str())),
        serde_json::Value::Array(items) => Box::new(items.iter().flat_map(strings)),
        serde_json::Value::Object(map) => Box::new(map.values().flat_map(strings)),
        _ => Box::new(std::iter::empty()),
    }
}
