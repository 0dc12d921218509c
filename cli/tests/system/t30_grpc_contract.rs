//! The wire contract: a client generated from a v3 `.proto` works unchanged; malformed
//! or oversized input and unknown methods get errors, never a crash or lost data.

use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

use crate::harness::{Authed, Bearer, Node, fails, ok};

/// The client generated from `tests/proto/v3_store.proto` by the build script.
#[allow(
    clippy::all,
    clippy::pedantic,
    unreachable_pub,
    missing_docs,
    dead_code
)]
pub(crate) mod v3 {
    include!(concat!(env!("OUT_DIR"), "/v3/store.rs"));
    pub use store_client::StoreClient;
}

/// A v3 store client of `proxy` sending `token` (the store is for admins, as in v3).
pub(crate) async fn connect(proxy: &str, token: &str) -> v3::StoreClient<Authed> {
    let channel = Channel::from_shared(format!("http://{proxy}"))
        .unwrap()
        .connect()
        .await
        .expect("connect to the proxy");
    v3::StoreClient::with_interceptor(channel, Bearer(token.to_owned()))
}

#[test]
fn a_v3_client_writes_reads_lists_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(v3_round_trip(&node.proxy, &node.token()));
}

async fn v3_round_trip(proxy: &str, token: &str) {
    let mut client = connect(proxy, token).await;
    let record = v3::Record {
        key: "k".into(),
        value: b"v3".to_vec(),
        expiry: 60,
        ..Default::default()
    };
    client
        .write(v3::WriteRequest {
            record: Some(record),
            options: None,
        })
        .await
        .unwrap();
    let read = client
        .read(v3::ReadRequest {
            key: "k".into(),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (read.records[0].value.as_slice(), read.records[0].expiry > 0),
        (&b"v3"[..], true)
    );
    let mut keys = client
        .list(v3::ListRequest { options: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        keys.message().await.unwrap().unwrap().keys,
        vec!["k".to_owned()]
    );
    client
        .delete(v3::DeleteRequest {
            key: "k".into(),
            options: None,
        })
        .await
        .unwrap();
    let missing = client
        .read(v3::ReadRequest {
            key: "k".into(),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let databases = client
        .databases(v3::DatabasesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(databases.databases.is_empty());
}

#[test]
fn malformed_oversized_and_unknown_requests_are_refused_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(refuse_bad_requests(&node.proxy, &node.token()));
    assert_eq!(ok(&node.micro(&["store", "list"])), "keep\n");
    fails(&node.micro(&["store", "read", "big"]), 127);
}

async fn refuse_bad_requests(proxy: &str, token: &str) {
    let mut client = connect(proxy, token).await;
    let keep = v3::Record {
        key: "keep".into(),
        value: b"safe".to_vec(),
        ..Default::default()
    };
    client
        .write(v3::WriteRequest {
            record: Some(keep),
            options: None,
        })
        .await
        .unwrap();

    let garbage = raw_call(
        proxy,
        "/store.Store/Write",
        vec![0xff, 0xff, 0xff, 0x0f, 0x12],
    )
    .await;
    assert!(garbage.is_err(), "malformed protobuf was accepted");
    let unknown = raw_call(proxy, "/store.Store/Frobnicate", Vec::new())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::Unimplemented);

    let value = vec![b'x'; micro_core::store::VALUE_LEN_MAX + 1];
    let big = v3::Record {
        key: "big".into(),
        value,
        ..Default::default()
    };
    let err = client
        .write(v3::WriteRequest {
            record: Some(big),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    let negative = v3::Record {
        key: "neg".into(),
        expiry: -5,
        ..Default::default()
    };
    let err = client
        .write(v3::WriteRequest {
            record: Some(negative),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");

    let read = client
        .read(v3::ReadRequest {
            key: "keep".into(),
            options: None,
        })
        .await
        .unwrap();
    assert_eq!(read.into_inner().records[0].value, b"safe");
}

/// Sends `body` as the raw message of a unary call to `path`.
async fn raw_call(
    proxy: &str,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let channel = Channel::from_shared(format!("http://{proxy}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let reply = grpc
        .unary(
            tonic::Request::new(body),
            PathAndQuery::from_static(path),
            micro_proto::raw::RawCodec,
        )
        .await?;
    Ok(reply.into_inner())
}
