//! [`EventsClient`]: durable event streams (`events.Stream`, `events.Store`) in the
//! client's namespace: publish, read, consume with acks, and subscriber handlers that run
//! as supervised actors.
//!
//! ```text
//! publish(topic, payload) ──/events.Stream/Publish──> stored on a majority, then Ok
//! consume(topic, options) ──/events.Stream/Consume──> Event, Event, ...  (ack()/nack())
//! subscribe(topic, options, handler):
//!   pump task ──each event──> SubscriberActor (runs the handler) ──Ok──> ack
//!                                                                ──Err──> nack (redelivered)
//!             <──the actor panicked── nack, start a new actor (at most RESTARTS_MAX in a row)
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use micro_proto::events as pb;
use micro_proto::events::store_client::StoreClient as StoreGrpc;
use micro_proto::events::stream_client::StreamClient as StreamGrpc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::error::{self, Error};

/// How long a subscriber's event may stay unacked before it is redelivered, unless the
/// options say otherwise.
pub const SUBSCRIBE_ACK_WAIT: Duration = Duration::from_secs(30);
/// Handler panics in a row after which a subscription gives up.
const RESTARTS_MAX: u32 = 5;

/// One event of a topic.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its unique id.
    pub id: String,
    /// Its topic.
    pub topic: String,
    /// Its headers.
    pub metadata: BTreeMap<String, String>,
    /// Its payload.
    pub payload: Vec<u8>,
    /// When it was published (Unix seconds).
    pub timestamp: i64,
    acks: Option<mpsc::Sender<pb::AckRequest>>,
}

impl Event {
    fn from_wire(event: pb::Event, acks: Option<mpsc::Sender<pb::AckRequest>>) -> Self {
        Self {
            id: event.id,
            topic: event.topic,
            metadata: event.metadata.into_iter().collect(),
            payload: event.payload,
            timestamp: event.timestamp,
            acks,
        }
    }

    /// The payload decoded from JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.payload).map_err(|e| {
            error::bad_request("events", format!("event {} is not that JSON: {e}", self.id))
        })
    }

    /// Acks the event: it is not delivered to this consumer's group again. A no-op for a
    /// consumer with auto-ack.
    pub async fn ack(&self) -> Result<(), Error> {
        self.settle(true).await
    }

    /// Nacks the event: it is redelivered at once (until the retry limit).
    pub async fn nack(&self) -> Result<(), Error> {
        self.settle(false).await
    }

    async fn settle(&self, success: bool) -> Result<(), Error> {
        let Some(acks) = &self.acks else {
            return Ok(());
        };
        let ack = pb::AckRequest {
            id: self.id.clone(),
            success,
        };
        acks.send(ack)
            .await
            .map_err(|_| error::unavailable("events", "the consume stream has ended"))
    }
}

/// How a consumer follows a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// A consumer group: each event goes to one member. `None`: every event.
    pub group: Option<String>,
    /// Replay events published since this time (Unix seconds) before following live.
    pub offset: Option<i64>,
    /// Ack events by hand: unacked ones come back after this long. `None`: auto-ack.
    pub ack_wait: Option<Duration>,
    /// Redeliveries after the first (negative: no limit).
    pub retry_limit: i64,
    /// The most events to hold unread or unacked (0: the server's window of 256;
    /// [`EventsClient::subscribe`] defaults to 1, one event per handler call).
    pub window: u32,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self {
            group: None,
            offset: None,
            ack_wait: None,
            retry_limit: -1,
            window: 0,
        }
    }
}

/// The events of a consumer, until it is dropped.
pub type Events = Pin<Box<dyn Stream<Item = Result<Event, Error>> + Send>>;

/// A subscriber's handler: `Ok` acks the event, `Err` nacks it (it is redelivered).
pub type EventHandler =
    Arc<dyn Fn(Event) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> + Send + Sync>;

/// A running subscription; it stops when dropped (or with [`Subscription::stop`]).
#[derive(Debug)]
pub struct Subscription {
    task: tokio::task::JoinHandle<Result<(), Error>>,
    actor: ActorSlot,
}

/// The subscriber actor of the moment (the pump replaces it after a panic).
type ActorSlot = Arc<std::sync::Mutex<Option<ActorRef<Handle>>>>;

impl Subscription {
    /// Stops the subscription and its actor.
    pub fn stop(&self) {
        self.task.abort();
        let actor = self
            .actor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(actor) = actor {
            actor.stop(None);
        }
    }

    /// Waits until the subscription ends by itself (the stream ended, or its handler
    /// panicked too often in a row) and says why.
    pub async fn finished(mut self) -> Result<(), Error> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(err) => Err(error::internal(
                "events",
                format!("subscription ended: {err}"),
            )),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The events client; get one with [`Client::events`].
#[derive(Debug, Clone)]
pub struct EventsClient {
    client: Client,
}

fn status(status: &tonic::Status) -> Error {
    micro_proto::micro_from_status("events", status)
}

impl EventsClient {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Publishes `payload` on `topic` with `metadata`; returns once the event is stored
    /// on a majority of the cluster.
    pub async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let request = pb::PublishRequest {
            topic: topic.to_owned(),
            metadata: metadata.into_iter().collect(),
            payload,
            timestamp: 0,
        };
        StreamGrpc::new(self.client.channel())
            .publish(self.client.request(request))
            .await
            .map_err(|s| status(&s))?;
        Ok(())
    }

    /// Publishes `value` as JSON (as Micro v3's `Publish` does with a non-bytes message).
    pub async fn publish_json<T: serde::Serialize>(
        &self,
        topic: &str,
        value: &T,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let payload = serde_json::to_vec(value)
            .map_err(|e| error::bad_request("events", format!("not JSON: {e}")))?;
        self.publish(topic, payload, metadata).await
    }

    /// Up to `limit` kept events of `topic`, oldest first, after skipping `skip` (0 for
    /// the server's default of 250).
    pub async fn read(&self, topic: &str, limit: u64, skip: u64) -> Result<Vec<Event>, Error> {
        let request = pb::ReadRequest {
            topic: topic.to_owned(),
            limit,
            offset: skip,
        };
        let events = StoreGrpc::new(self.client.channel())
            .read(self.client.request(request))
            .await
            .map_err(|s| status(&s))?
            .into_inner()
            .events;
        Ok(events
            .into_iter()
            .map(|e| Event::from_wire(e, None))
            .collect())
    }

    /// Follows `topic`. With `ack_wait`, each event must be acked ([`Event::ack`]) or it
    /// comes back. Dropping the stream ends the consumer.
    pub async fn consume(&self, topic: &str, options: ConsumeOptions) -> Result<Events, Error> {
        let manual = options.ack_wait.is_some();
        let request = pb::ConsumeRequest {
            group: options.group.unwrap_or_default(),
            topic: topic.to_owned(),
            offset: options.offset.unwrap_or(0),
            auto_ack: !manual,
            ack_wait: options
                .ack_wait
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            retry_limit: options.retry_limit,
        };
        let (acks, ack_rx) = mpsc::channel(256);
        // A consumer has no deadline: not the client's call timeout.
        let mut request = self.client.request(request);
        request.metadata_mut().remove("grpc-timeout");
        if options.window > 0 {
            request.metadata_mut().insert(
                micro_proto::consume::WINDOW_HEADER,
                tonic::metadata::MetadataValue::from(options.window),
            );
        }
        let stream = micro_proto::consume::consume(
            self.client.channel(),
            request,
            tokio_stream::wrappers::ReceiverStream::new(ack_rx),
        )
        .await
        .map_err(|s| status(&s))?;
        let acks = manual.then_some(acks);
        Ok(Box::pin(stream.map(move |event| {
            event
                .map(|e| Event::from_wire(e, acks.clone()))
                .map_err(|s| status(&s))
        })))
    }

    /// Runs `handler` on each event of `topic`, in a supervised actor: `Ok` acks the
    /// event, `Err` nacks it, a panic nacks it and starts a fresh actor, and so does a
    /// handler still running after `ack_wait` (the event is redelivered by then anyway).
    /// Events are always acked by hand here (`ack_wait` defaults to
    /// [`SUBSCRIBE_ACK_WAIT`]) and taken one at a time unless `window` says otherwise,
    /// so an event whose handler never finished is redelivered, and none waits out its
    /// `ack_wait` in a queue.
    pub async fn subscribe<F, Fut>(
        &self,
        topic: &str,
        mut options: ConsumeOptions,
        handler: F,
    ) -> Result<Subscription, Error>
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let ack_wait = options.ack_wait.unwrap_or(SUBSCRIBE_ACK_WAIT);
        options.ack_wait = Some(ack_wait);
        options.window = options.window.max(1);
        let events = self.consume(topic, options).await?;
        let handler: EventHandler = Arc::new(move |event| Box::pin(handler(event)));
        let actor = ActorSlot::default();
        Ok(Subscription {
            task: tokio::spawn(pump(events, handler, actor.clone(), ack_wait)),
            actor,
        })
    }
}

/// Feeds events to a subscriber actor, settling each by its outcome and replacing the
/// actor when its handler panics or overruns `ack_wait`.
async fn pump(
    mut events: Events,
    handler: EventHandler,
    slot: ActorSlot,
    ack_wait: Duration,
) -> Result<(), Error> {
    let mut actor = start_actor(&handler, &slot).await?;
    let mut failures = 0;
    while let Some(event) = events.next().await {
        let event = event?;
        let outcome = actor
            .call(|reply| Handle(event.clone(), reply), Some(ack_wait))
            .await;
        match outcome {
            Ok(ractor::rpc::CallResult::Success(Ok(()))) => {
                failures = 0;
                event.ack().await?;
            }
            Ok(ractor::rpc::CallResult::Success(Err(err))) => {
                failures = 0;
                tracing::debug!(%err, id = event.id, "a subscriber's handler failed; nacked");
                event.nack().await?;
            }
            _ => {
                failures += 1;
                tracing::warn!(
                    id = event.id,
                    failures,
                    "a subscriber's handler panicked or overran ack_wait; nacked"
                );
                event.nack().await?;
                actor.stop(None);
                if failures >= RESTARTS_MAX {
                    return Err(error::internal(
                        "events",
                        format!("the subscriber's handler failed {failures} times in a row"),
                    ));
                }
                actor = start_actor(&handler, &slot).await?;
            }
        }
    }
    actor.stop(None);
    Ok(())
}

async fn start_actor(handler: &EventHandler, slot: &ActorSlot) -> Result<ActorRef<Handle>, Error> {
    let (actor, _join) = Actor::spawn(None, SubscriberActor, handler.clone())
        .await
        .map_err(|e| error::internal("events", format!("cannot start a subscriber: {e}")))?;
    *slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(actor.clone());
    Ok(actor)
}

/// Runs a subscriber's handler on one event at a time; a panic fails the actor.
struct SubscriberActor;

/// One event to handle, and where the outcome goes.
struct Handle(Event, RpcReplyPort<Result<(), Error>>);

impl Actor for SubscriberActor {
    type Msg = Handle;
    type State = EventHandler;
    type Arguments = EventHandler;

    async fn pre_start(
        &self,
        _myself: ActorRef<Handle>,
        handler: EventHandler,
    ) -> Result<EventHandler, ActorProcessingErr> {
        Ok(handler)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Handle>,
        Handle(event, reply): Handle,
        handler: &mut EventHandler,
    ) -> Result<(), ActorProcessingErr> {
        let result = handler(event).await;
        let _ = reply.send(result);
        Ok(())
    }
}
