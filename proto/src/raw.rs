//! Calls as raw bytes over gRPC: how the proxy forwards to services it has never seen
//! compiled, and how a process service serves its handlers.
//!
//! ```text
//! client ─/helloworld.Helloworld/Call─> [routes(svc)] ─Call{service, endpoint, body}─> LocalService
//!                                                    <── replies (1 for unary, N streamed)
//! router ─[call(channel, Call)]─> /helloworld.Helloworld/Call on another node or process
//! ```
//!
//! The first path segment names the service (`helloworld`) and the rest the endpoint
//! (`Helloworld.Call`), as Micro v3's proxy did. A body's encoding travels in
//! `x-content-type` (Micro's header; tonic fixes `content-type` to `application/grpc`),
//! so JSON bodies (`application/grpc+json`) pass through untouched. Unary and
//! server-streaming calls are carried; a client stream contributes its first message (the
//! rest is read and dropped).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use micro_core::service::{CONTENT_PROTO, Call, Replies, ServiceCaller};
use micro_core::{Code, MicroError, Namespace};
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http;
use tonic::transport::Channel;

use crate::status::{micro_from_status, status_from_micro};

/// Header carrying the body's content type through gRPC.
pub const CONTENT_TYPE_HEADER: &str = "x-content-type";
/// Header carrying the caller's namespace.
pub const NAMESPACE_HEADER: &str = "micro-namespace";
/// The largest message carried either way.
pub const RAW_MESSAGE_MAX: usize = 4 * 1024 * 1024;

/// A codec that passes message bytes through as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self::Encoder {
        Self
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Self::Error> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Splits a gRPC path `/<service>.<Handler>/<Method>` into the registry name and the
/// endpoint (`("helloworld", "Helloworld.Call")`); `None` if it has another shape.
///
/// ```
/// assert_eq!(
///     micro_proto::raw::split_path("/helloworld.Helloworld/Call"),
///     Some(("helloworld".to_owned(), "Helloworld.Call".to_owned()))
/// );
/// assert_eq!(micro_proto::raw::split_path("/nodot/Call"), None);
/// ```
pub fn split_path(path: &str) -> Option<(String, String)> {
    let (head, method) = path.strip_prefix('/')?.split_once('/')?;
    let (service, handler) = head.rsplit_once('.')?;
    if service.is_empty() || handler.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((service.to_owned(), format!("{handler}.{method}")))
}

/// The gRPC path of `endpoint` (`Handler.Method`) of `service`.
pub fn path_of(service: &str, endpoint: &str) -> Result<String, MicroError> {
    let (handler, method) = endpoint.split_once('.').ok_or_else(|| {
        MicroError::new(
            service,
            Code::BadRequest,
            format!("endpoint {endpoint:?} must look like Handler.Method"),
        )
    })?;
    Ok(format!("/{service}.{handler}/{method}"))
}

/// An axum router answering every gRPC path by calling `svc` (unary and
/// server-streaming), for a process service's own server or the proxy's fallback. The
/// router serves `svc` (any [`ServiceCaller`], e.g. an `Arc<dyn LocalService>`).
pub fn router<S: ServiceCaller + ?Sized>(svc: Arc<S>) -> axum::Router {
    axum::Router::new().fallback(move |req: http::Request<axum::body::Body>| {
        let svc = svc.clone();
        async move { serve_one(svc, req).await.map(axum::body::Body::new) }
    })
}

async fn serve_one<S: ServiceCaller + ?Sized>(
    svc: Arc<S>,
    req: http::Request<axum::body::Body>,
) -> http::Response<tonic::body::Body> {
    let Some((service, endpoint)) = split_path(req.uri().path()) else {
        let err = MicroError::new(
            "proxy",
            Code::NotFound,
            format!("{} is not a /service.Handler/Method path", req.uri().path()),
        );
        return status_from_micro(&err).into_http();
    };
    let headers = req.headers().clone();
    let mut grpc = tonic::server::Grpc::new(RawCodec)
        .apply_max_message_size_config(Some(RAW_MESSAGE_MAX), Some(RAW_MESSAGE_MAX));
    let handler = tower::service_fn(move |request: tonic::Request<tonic::Streaming<Vec<u8>>>| {
        let svc = svc.clone();
        let (service, endpoint, headers) = (service.clone(), endpoint.clone(), headers.clone());
        async move {
            let mut messages = request.into_inner();
            let first = messages.message().await?.ok_or_else(|| {
                tonic::Status::invalid_argument("the call carried no request message")
            })?;
            // Read the request to its end in the background. A reply that finishes while
            // the request is still open makes the server reset the stream, and HTTP/2
            // servers answer many such resets with GOAWAY, failing every call in flight.
            tokio::spawn(async move { while let Ok(Some(_)) = messages.message().await {} });
            let call = call_from(&service, &endpoint, &headers, first);
            let replies = svc
                .dispatch(call)
                .map(|item| item.map_err(|e| status_from_micro(&e)));
            let stream: std::pin::Pin<
                Box<dyn futures_core::Stream<Item = Result<Vec<u8>, tonic::Status>> + Send>,
            > = Box::pin(replies);
            Ok::<_, tonic::Status>(tonic::Response::new(stream))
        }
    });
    grpc.streaming(handler, req).await
}

/// Builds the [`Call`] of a request from its headers.
fn call_from(service: &str, endpoint: &str, headers: &http::HeaderMap, body: Vec<u8>) -> Call {
    let mut metadata = BTreeMap::new();
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            metadata.insert(name.as_str().to_owned(), value.to_owned());
        }
    }
    let namespace = metadata
        .get(NAMESPACE_HEADER)
        .and_then(|ns| Namespace::new(ns.as_str()).ok())
        .unwrap_or_default();
    // `x-content-type` first (it survives tonic clients, which fix `content-type`),
    // then a JSON `content-type` sent by a gRPC+JSON client, else protobuf.
    let content_type = metadata
        .get(CONTENT_TYPE_HEADER)
        .or_else(|| {
            metadata
                .get("content-type")
                .filter(|ct| ct.ends_with("json"))
        })
        .cloned()
        .unwrap_or_else(|| CONTENT_PROTO.to_owned());
    Call {
        namespace,
        service: service.to_owned(),
        endpoint: endpoint.to_owned(),
        content_type,
        metadata,
        body,
    }
}

/// Headers a forwarded call must not copy (HTTP/2 and gRPC framing, set anew).
fn hop_by_hop(name: &str) -> bool {
    name.starts_with(':')
        || matches!(
            name,
            "content-type"
                | "te"
                | "user-agent"
                | "grpc-timeout"
                | "grpc-encoding"
                | "grpc-accept-encoding"
                | "content-length"
                | "host"
                | "connection"
        )
}

/// Calls `call` on the gRPC server behind `channel`, within `timeout`. Errors come back
/// as micro errors (a dead peer is `Unavailable`).
pub async fn call(channel: Channel, call: Call, timeout: Duration) -> Result<Replies, MicroError> {
    let service = call.service.clone();
    let path = path_of(&call.service, &call.endpoint)?;
    let path = http::uri::PathAndQuery::try_from(path).map_err(|e| {
        MicroError::new(&service, Code::BadRequest, format!("invalid endpoint: {e}"))
    })?;
    let mut request = tonic::Request::new(call.body);
    let metadata = request.metadata_mut();
    for (name, value) in &call.metadata {
        if hop_by_hop(name) || name.ends_with("-bin") {
            continue;
        }
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(name.as_bytes()),
            value.parse(),
        ) {
            metadata.insert(key, value);
        }
    }
    if let Ok(ns) = call.namespace.as_str().parse() {
        metadata.insert(NAMESPACE_HEADER, ns);
    }
    if let Ok(ct) = call.content_type.parse() {
        metadata.insert(CONTENT_TYPE_HEADER, ct);
    }
    request.set_timeout(timeout);
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(RAW_MESSAGE_MAX)
        .max_encoding_message_size(RAW_MESSAGE_MAX);
    let to_micro = |status: &tonic::Status| micro_from_status(&service, status);
    let ready = tokio::time::timeout(timeout, grpc.ready()).await;
    match ready {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(MicroError::new(
                &service,
                Code::Unavailable,
                format!("cannot reach {service}: {e}"),
            ));
        }
        Err(_) => {
            return Err(MicroError::new(
                &service,
                Code::GatewayTimeout,
                format!("{service} did not accept the call within {timeout:?}"),
            ));
        }
    }
    let response = grpc
        .server_streaming(request, path, RawCodec)
        .await
        .map_err(|s| to_micro(&s))?;
    let replies = response
        .into_inner()
        .map(move |item| item.map_err(|s| micro_from_status(&service, &s)));
    Ok(Box::pin(replies))
}
