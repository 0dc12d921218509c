//! `micro bench events` and `micro bench broker`: durable publishes and broker
//! publish-to-delivery through the proxy, measured by the store benchmark's runner.
//!
//! ```text
//! events: C tasks ─> N × events.Stream/Publish(bench-<run>-c<C>, payload i)  (acked when
//!         a majority stored it) ─> PhaseStats ─> events.Store/Read, page by page: every
//!         acked payload must be there
//! broker: broker.Broker/Subscribe(bench-<run>-c<C>) open first, then C tasks ─> N ×
//!         { Publish(payload i) ; wait until payload i comes out of the subscription }
//! ```
//!
//! Payload `i` is the key `bench-<run>-c<C>/<i>` repeated to `--size` bytes (the store
//! benchmark's values), so each carries its level and sequence number and no two are
//! alike. Both commands run their publishes as the store benchmark's write phase
//! (`bench::run_phase`); only what one "write" is differs.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use micro_proto::broker as broker_pb;
use micro_proto::broker::broker_client::BrokerClient;
use micro_proto::events as events_pb;
use micro_proto::events::store_client::StoreClient;
use micro_proto::events::stream_client::StreamClient;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::client::Client;
use crate::commands::bench::{
    CONCURRENCY_MAX, Phase, PhaseSpec, PhaseStats, REQUESTS_MAX, STATS_HEADER, Target, run_phase,
    value_for,
};
use crate::commands::output::{Output, print_table};
use crate::exit::{CliError, MICRO_ERROR, OTHER, TIMEOUT};

/// The smallest payload: room for the key that makes each payload unique.
pub const PAYLOAD_SIZE_MIN: usize = 64;
/// How long a published broker message may take to come out of the subscription.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Probes a broker level sends before giving up on its subscription being live.
const PROBE_TRIES_MAX: u32 = 50;
/// How long one probe waits for its delivery.
const PROBE_WAIT: Duration = Duration::from_millis(200);
/// A generous bound on what an event adds to its payload on the wire (id, topic, time).
const EVENT_OVERHEAD_MAX: usize = 512;

/// The flags of `micro bench events` and `micro bench broker`.
#[derive(Debug, Clone, Args)]
pub struct PubSubBenchArgs {
    /// Publishes at each concurrency level
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=i64::from(REQUESTS_MAX)))]
    pub requests: u32,
    /// Concurrency levels, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,16,64", value_parser = clap::value_parser!(u32).range(1..=i64::from(CONCURRENCY_MAX)))]
    pub concurrency: Vec<u32>,
    /// Bytes per payload (each carries its level and sequence number)
    #[arg(long, default_value_t = 256, value_parser = payload_size)]
    pub size: usize,
    /// Print a table or JSON
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

fn payload_size(text: &str) -> Result<usize, String> {
    let size: usize = text.parse().map_err(|e| format!("{e}"))?;
    let max = micro_core::events::PAYLOAD_LEN_MAX;
    if (PAYLOAD_SIZE_MIN..=max).contains(&size) {
        Ok(size)
    } else {
        Err(format!("from {PAYLOAD_SIZE_MIN} to {max} bytes"))
    }
}

/// What the read-back of one events level found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Publishes that were acknowledged.
    pub acked: usize,
    /// Acknowledged payloads found on the topic.
    pub found: usize,
    /// Events the topic holds (acked ones, plus any whose publish failed after storing).
    pub stored: usize,
}

/// One line of output: a target at one concurrency level.
#[derive(Debug)]
struct Row {
    target: &'static str,
    stats: PhaseStats,
    verified: Option<Verified>,
}

/// `micro bench events`: at each level, C tasks publish `--requests` events on a topic of
/// their own, then the topic is read back and every acknowledged payload must be on it.
/// Exits with an error if an acknowledged event was lost.
pub(crate) async fn events(client: &Client, args: &PubSubBenchArgs) -> Result<(), CliError> {
    let run_id = run_id();
    let mut rows = Vec::with_capacity(args.concurrency.len());
    let mut first_error = None;
    for spec in specs(&run_id, args) {
        let topic = topic_of(&spec);
        let target = EventsTarget::new(client, &topic);
        let stats = run_phase(&target, &spec, &mut first_error).await?;
        let acked = target.acked();
        let verified = verify_events(client, &topic, &acked, &spec).await?;
        rows.push(Row {
            target: "micro events",
            stats,
            verified: Some(verified),
        });
    }
    finish(&rows, args.output, first_error.as_deref());
    let lost: usize = rows
        .iter()
        .filter_map(|row| row.verified)
        .map(|v| v.acked - v.found)
        .sum();
    if lost > 0 {
        return Err(CliError::new(
            OTHER,
            format!("{lost} acknowledged events were not read back"),
        ));
    }
    Ok(())
}

/// `micro bench broker`: at each level, one subscription on a topic of its own, then C
/// tasks each publish a message and wait for it to be delivered before the next.
pub(crate) async fn broker(client: &Client, args: &PubSubBenchArgs) -> Result<(), CliError> {
    let run_id = run_id();
    let mut rows = Vec::with_capacity(args.concurrency.len());
    let mut first_error = None;
    for spec in specs(&run_id, args) {
        let (target, dispatcher) = BrokerTarget::subscribe(client, &topic_of(&spec)).await?;
        let stats = run_phase(&target, &spec, &mut first_error).await;
        dispatcher.abort();
        rows.push(Row {
            target: "micro broker",
            stats: stats?,
            verified: None,
        });
    }
    finish(&rows, args.output, first_error.as_deref());
    Ok(())
}

/// Names this run's topics: the time in ms and the process id.
fn run_id() -> String {
    let now_ms = micro_core::Clock::now_ms(&micro_core::SystemClock);
    format!("{now_ms:x}-{}", std::process::id())
}

/// One write phase per concurrency level, keys `bench-<run_id>-c<C>/<i>`.
fn specs(run_id: &str, args: &PubSubBenchArgs) -> Vec<PhaseSpec> {
    args.concurrency
        .iter()
        .map(|&level| PhaseSpec {
            phase: Phase::Write,
            key_prefix: format!("bench-{run_id}-c{level}/").into(),
            concurrency: usize::try_from(level).unwrap_or(usize::MAX),
            requests: usize::try_from(args.requests).unwrap_or(usize::MAX),
            value_size: args.size,
        })
        .collect()
}

/// The topic of a level: its key prefix without the slash.
fn topic_of(spec: &PhaseSpec) -> String {
    spec.key_prefix.trim_end_matches('/').to_owned()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Durable events, through the proxy: a write is one acknowledged publish.
#[derive(Debug, Clone)]
struct EventsTarget {
    client: Client,
    stream: StreamClient<Channel>,
    topic: Arc<str>,
    /// The keys whose publish was acknowledged.
    acked: Arc<Mutex<Vec<String>>>,
}

impl EventsTarget {
    fn new(client: &Client, topic: &str) -> Self {
        Self {
            client: client.clone(),
            stream: StreamClient::new(client.channel()),
            topic: topic.into(),
            acked: Arc::default(),
        }
    }

    fn acked(&self) -> Vec<String> {
        lock(&self.acked).clone()
    }
}

impl Target for EventsTarget {
    const NAME: &'static str = "events";

    async fn write(&mut self, key: String, value: Vec<u8>) -> Result<(), CliError> {
        let request = events_pb::PublishRequest {
            topic: self.topic.to_string(),
            metadata: HashMap::default(),
            payload: value,
            timestamp: 0,
        };
        self.stream
            .publish(self.client.request(request))
            .await
            .map_err(|s| self.client.error(&s))?;
        lock(&self.acked).push(key);
        Ok(())
    }

    async fn read(&mut self, _key: String, _expected: &[u8]) -> Result<(), CliError> {
        Err(no_read_phase())
    }
}

fn no_read_phase() -> CliError {
    CliError::new(OTHER, "publish benchmarks have no read phase")
}

/// Reads every event of `topic` back, a page at a time, and counts the acknowledged
/// payloads among them.
async fn verify_events(
    client: &Client,
    topic: &str,
    acked: &[String],
    spec: &PhaseSpec,
) -> Result<Verified, CliError> {
    let stored = read_payloads(client, topic, spec).await?;
    let found = acked
        .iter()
        .filter(|key| stored.contains(&value_for(key, spec.value_size)))
        .count();
    Ok(Verified {
        acked: acked.len(),
        found,
        stored: stored.len(),
    })
}

/// The distinct payloads on `topic`, read linearizably from the oldest.
async fn read_payloads(
    client: &Client,
    topic: &str,
    spec: &PhaseSpec,
) -> Result<BTreeSet<Vec<u8>>, CliError> {
    let message_max = micro_gateway::MESSAGE_LEN_MAX;
    let page = (message_max / (spec.value_size + EVENT_OVERHEAD_MAX))
        .clamp(1, micro_core::events::READ_MAX);
    let mut store = StoreClient::new(client.channel()).max_decoding_message_size(message_max);
    let mut payloads = BTreeSet::new();
    let mut offset = 0_u64;
    // At most `requests` events were published: one more page shows the end.
    for _ in 0..=spec.requests / page + 1 {
        let request = events_pb::ReadRequest {
            topic: topic.to_owned(),
            limit: u64::try_from(page).unwrap_or(u64::MAX),
            offset,
        };
        let events = store
            .read(client.request(request))
            .await
            .map_err(|s| client.error(&s))?
            .into_inner()
            .events;
        let count = events.len();
        offset += u64::try_from(count).unwrap_or(u64::MAX);
        payloads.extend(events.into_iter().map(|event| event.payload));
        if count < page {
            return Ok(payloads);
        }
    }
    Err(CliError::new(
        MICRO_ERROR,
        format!("topic {topic} holds more events than were published"),
    ))
}

/// Who waits for which message body to come out of the subscription.
type Waiters = Arc<Mutex<HashMap<Vec<u8>, oneshot::Sender<()>>>>;

/// The broker, through the proxy: a write is a publish and that message's delivery.
#[derive(Debug, Clone)]
struct BrokerTarget {
    client: Client,
    broker: BrokerClient<Channel>,
    topic: Arc<str>,
    waiters: Waiters,
}

impl BrokerTarget {
    /// Subscribes to `topic`, starts the task handing deliveries to their waiters, and
    /// probes until a message published now is delivered.
    async fn subscribe(client: &Client, topic: &str) -> Result<(Self, JoinHandle<()>), CliError> {
        let mut broker = BrokerClient::new(client.channel())
            .max_decoding_message_size(micro_gateway::MESSAGE_LEN_MAX);
        let request = broker_pb::SubscribeRequest {
            topic: topic.to_owned(),
            queue: String::new(),
        };
        let messages = broker
            .subscribe(client.request(request))
            .await
            .map_err(|s| client.error(&s))?
            .into_inner();
        let waiters = Waiters::default();
        let dispatcher = tokio::spawn(dispatch(messages, waiters.clone()));
        let mut target = Self {
            client: client.clone(),
            broker,
            topic: topic.into(),
            waiters,
        };
        for probe in 0..PROBE_TRIES_MAX {
            let body = format!("probe {probe}").into_bytes();
            if target.deliver(body, PROBE_WAIT).await.is_ok() {
                return Ok((target, dispatcher));
            }
        }
        dispatcher.abort();
        Err(CliError::new(
            TIMEOUT,
            format!("no probe on {topic} came back from the subscription"),
        ))
    }

    /// Publishes `body` and waits until the subscription delivers it.
    async fn deliver(&mut self, body: Vec<u8>, wait: Duration) -> Result<(), CliError> {
        let (delivered, arrival) = oneshot::channel();
        lock(&self.waiters).insert(body.clone(), delivered);
        let request = broker_pb::PublishRequest {
            topic: self.topic.to_string(),
            message: Some(broker_pb::Message {
                header: HashMap::default(),
                body: body.clone(),
            }),
        };
        let outcome = match self.broker.publish(self.client.request(request)).await {
            Err(status) => Err(self.client.error(&status)),
            Ok(_) => match tokio::time::timeout(wait, arrival).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(_)) => Err(CliError::new(OTHER, "the subscription ended")),
                Err(_) => Err(CliError::new(
                    TIMEOUT,
                    format!("a message was not delivered within {wait:?}"),
                )),
            },
        };
        lock(&self.waiters).remove(&body);
        outcome
    }
}

/// Hands each delivered message to whoever waits for its body, until the subscription
/// ends (or the task is aborted, which drops it and so unsubscribes).
async fn dispatch(mut messages: tonic::Streaming<broker_pb::Message>, waiters: Waiters) {
    while let Some(Ok(message)) = messages.next().await {
        let waiter = lock(&waiters).remove(&message.body);
        if let Some(waiter) = waiter {
            let _ = waiter.send(());
        }
    }
}

impl Target for BrokerTarget {
    const NAME: &'static str = "broker";

    async fn write(&mut self, _key: String, value: Vec<u8>) -> Result<(), CliError> {
        self.deliver(value, DELIVERY_TIMEOUT).await
    }

    async fn read(&mut self, _key: String, _expected: &[u8]) -> Result<(), CliError> {
        Err(no_read_phase())
    }
}

/// Prints the rows and warns about the first failure.
fn finish(rows: &[Row], output: Output, first_error: Option<&str>) {
    match output {
        Output::Table => print_rows_table(rows),
        Output::Json => println!("{}", rows_json(rows)),
    }
    if let Some(err) = first_error {
        eprintln!("warning: some requests failed; the first: {err}");
    }
}

fn print_rows_table(rows: &[Row]) {
    let table = rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.target.to_owned()];
            cells.extend(row.stats.table_cells());
            cells.push(
                row.verified
                    .map_or_else(|| "-".to_owned(), |v| format!("{}/{}", v.found, v.acked)),
            );
            cells
        })
        .collect();
    let mut header = vec!["TARGET"];
    header.extend(STATS_HEADER);
    header.push("VERIFIED");
    print_table(&header, table);
}

fn rows_json(rows: &[Row]) -> serde_json::Value {
    let items = rows
        .iter()
        .map(|row| {
            let mut fields = row.stats.json_fields();
            fields.insert("target".to_owned(), row.target.into());
            let verified = row.verified.map(
                |v| serde_json::json!({ "acked": v.acked, "found": v.found, "stored": v.stored }),
            );
            fields.insert("verified".to_owned(), verified.into());
            serde_json::Value::Object(fields)
        })
        .collect();
    serde_json::Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_unique_per_level_and_sequence() {
        let args = PubSubBenchArgs {
            requests: 3,
            concurrency: vec![1, 16],
            size: PAYLOAD_SIZE_MIN,
            output: Output::Json,
        };
        let specs = specs("run", &args);
        assert_eq!(topic_of(&specs[1]), "bench-run-c16");
        let payloads: BTreeSet<Vec<u8>> = specs
            .iter()
            .flat_map(|spec| {
                (0..spec.requests).map(|i| value_for(&format!("{}{i}", spec.key_prefix), 64))
            })
            .collect();
        assert_eq!(payloads.len(), 6);
        assert!(payloads.iter().all(|p| p.len() == PAYLOAD_SIZE_MIN));
    }

    #[test]
    fn payload_sizes_are_bounded() {
        assert_eq!(payload_size("256"), Ok(256));
        assert!(payload_size("63").is_err());
        assert!(payload_size(&(micro_core::events::PAYLOAD_LEN_MAX + 1).to_string()).is_err());
    }
}
