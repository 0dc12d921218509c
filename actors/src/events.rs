//! Events for a node: publish through Raft, read the local log after a read barrier, and
//! consumers that follow a topic as the node applies it.
//!
//! ```text
//! publish ─validate, give an id─> EventsAppend ─Raft─> every node's log
//! consume ─spawn a consumer task─┬─ no group: tail the local log (leases kept in the task)
//!                                └─ group:    EventsClaim / EventsAck through Raft
//!   the task wakes when this node applies an entry, when a lease falls due, or on an ack,
//!   and hands out at most a window of events (backpressure: a slow client claims less)
//! ```
//!
//! A grouped consumer that goes away nacks what it still holds, so another member gets
//! those events at once instead of after `ack_wait`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use micro_core::Clock;
use micro_core::events::{
    CLAIM_MAX, ClaimOptions, Delivery, Event, EventsError, Group, READ_DEFAULT, READ_MAX,
    StoredEvent, validate_event, validate_name,
};
use micro_core::replicator::Replicator;
use micro_core::rng::Rng;
use micro_core::state::{Command, Response};
use micro_core::{HasCode, Namespace};
use tokio::sync::mpsc;

/// Events a consumer's client may hold unread (and, without auto-ack, unacked).
pub const WINDOW: usize = 256;
/// How long a consumer waits before asking its group again after a claim found nothing
/// due (the leader's clock may trail this node's).
const RECLAIM_PAUSE: Duration = Duration::from_millis(50);
/// How long a group member waits for its node to apply the events it was given.
const LOAD_WAIT: Duration = Duration::from_secs(5);
/// The most payload bytes one read returns (at least one event): under the proxy's
/// 4 MiB message limit.
pub const READ_BYTES_MAX: usize = 3 * 1024 * 1024;

/// The events engine of a node; cheap to clone.
#[derive(Clone)]
pub struct EventsHandle {
    replicator: Arc<dyn Replicator>,
    clock: Arc<dyn Clock>,
    /// Event and member ids come from it: seeded, a simulated node's run replays.
    rng: Arc<dyn Rng>,
    retention_ms: u64,
}

impl std::fmt::Debug for EventsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsHandle")
            .field("retention_ms", &self.retention_ms)
            .finish_non_exhaustive()
    }
}

/// How a consumer follows a topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumeOptions {
    /// Its consumer group: each event goes to one member. `None` for every event.
    pub group: Option<String>,
    /// Replay from this time (Unix ms) before following live; a group's first member
    /// sets where the group starts.
    pub offset_ms: Option<u64>,
    /// How long an event may stay unacked before it is redelivered; `None` acks each
    /// event as it is handed out.
    pub ack_wait: Option<Duration>,
    /// Redeliveries after the first delivery; negative for no limit.
    pub retry_limit: i64,
    /// The most events the client may hold unread or unacked (at most [`WINDOW`]; 0
    /// for [`WINDOW`]). A handler that takes a while asks for few, so events do not wait
    /// out their `ack_wait` in its queue.
    pub window: usize,
}

/// A running consumer: events come out of `events`, acks go into `acks`.
#[derive(Debug)]
pub struct Consumer {
    /// The events, in topic order (redeliveries interleave).
    pub events: mpsc::Receiver<Delivery>,
    /// `(event id, success)`: an ack or a nack.
    pub acks: mpsc::Sender<(String, bool)>,
}

fn unavailable(err: &dyn std::fmt::Display) -> EventsError {
    EventsError::Unavailable(err.to_string())
}

/// A random RFC 4122 version 4 UUID, as event ids are in Micro v3.
fn new_id(rng: &dyn Rng) -> String {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
    b[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl EventsHandle {
    /// Events over `replicator`'s state, kept `retention` after they are published,
    /// with ids drawn from `rng`.
    pub fn new(
        replicator: Arc<dyn Replicator>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
        retention: Duration,
    ) -> Self {
        Self {
            replicator,
            clock,
            rng,
            retention_ms: u64::try_from(retention.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Publishes one event on `topic` of `namespace` once a majority stored it; returns
    /// it with its id and timestamp.
    pub async fn publish(
        &self,
        namespace: &Namespace,
        mut event: Event,
    ) -> Result<Event, EventsError> {
        validate_event(&event)?;
        event.id = new_id(self.rng.as_ref());
        let command = Command::EventsAppend {
            namespace: namespace.clone(),
            topic: event.topic.clone(),
            events: vec![event.clone()],
            retention_ms: self.retention_ms,
        };
        match self.replicator.propose(command).await {
            Ok(Response::Appended { .. }) => Ok(event),
            Ok(other) => Err(unavailable(&format!("unexpected reply {other:?}"))),
            Err(err) => Err(unavailable(&err)),
        }
    }

    /// Up to `limit` events of `topic` (all kept ones from the oldest, skipping
    /// `offset`), linearizably; fewer when their payloads pass [`READ_BYTES_MAX`] (the
    /// caller reads on with a larger `offset`).
    pub async fn read(
        &self,
        namespace: &Namespace,
        topic: &str,
        limit: usize,
        offset: u64,
    ) -> Result<Vec<StoredEvent>, EventsError> {
        validate_name("topic", topic)?;
        let limit = if limit == 0 {
            READ_DEFAULT
        } else {
            limit.min(READ_MAX)
        };
        self.replicator
            .read_barrier()
            .await
            .map_err(|e| unavailable(&e))?;
        let reader = self.replicator.reader();
        let head = reader
            .events_head(namespace, topic)
            .map_err(|e| unavailable(&e.0))?;
        let mut events = reader
            .events_range(
                namespace,
                topic,
                head.first_seq.saturating_add(offset),
                limit,
            )
            .map_err(|e| unavailable(&e.0))?;
        let mut bytes = 0;
        let fits = events
            .iter()
            .take_while(|e| {
                bytes += e.event.payload.len();
                bytes <= READ_BYTES_MAX
            })
            .count();
        events.truncate(fits.max(1));
        Ok(events)
    }

    /// Starts following `topic`; the consumer stops when `events` is dropped.
    pub async fn consume(
        &self,
        namespace: &Namespace,
        topic: &str,
        options: ConsumeOptions,
    ) -> Result<Consumer, EventsError> {
        validate_name("topic", topic)?;
        if let Some(group) = &options.group {
            validate_name("group", group)?;
        }
        // Linearizable start: a replay sees every event acknowledged before it.
        self.replicator
            .read_barrier()
            .await
            .map_err(|e| unavailable(&e))?;
        let claim = ClaimOptions {
            max: 0,
            ack_wait_ms: options.ack_wait.map_or(0, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
            }),
            retry_limit: options.retry_limit,
        };
        let member = new_id(self.rng.as_ref());
        let mode = match options.group {
            Some(group) => {
                // A group that does not exist yet starts here and now, not whenever the
                // task first runs: an event published after `consume` returns is its.
                let command = Command::EventsClaim {
                    namespace: namespace.clone(),
                    topic: topic.to_owned(),
                    group: group.clone(),
                    member: member.clone(),
                    options: claim,
                    start_ms: options.offset_ms,
                };
                self.replicator
                    .propose(command)
                    .await
                    .map_err(|e| unavailable(&e))?;
                Mode::Group {
                    name: group,
                    start_ms: options.offset_ms,
                }
            }
            None => {
                let reader = self.replicator.reader();
                let start = match options.offset_ms {
                    Some(at) => reader.events_seq_at(namespace, topic, at),
                    None => reader.events_head(namespace, topic).map(|h| h.next_seq),
                };
                Mode::Local(Group::starting_at(start.map_err(|e| unavailable(&e.0))?))
            }
        };
        let window = match options.window {
            0 => WINDOW,
            n => n.min(WINDOW),
        };
        let (events_tx, events) = mpsc::channel(window);
        let (acks, acks_rx) = mpsc::channel(WINDOW);
        let task = ConsumerTask {
            handle: self.clone(),
            namespace: namespace.clone(),
            topic: topic.to_owned(),
            member,
            claim,
            mode,
            window,
            quiet_until: 0,
            held: BTreeMap::new(),
            out: events_tx,
            acks: acks_rx,
        };
        tokio::spawn(task.run());
        Ok(Consumer { events, acks })
    }
}

enum Mode {
    /// A consumer of its own: its leases live in the task.
    Local(Group),
    /// A member of a replicated group.
    Group { name: String, start_ms: Option<u64> },
}

/// An event handed to the client and not acked yet.
#[derive(Debug, Clone, Copy)]
struct Held {
    seq: u64,
    /// When to stop waiting for its ack (wall ms): by then it was redelivered (or
    /// dropped past its retry limit), as Micro v3 forgets pending acks after 2 x
    /// `ack_wait`.
    forget_at: u64,
}

struct ConsumerTask {
    handle: EventsHandle,
    namespace: Namespace,
    topic: String,
    /// This consumer's id among its group's members.
    member: String,
    claim: ClaimOptions,
    mode: Mode,
    /// The most events the client may hold unread or unacked.
    window: usize,
    /// No claim before this time (ms): the last one found nothing (others took it).
    quiet_until: u64,
    /// Events handed to the client and not acked, by id (only without auto-ack).
    held: BTreeMap<String, Held>,
    out: mpsc::Sender<Delivery>,
    acks: mpsc::Receiver<(String, bool)>,
}

/// What woke a waiting consumer.
enum Wake {
    Applied(u64),
    Ack(Option<(String, bool)>),
    Due,
    Room,
    Closed,
}

impl ConsumerTask {
    async fn run(mut self) {
        let replicator = self.handle.replicator.clone();
        let mut applied = replicator.status().applied_index;
        let mut acks_open = true;
        loop {
            let next_due = match self.fill().await {
                Ok(Some(due)) => due,
                Ok(None) => break,
                Err(err) => {
                    tracing::debug!(%err, code = ?err.code(), "an events claim failed; retrying");
                    Some(self.handle.clock.now_ms() + 200)
                }
            };
            let wait = next_due.map_or(Duration::from_secs(3600), |at| {
                Duration::from_millis(at.saturating_sub(self.handle.clock.now_ms()))
            });
            let full = self.out.capacity() == 0;
            let wake = tokio::select! {
                at = replicator.applied_past(applied) => Wake::Applied(at),
                ack = self.acks.recv(), if acks_open => Wake::Ack(ack),
                () = tokio::time::sleep(wait) => Wake::Due,
                // The client read: room for more without waiting for the next entry.
                permit = self.out.reserve(), if full => match permit {
                    Ok(_) => Wake::Room,
                    Err(_) => Wake::Closed,
                },
                () = self.out.closed() => Wake::Closed,
            };
            match wake {
                Wake::Applied(at) => applied = at,
                Wake::Ack(Some(first)) => self.settle(first).await,
                // The client stopped acking (a server-streaming client half-closes):
                // keep delivering; unacked events come back after ack_wait.
                Wake::Ack(None) => acks_open = false,
                Wake::Due | Wake::Room => {}
                Wake::Closed => break,
            }
        }
        self.release().await;
    }

    /// Hands out what is available within the window. `Ok(None)`: the client is gone;
    /// `Ok(Some(due))`: when to look again at the latest, if a lease is pending.
    async fn fill(&mut self) -> Result<Option<Option<u64>>, EventsError> {
        let now = self.handle.clock.now_ms();
        self.held.retain(|_, held| held.forget_at > now);
        let room = if self.claim.auto_ack() {
            self.out.capacity()
        } else {
            self.window
                .saturating_sub(self.held.len())
                .min(self.out.capacity())
        };
        let forget = self.held.values().map(|h| h.forget_at).min();
        if room == 0 {
            return Ok(Some(forget));
        }
        let options = ClaimOptions {
            max: u32::try_from(room.min(CLAIM_MAX)).unwrap_or(0),
            ..self.claim
        };
        let (deliveries, due) = match &self.mode {
            Mode::Local(_) => self.claim_local(options)?,
            Mode::Group { name, start_ms } => {
                let (name, start_ms) = (name.clone(), *start_ms);
                if now < self.quiet_until {
                    return Ok(Some(Some(self.quiet_until)));
                }
                if !self.group_has_work(&name) {
                    return Ok(Some(min_some(self.group_deadline(&name), forget)));
                }
                let (claimed, due) = self.claim_group(name, start_ms, options).await?;
                if claimed.is_empty() {
                    self.quiet_until = self.pause_end();
                }
                (self.load(claimed).await?, due)
            }
        };
        let forget_at = now.saturating_add(self.claim.ack_wait_ms.saturating_mul(2));
        for delivery in deliveries {
            if !self.claim.auto_ack() {
                let held = Held {
                    seq: delivery.stored.seq,
                    forget_at,
                };
                self.held.insert(delivery.stored.event.id.clone(), held);
            }
            if self.out.send(delivery).await.is_err() {
                return Ok(None);
            }
        }
        Ok(Some(min_some(due, forget)))
    }

    /// Hands out from the local log with the task's own leases.
    fn claim_local(
        &mut self,
        options: ClaimOptions,
    ) -> Result<(Vec<Delivery>, Option<u64>), EventsError> {
        let Mode::Local(group) = &mut self.mode else {
            return Ok((Vec::new(), None));
        };
        let reader = self.handle.replicator.reader();
        let head = reader
            .events_head(&self.namespace, &self.topic)
            .map_err(|e| unavailable(&e.0))?;
        let now = self.handle.clock.now_ms();
        let mut out = Vec::new();
        for (seq, attempt) in group.claim("", head, now, options) {
            let found = reader
                .events_range(&self.namespace, &self.topic, seq, 1)
                .map_err(|e| unavailable(&e.0))?;
            match found.into_iter().next().filter(|s| s.seq == seq) {
                Some(stored) => out.push(Delivery { stored, attempt }),
                None => group.settle(seq, true, ""),
            }
        }
        Ok((out, group.next_deadline_ms()))
    }

    /// Claims through Raft for a member of group `name`: `(seq, attempt)` pairs.
    async fn claim_group(
        &self,
        name: String,
        start_ms: Option<u64>,
        options: ClaimOptions,
    ) -> Result<(Vec<(u64, u32)>, Option<u64>), EventsError> {
        let command = Command::EventsClaim {
            namespace: self.namespace.clone(),
            topic: self.topic.clone(),
            group: name,
            member: self.member.clone(),
            options,
            start_ms,
        };
        match self.handle.replicator.propose(command).await {
            Ok(Response::Claimed {
                claimed,
                next_deadline_ms,
            }) => Ok((claimed, next_deadline_ms.map(|at| at.max(self.pause_end())))),
            Ok(other) => Err(unavailable(&format!("unexpected reply {other:?}"))),
            Err(err) => Err(unavailable(&err)),
        }
    }

    /// Reads claimed events from this node's log, waiting (a bounded time) for the node
    /// to apply them: the claim may have been applied on the leader first. An event that
    /// expired meanwhile is skipped (the group forgets its lease).
    async fn load(&self, claimed: Vec<(u64, u32)>) -> Result<Vec<Delivery>, EventsError> {
        let Some(last) = claimed.iter().map(|(seq, _)| *seq).max() else {
            return Ok(Vec::new());
        };
        let replicator = &self.handle.replicator;
        let deadline = tokio::time::Instant::now() + LOAD_WAIT;
        loop {
            let applied = replicator.status().applied_index;
            let head = replicator
                .reader()
                .events_head(&self.namespace, &self.topic)
                .map_err(|e| unavailable(&e.0))?;
            if head.next_seq > last {
                break;
            }
            let wait = tokio::time::timeout_at(deadline, replicator.applied_past(applied));
            if wait.await.is_err() {
                return Err(unavailable(
                    &"this node fell behind the events it was given",
                ));
            }
        }
        let reader = replicator.reader();
        let mut out = Vec::with_capacity(claimed.len());
        for (seq, attempt) in claimed {
            let found = reader
                .events_range(&self.namespace, &self.topic, seq, 1)
                .map_err(|e| unavailable(&e.0))?;
            if let Some(stored) = found.into_iter().next().filter(|s| s.seq == seq) {
                out.push(Delivery { stored, attempt });
            }
        }
        Ok(out)
    }

    fn pause_end(&self) -> u64 {
        self.handle.clock.now_ms() + u64::try_from(RECLAIM_PAUSE.as_millis()).unwrap_or(0)
    }

    /// Whether the group's replicated state (as applied here) has something for a claim,
    /// judged by this node's log time (what the leader stamps claims with, give or take
    /// replication). A group that never claimed has: its first claim creates it.
    fn group_has_work(&self, name: &str) -> bool {
        let reader = self.handle.replicator.reader();
        let group = reader.events_group(&self.namespace, &self.topic, name);
        let head = reader.events_head(&self.namespace, &self.topic);
        let now = reader.log_time_ms();
        match (group, head, now) {
            (Ok(Some(group)), Ok(head), Ok(now)) => group.has_work(&self.member, head, now),
            _ => true,
        }
    }

    fn group_deadline(&self, name: &str) -> Option<u64> {
        let reader = self.handle.replicator.reader();
        let group = reader
            .events_group(&self.namespace, &self.topic, name)
            .ok()??;
        group.next_deadline_ms().map(|at| at.max(self.pause_end()))
    }

    /// Settles `first` and every other ack already queued, in one proposal for a group.
    async fn settle(&mut self, first: (String, bool)) {
        let mut acks = BTreeMap::new();
        let mut next = Some(first);
        while let Some((id, success)) = next {
            if let Some(held) = self.held.remove(&id) {
                acks.insert(held.seq, success);
            }
            next = self.acks.try_recv().ok();
        }
        if acks.is_empty() {
            return;
        }
        match &mut self.mode {
            Mode::Local(group) => {
                for (seq, success) in acks {
                    group.settle(seq, success, "");
                }
            }
            Mode::Group { name, .. } => {
                let command = Command::EventsAck {
                    namespace: self.namespace.clone(),
                    topic: self.topic.clone(),
                    group: name.clone(),
                    member: self.member.clone(),
                    acks: acks.into_iter().collect(),
                };
                if let Err(err) = self.handle.replicator.propose(command).await {
                    // Unacked leases fall due after ack_wait: at-least-once still holds.
                    tracing::debug!(%err, "an events ack was not stored");
                }
            }
        }
    }

    /// Leaves the group: what this member held falls due at once for the others, who
    /// no longer leave it a share.
    async fn release(self) {
        let Mode::Group { name, .. } = self.mode else {
            return;
        };
        let command = Command::EventsLeave {
            namespace: self.namespace,
            topic: self.topic,
            group: name,
            member: self.member,
        };
        if let Err(err) = self.handle.replicator.propose(command).await {
            tracing::debug!(%err, "a departing consumer's events were not released");
        }
    }
}

/// The earlier of two optional times.
fn min_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use micro_core::replicator::MemReplicator;

    use super::*;

    fn engine() -> EventsHandle {
        let clock: Arc<dyn Clock> = Arc::new(micro_core::SystemClock);
        let replicator = Arc::new(MemReplicator::new(clock.clone()));
        let rng = Arc::new(micro_core::rng::SeededRng::new(7));
        EventsHandle::new(replicator, clock, rng, Duration::from_secs(60))
    }

    fn event(topic: &str, body: &str) -> Event {
        Event {
            topic: topic.into(),
            payload: body.as_bytes().to_vec(),
            ..Event::default()
        }
    }

    async fn next(consumer: &mut Consumer) -> Delivery {
        tokio::time::timeout(Duration::from_secs(5), consumer.events.recv())
            .await
            .expect("no event within 5 s")
            .unwrap()
    }

    #[tokio::test]
    async fn a_consumer_gets_events_published_after_it_started_and_replays_with_an_offset() {
        let events = engine();
        let ns = Namespace::default();
        events.publish(&ns, event("t", "old")).await.unwrap();
        let mut live = events
            .consume(&ns, "t", ConsumeOptions::default())
            .await
            .unwrap();
        let replay = ConsumeOptions {
            offset_ms: Some(0),
            ..ConsumeOptions::default()
        };
        let mut replaying = events.consume(&ns, "t", replay).await.unwrap();
        let published = events.publish(&ns, event("t", "new")).await.unwrap();
        assert_eq!(next(&mut live).await.stored.event.id, published.id);
        assert_eq!(next(&mut replaying).await.stored.event.payload, b"old");
        assert_eq!(next(&mut replaying).await.stored.event.payload, b"new");
        assert_eq!(published.id.len(), 36);
    }

    #[tokio::test]
    async fn a_nacked_event_comes_back_and_an_acked_one_does_not() {
        let events = engine();
        let ns = Namespace::default();
        let options = ConsumeOptions {
            group: Some("g".into()),
            ack_wait: Some(Duration::from_secs(30)),
            retry_limit: -1,
            ..ConsumeOptions::default()
        };
        let mut consumer = events.consume(&ns, "t", options).await.unwrap();
        events.publish(&ns, event("t", "a")).await.unwrap();
        events.publish(&ns, event("t", "b")).await.unwrap();
        let a = next(&mut consumer).await;
        let b = next(&mut consumer).await;
        consumer.acks.send((a.stored.event.id, true)).await.unwrap();
        consumer
            .acks
            .send((b.stored.event.id.clone(), false))
            .await
            .unwrap();
        let again = next(&mut consumer).await;
        assert_eq!(
            (again.stored.event.id, again.attempt),
            (b.stored.event.id, 2)
        );
    }

    #[tokio::test]
    async fn a_client_that_never_acks_keeps_getting_events() {
        let events = engine();
        let ns = Namespace::default();
        let options = ConsumeOptions {
            group: Some("g".into()),
            ack_wait: Some(Duration::from_millis(50)),
            retry_limit: 0,
            window: 2,
            ..ConsumeOptions::default()
        };
        let mut consumer = events.consume(&ns, "t", options).await.unwrap();
        for i in 0..5 {
            events
                .publish(&ns, event("t", &format!("e{i}")))
                .await
                .unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(next(&mut consumer).await.stored.event.payload);
        }
        let want: Vec<Vec<u8>> = (0..5).map(|i| format!("e{i}").into_bytes()).collect();
        assert_eq!(
            got, want,
            "a full window of unacked events must not stall the consumer"
        );
    }

    #[tokio::test]
    async fn bad_topics_and_payloads_are_refused() {
        let events = engine();
        let ns = Namespace::default();
        let err = events.publish(&ns, event("", "x")).await.unwrap_err();
        assert_eq!(err.code(), micro_core::Code::BadRequest);
        let err = events
            .consume(&ns, "", ConsumeOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), micro_core::Code::BadRequest);
    }
}
