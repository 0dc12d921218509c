//! `events.Stream` (Publish, Consume) and `events.Store` (Read, Write) over the node's
//! [`EventsHandle`]. Topics live in the caller's namespace (v3 kept events in `micro`
//! only); every method needs an admin or service account of the namespace, as v3's
//! `AuthorizeAdmin`.
//!
//! ```text
//! Publish ─> EventsHandle::publish ─Raft─> the topic's log
//! Consume: first message ConsumeRequest ─> EventsHandle::consume ─> Event, Event, ...
//!          later messages AckRequest    ─> the consumer's acks (ignored with auto-ack)
//! ```
//!
//! `events.Stream` is served by hand: Consume is declared server streaming, but v3
//! clients send acks on the same stream, and tonic's server-streaming handler reads the
//! whole request stream before it answers. A client that half-closes after its
//! `ConsumeRequest` (any generated client) still gets its events.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use micro_actors::EventsHandle;
use micro_actors::events::ConsumeOptions;
use micro_core::Namespace;
use micro_core::events::{Delivery, Event, EventsError, StoredEvent};
use micro_proto::consume::ServerCodec;
use micro_proto::events as pb;
use micro_proto::events::store_server::Store;
use prost::Message as _;
use tonic::body::Body;
use tonic::codec::Streaming;
use tonic::codegen::{Body as HttpBody, BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService, UnaryService};
use tonic::{Request, Response, Status};

use crate::proxy::guard::require_admin;
use crate::proxy::namespace_of;
use crate::proxy::server::MESSAGE_LEN_MAX;

fn fail(err: &EventsError) -> Status {
    micro_proto::status_from_error("events", err)
}

/// The caller's namespace, after the admin check.
fn admin_namespace<T>(request: &Request<T>) -> Result<Namespace, Status> {
    let namespace = namespace_of(request)?;
    require_admin(request, &namespace, "events")?;
    Ok(namespace)
}

/// An event as v3 sends it.
pub fn event_to_wire(stored: StoredEvent) -> pb::Event {
    let event = stored.event;
    pb::Event {
        id: event.id,
        topic: event.topic,
        metadata: event.metadata.into_iter().collect(),
        payload: event.payload,
        timestamp: event.timestamp,
    }
}

/// The consume options a `ConsumeRequest` asks for. Without `auto_ack`, a positive
/// `ack_wait` turns acks on; `auto_ack` false with no `ack_wait` (what a client that sets
/// nothing sends) stays auto-acked, since such a client may never ack.
pub fn consume_options(request: &pb::ConsumeRequest) -> Result<ConsumeOptions, EventsError> {
    if request.offset < 0 {
        return Err(EventsError::Invalid(
            "offset is a time in Unix seconds, not negative".to_owned(),
        ));
    }
    let ack_wait = (!request.auto_ack && request.ack_wait > 0)
        .then(|| Duration::from_nanos(request.ack_wait.unsigned_abs()));
    Ok(ConsumeOptions {
        group: Some(request.group.clone()).filter(|g| !g.is_empty()),
        offset_ms: (request.offset > 0).then(|| request.offset.unsigned_abs().saturating_mul(1000)),
        ack_wait,
        retry_limit: request.retry_limit,
        window: 0,
    })
}

pub use micro_proto::consume::WINDOW_HEADER;

/// The `events.Stream` service, served by hand (see the module documentation).
#[derive(Debug, Clone)]
pub struct EventsStreamService {
    events: EventsHandle,
}

impl EventsStreamService {
    /// A service over `events`.
    pub fn new(events: EventsHandle) -> Self {
        Self { events }
    }
}

impl NamedService for EventsStreamService {
    const NAME: &'static str = "events.Stream";
}

struct Publish(EventsHandle);

impl UnaryService<pb::PublishRequest> for Publish {
    type Response = pb::PublishResponse;
    type Future = BoxFuture<Response<pb::PublishResponse>, Status>;

    fn call(&mut self, request: Request<pb::PublishRequest>) -> Self::Future {
        let events = self.0.clone();
        Box::pin(async move {
            let ns = admin_namespace(&request)?;
            let body = request.into_inner();
            let event = Event {
                id: String::new(),
                topic: body.topic,
                metadata: body.metadata.into_iter().collect(),
                payload: body.payload,
                timestamp: body.timestamp,
            };
            events.publish(&ns, event).await.map_err(|e| fail(&e))?;
            Ok(Response::new(pb::PublishResponse {}))
        })
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

struct Consume(EventsHandle);

impl StreamingService<Vec<u8>> for Consume {
    type Response = pb::Event;
    type ResponseStream = EventStream;
    type Future = BoxFuture<Response<EventStream>, Status>;

    fn call(&mut self, request: Request<Streaming<Vec<u8>>>) -> Self::Future {
        let events = self.0.clone();
        Box::pin(async move {
            let ns = admin_namespace(&request)?;
            let window = request
                .metadata()
                .get(WINDOW_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let mut incoming = request.into_inner();
            let first = incoming.message().await?.ok_or_else(|| {
                Status::invalid_argument("the stream ended before a ConsumeRequest")
            })?;
            let consume = pb::ConsumeRequest::decode(first.as_slice()).map_err(|e| {
                Status::invalid_argument(format!("a malformed ConsumeRequest: {e}"))
            })?;
            let mut options = consume_options(&consume).map_err(|e| fail(&e))?;
            options.window = window;
            let consumer = events
                .consume(&ns, &consume.topic, options)
                .await
                .map_err(|e| fail(&e))?;
            tokio::spawn(forward_acks(incoming, consumer.acks));
            let out = tokio_stream::wrappers::ReceiverStream::new(consumer.events)
                .map(|delivery: Delivery| Ok(event_to_wire(delivery.stored)));
            Ok(Response::new(Box::pin(out) as EventStream))
        })
    }
}

/// Passes the client's acks to its consumer until either side ends.
async fn forward_acks(
    mut incoming: Streaming<Vec<u8>>,
    acks: tokio::sync::mpsc::Sender<(String, bool)>,
) {
    loop {
        let message = tokio::select! {
            message = incoming.message() => message,
            () = acks.closed() => return,
        };
        let Ok(Some(bytes)) = message else { return };
        match pb::AckRequest::decode(bytes.as_slice()) {
            Ok(ack) => {
                if acks.send((ack.id, ack.success)).await.is_err() {
                    return;
                }
            }
            Err(err) => tracing::debug!(%err, "a malformed AckRequest was ignored"),
        }
    }
}

impl<B> Service<http::Request<B>> for EventsStreamService
where
    B: HttpBody + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let events = self.events.clone();
        match request.uri().path() {
            "/events.Stream/Publish" => Box::pin(async move {
                let mut grpc = Grpc::new(tonic_prost::ProstCodec::default())
                    .apply_max_message_size_config(Some(MESSAGE_LEN_MAX), Some(MESSAGE_LEN_MAX));
                Ok(grpc.unary(Publish(events), request).await)
            }),
            "/events.Stream/Consume" => Box::pin(async move {
                let mut grpc = Grpc::new(ServerCodec::<pb::Event>::default())
                    .apply_max_message_size_config(Some(MESSAGE_LEN_MAX), Some(MESSAGE_LEN_MAX));
                Ok(grpc.streaming(Consume(events), request).await)
            }),
            _ => Box::pin(async move {
                Ok(Status::unimplemented("events.Stream has Publish and Consume").into_http())
            }),
        }
    }
}

/// The `events.Store` gRPC service.
#[derive(Debug, Clone)]
pub struct EventsStoreService {
    events: EventsHandle,
}

impl EventsStoreService {
    /// A service over `events`.
    pub fn new(events: EventsHandle) -> Self {
        Self { events }
    }
}

#[tonic::async_trait]
impl Store for EventsStoreService {
    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<pb::ReadResponse>, Status> {
        let ns = admin_namespace(&request)?;
        let body = request.into_inner();
        let limit = usize::try_from(body.limit).unwrap_or(usize::MAX);
        let found = self
            .events
            .read(&ns, &body.topic, limit, body.offset)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(pb::ReadResponse {
            events: found.into_iter().map(event_to_wire).collect(),
        }))
    }

    async fn write(
        &self,
        request: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        admin_namespace(&request)?;
        // As Micro v3: events are written by publishing them.
        Err(Status::unimplemented(
            "events.Store.Write is not implemented: publish with events.Stream.Publish",
        ))
    }
}
