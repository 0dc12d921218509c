//! [`Handler`]: the endpoints of one proto service as type-erased async functions over
//! encoded messages. Generated code builds one per proto service; hand-written handlers
//! use the same builder.
//!
//! ```text
//! generated helloworld_handler(impl Helloworld) ──> Handler {
//!     "Helloworld.Call"   -> |ctx, bytes| decode CallRequest, call, encode CallResponse
//!     "Helloworld.Stream" -> |ctx, bytes| decode, call, encode every StreamResponse
//! }
//! ```

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use micro_core::service::Replies;

use crate::context::Context;
use crate::error::{self, Error};

/// The replies of a server-streaming endpoint: an `Err` item ends the stream.
pub type ReplyStream<T> = Pin<Box<dyn Stream<Item = Result<T, Error>> + Send>>;

/// What a type-erased endpoint produced.
pub(crate) enum Output {
    /// The encoded reply of a unary endpoint.
    Unary(Vec<u8>),
    /// The encoded replies of a server-streaming endpoint, already guarded against panics.
    Stream(Replies),
}

/// A type-erased endpoint: decodes the request, runs the implementation, encodes.
pub(crate) type Invoke =
    Arc<dyn Fn(Context, Vec<u8>) -> BoxFuture<'static, Result<Output, Error>> + Send + Sync>;

/// The contract of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// `Handler.Method` (`Helloworld.Call`).
    pub name: String,
    /// Full name of the request message (`helloworld.CallRequest`).
    pub request: String,
    /// Full name of the response message (`helloworld.CallResponse`).
    pub response: String,
    /// Whether the endpoint streams its replies.
    pub stream: bool,
}

/// The endpoints of one proto service, ready to be served by [`crate::Service::handle`].
///
/// Generated code builds it (`helloworld_handler(MyImpl)`); by hand it looks like this:
///
/// ```
/// # #[derive(Clone, PartialEq, prost::Message)] struct Ping { #[prost(string, tag = "1")] msg: String }
/// let handler = micro::Handler::new("echo.Echo", &[])
///     .unary("Echo.Ping", "echo.Ping", "echo.Ping", |_ctx, req: Ping| async move {
///         Ok::<_, micro::Error>(req)
///     });
/// assert_eq!(handler.endpoints().next().unwrap().name, "Echo.Ping");
/// ```
pub struct Handler {
    proto_service: String,
    descriptor: &'static [u8],
    endpoints: Vec<(EndpointInfo, Invoke)>,
}

impl Handler {
    /// An empty handler for the fully qualified proto service `proto_service`
    /// (`helloworld.Helloworld`), described by the encoded `FileDescriptorSet`
    /// `descriptor`.
    pub fn new(proto_service: &str, descriptor: &'static [u8]) -> Self {
        Self {
            proto_service: proto_service.to_owned(),
            descriptor,
            endpoints: Vec::new(),
        }
    }

    /// Adds a unary endpoint `name` (`Handler.Method`) taking the message `request` and
    /// answering `response` (full proto names), served by `f`.
    pub fn unary<Req, Resp, F, Fut>(self, name: &str, request: &str, response: &str, f: F) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: Fn(Context, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
    {
        let invoke: Invoke = Arc::new(move |ctx, body| match decode::<Req>(&ctx, &body) {
            Ok(req) => f(ctx, req)
                .map(|reply| reply.map(|resp| Output::Unary(resp.encode_to_vec())))
                .boxed(),
            Err(err) => futures::future::ready(Err(err)).boxed(),
        });
        self.with(info(name, request, response, false), invoke)
    }

    /// Adds a server-streaming endpoint `name` served by `f`. The stream is driven by the
    /// caller, outside the handler's actor: a panic while producing an item ends the
    /// stream with a 500 item.
    pub fn server_stream<Req, Resp, F, Fut>(
        self,
        name: &str,
        request: &str,
        response: &str,
        f: F,
    ) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: Fn(Context, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ReplyStream<Resp>, Error>> + Send + 'static,
    {
        let invoke: Invoke = Arc::new(move |ctx, body| match decode::<Req>(&ctx, &body) {
            Ok(req) => {
                let id = ctx.service().to_owned();
                let endpoint = ctx.endpoint().to_owned();
                f(ctx, req)
                    .map(move |reply| {
                        let encoded = reply?.map(|item| item.map(|m| m.encode_to_vec()));
                        Ok(Output::Stream(guard_stream(
                            Box::pin(encoded),
                            id,
                            endpoint,
                        )))
                    })
                    .boxed()
            }
            Err(err) => futures::future::ready(Err(err)).boxed(),
        });
        self.with(info(name, request, response, true), invoke)
    }

    /// Adds an endpoint that exists in the contract but is not served (client-streaming
    /// and bidirectional methods): calls fail with 501 Not Implemented.
    pub fn not_implemented(self, name: &str, request: &str, response: &str, stream: bool) -> Self {
        let endpoint = name.to_owned();
        let invoke: Invoke = Arc::new(move |ctx, _body| {
            let detail = format!(
                "{endpoint} streams requests from the client, which micro does not serve yet"
            );
            futures::future::ready(Err(error::not_implemented(ctx.service(), detail))).boxed()
        });
        self.with(info(name, request, response, stream), invoke)
    }

    /// The fully qualified proto service (`helloworld.Helloworld`).
    pub fn proto_service(&self) -> &str {
        &self.proto_service
    }

    /// The encoded `FileDescriptorSet` describing the service's messages.
    pub fn descriptor(&self) -> &'static [u8] {
        self.descriptor
    }

    /// The endpoints, in the order they were added.
    pub fn endpoints(&self) -> impl Iterator<Item = &EndpointInfo> {
        self.endpoints.iter().map(|(info, _)| info)
    }

    /// The endpoints with their implementations.
    pub(crate) fn into_endpoints(self) -> Vec<(EndpointInfo, Invoke)> {
        self.endpoints
    }

    fn with(mut self, info: EndpointInfo, invoke: Invoke) -> Self {
        self.endpoints.retain(|(known, _)| known.name != info.name);
        self.endpoints.push((info, invoke));
        self
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("proto_service", &self.proto_service)
            .field("endpoints", &self.endpoints().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The text of a caught panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

fn info(name: &str, request: &str, response: &str, stream: bool) -> EndpointInfo {
    EndpointInfo {
        name: name.to_owned(),
        request: request.trim_start_matches('.').to_owned(),
        response: response.trim_start_matches('.').to_owned(),
        stream,
    }
}

fn decode<Req: prost::Message + Default>(ctx: &Context, body: &[u8]) -> Result<Req, Error> {
    Req::decode(body).map_err(|e| {
        error::bad_request(
            ctx.service(),
            format!(
                "{}: the request is not a valid protobuf message: {e}",
                ctx.endpoint()
            ),
        )
    })
}

/// Ends `stream` with a 500 item if producing an item panics.
fn guard_stream(stream: Replies, id: String, endpoint: String) -> Replies {
    let guarded = AssertUnwindSafe(stream)
        .catch_unwind()
        .map(move |item| match item {
            Ok(reply) => reply,
            Err(payload) => {
                let why = panic_message(payload.as_ref());
                tracing::error!(%endpoint, %why, "a streaming handler panicked; stream ended");
                Err(error::internal(
                    &id,
                    format!("{endpoint} failed: the handler panicked"),
                ))
            }
        });
    Box::pin(guarded)
}
