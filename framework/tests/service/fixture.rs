//! The `echo.Echo` handler: messages written by hand, descriptor compiled at run time.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use futures::StreamExt;
use micro::{Call, Context, Error, Handler, ReplyStream, RunningService};
use micro_core::service::{CONTENT_JSON, CONTENT_PROTO, LocalService};
use prost::Message;

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PingRequest {
    #[prost(string, tag = "1")]
    pub(crate) msg: String,
    #[prost(int64, tag = "2")]
    pub(crate) n: i64,
    #[prost(string, repeated, tag = "3")]
    pub(crate) tags: Vec<String>,
    #[prost(btree_map = "string, string", tag = "4")]
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PingResponse {
    #[prost(string, tag = "1")]
    pub(crate) msg: String,
    #[prost(int64, tag = "2")]
    pub(crate) n: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CountRequest {
    #[prost(int64, tag = "1")]
    pub(crate) count: i64,
    #[prost(bool, tag = "2")]
    pub(crate) panic_at_end: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CountResponse {
    #[prost(int64, tag = "1")]
    pub(crate) count: i64,
}

/// The encoded descriptor set of `echo.proto`.
pub(crate) fn descriptor() -> &'static [u8] {
    static DESCRIPTOR: OnceLock<Vec<u8>> = OnceLock::new();
    DESCRIPTOR.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/service");
        protox::compile(["echo.proto"], [dir])
            .expect("echo.proto compiles")
            .encode_to_vec()
    })
}

async fn ping(ctx: Context, req: PingRequest) -> Result<PingResponse, Error> {
    Ok(PingResponse {
        msg: format!("{} from {}", req.msg, ctx.namespace()),
        n: req.n + 1,
    })
}

async fn panic(_ctx: Context, req: PingRequest) -> Result<PingResponse, Error> {
    if req.msg == "boom" {
        panic!("the handler was asked to explode");
    }
    Ok(PingResponse { msg: req.msg, n: 0 })
}

async fn count(_ctx: Context, req: CountRequest) -> Result<ReplyStream<CountResponse>, Error> {
    let last = req.count + i64::from(req.panic_at_end);
    let counts = futures::stream::iter(1..=last).map(move |count| {
        assert!(count <= req.count, "the stream was asked to explode");
        Ok(CountResponse { count })
    });
    Ok(Box::pin(counts))
}

/// The echo handler.
pub(crate) fn handler() -> Handler {
    Handler::new("echo.Echo", descriptor())
        .unary("Echo.Ping", "echo.PingRequest", "echo.PingResponse", ping)
        .unary("Echo.Panic", "echo.PingRequest", "echo.PingResponse", panic)
        .server_stream(
            "Echo.Count",
            "echo.CountRequest",
            "echo.CountResponse",
            count,
        )
        .not_implemented(
            "Echo.Upload",
            "echo.PingRequest",
            "echo.PingResponse",
            false,
        )
}

/// The echo service started in this process.
pub(crate) async fn start(concurrency: usize) -> RunningService {
    micro::Service::new("echo")
        .concurrency(concurrency)
        .handle(handler())
        .start_local()
        .await
        .expect("the echo service starts")
}

/// A protobuf call of `endpoint`.
pub(crate) fn proto_call(endpoint: &str, body: &impl Message) -> Call {
    Call {
        service: "echo".into(),
        endpoint: endpoint.into(),
        content_type: CONTENT_PROTO.into(),
        body: body.encode_to_vec(),
        ..Call::default()
    }
}

/// A JSON call of `endpoint`.
pub(crate) fn json_call(endpoint: &str, body: &str) -> Call {
    Call {
        service: "echo".into(),
        endpoint: endpoint.into(),
        content_type: CONTENT_JSON.into(),
        body: body.as_bytes().to_vec(),
        ..Call::default()
    }
}

/// Every reply of `call`.
pub(crate) async fn replies(service: &RunningService, call: Call) -> Vec<Result<Vec<u8>, Error>> {
    service.call(call).collect().await
}

/// The single reply of a unary `call`.
pub(crate) async fn reply(service: &RunningService, call: Call) -> Result<Vec<u8>, Error> {
    let mut all = replies(service, call).await;
    assert_eq!(all.len(), 1, "a unary call has one reply");
    all.remove(0)
}
