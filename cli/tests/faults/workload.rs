//! The load the fault tests run, and the checks of what it saw:
//! - register clients read and write a few keys with unique values, recording every
//!   operation (sent, answered, outcome) for the linearizability checker of
//!   `micro-checkers`, the same one the simulation uses;
//! - writers put unique keys, each acknowledged one must be readable at the end (and
//!   their acknowledgement times give the availability);
//! - a publisher publishes unique events, each acknowledged one must be stored.
//!
//! Every client holds all the nodes' proxies and moves to the next when a call fails,
//! as an etcd client with several endpoints does.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use micro_checkers::history::{Op, OpKind, Outcome, ReadValue};
use micro_cli::client::Client;
use micro_core::Namespace;
use micro_proto::events::PublishRequest;
use micro_proto::events::stream_client::StreamClient;
use micro_proto::store::{ReadRequest, Record, WriteRequest};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Register keys: few, so clients contend on them.
pub(crate) const REGISTERS: u64 = 6;
/// A call's own limit (the node's deadline is 5 s).
const CALL_LIMIT: Duration = Duration::from_secs(8);
/// The topic the publisher publishes to.
pub(crate) const TOPIC: &str = "chaos";

/// A client that moves to the next node when a call fails.
pub(crate) struct Roaming {
    proxies: Vec<String>,
    token: String,
    at: usize,
    client: Option<Client>,
}

impl Roaming {
    /// A client of `proxies`, starting at the `first`.
    pub(crate) fn new(proxies: &[String], token: &str, first: usize) -> Self {
        Self {
            proxies: proxies.to_vec(),
            token: token.to_owned(),
            at: first % proxies.len(),
            client: None,
        }
    }

    /// The current connection, made if needed (`None`, and the next node, if it fails).
    pub(crate) async fn get(&mut self) -> Option<Client> {
        if self.client.is_none() {
            let proxy = &self.proxies[self.at];
            let connect = Client::connect(proxy, Namespace::default());
            match tokio::time::timeout(Duration::from_secs(2), connect).await {
                Ok(Ok(client)) => self.client = Some(client.with_token(Some(self.token.clone()))),
                _ => {
                    self.failed();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return None;
                }
            }
        }
        self.client.clone()
    }

    /// The last call failed: use the next node.
    pub(crate) fn failed(&mut self) {
        self.client = None;
        self.at = (self.at + 1) % self.proxies.len();
    }
}

/// One unique-key write: its key, when it completed (ms since the load began), whether
/// it was acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Put {
    pub(crate) key: String,
    pub(crate) at_ms: u64,
    pub(crate) ok: bool,
}

/// What the load saw.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Every register operation.
    pub(crate) ops: Vec<Op>,
    /// Every unique-key write.
    pub(crate) puts: Vec<Put>,
    /// Every acknowledged event's payload.
    pub(crate) events: Vec<String>,
    /// Events whose publish failed.
    pub(crate) events_failed: u64,
    /// How long the load ran (ms).
    pub(crate) elapsed_ms: u64,
}

impl Observed {
    /// The acknowledged unique keys.
    pub(crate) fn acked(&self) -> Vec<String> {
        self.puts
            .iter()
            .filter(|p| p.ok)
            .map(|p| p.key.clone())
            .collect()
    }

    /// The fraction of whole seconds in which at least one write was acknowledged.
    pub(crate) fn availability(&self) -> f64 {
        let seconds = (self.elapsed_ms / 1000).max(1);
        let served: HashSet<u64> = self
            .puts
            .iter()
            .filter(|p| p.ok && p.at_ms / 1000 < seconds)
            .map(|p| p.at_ms / 1000)
            .collect();
        #[allow(clippy::cast_precision_loss)] // a ratio of small counts
        let ratio = served.len() as f64 / seconds as f64;
        ratio
    }

    /// The longest time (ms) between two acknowledged writes.
    pub(crate) fn longest_gap_ms(&self) -> u64 {
        let mut times: Vec<u64> = self.puts.iter().filter(|p| p.ok).map(|p| p.at_ms).collect();
        times.sort_unstable();
        times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
    }
}

/// The running load.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    registers: Vec<JoinHandle<Vec<Op>>>,
    writers: Vec<JoinHandle<Vec<Put>>>,
    publisher: Option<JoinHandle<(Vec<String>, u64)>>,
}

fn ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Load {
    /// Starts `registers` register clients, `writers` writers and, if `publish`, a
    /// publisher, spread over `proxies`.
    pub(crate) fn start(
        proxies: &[String],
        token: &str,
        registers: usize,
        writers: usize,
        publish: bool,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let registers = (0..registers)
            .map(|c| {
                let roaming = Roaming::new(proxies, token, c);
                tokio::spawn(register_client(roaming, c as u64, started, stop.clone()))
            })
            .collect();
        let writers = (0..writers)
            .map(|w| {
                let roaming = Roaming::new(proxies, token, w + 1);
                tokio::spawn(writer(roaming, w, started, stop.clone()))
            })
            .collect();
        let publisher = publish.then(|| {
            let roaming = Roaming::new(proxies, token, 2);
            tokio::spawn(publisher(roaming, stop.clone()))
        });
        Self {
            stop,
            started,
            registers,
            writers,
            publisher,
        }
    }

    /// Milliseconds since the load began.
    pub(crate) fn now_ms(&self) -> u64 {
        ms(self.started)
    }

    /// Stops every client and gathers what they saw.
    pub(crate) async fn finish(self) -> Observed {
        self.stop.store(true, Ordering::Relaxed);
        let mut observed = Observed {
            elapsed_ms: ms(self.started),
            ..Observed::default()
        };
        for task in self.registers {
            observed.ops.extend(task.await.unwrap());
        }
        for task in self.writers {
            observed.puts.extend(task.await.unwrap());
        }
        if let Some(task) = self.publisher {
            let (events, failed) = task.await.unwrap();
            observed.events = events;
            observed.events_failed = failed;
        }
        observed
    }

    /// The final reads: every register key read (linearizably) once the faults are
    /// over, recorded in the history so a lost write shows as a violation.
    pub(crate) async fn final_reads(&self, proxies: &[String], token: &str) -> Vec<Op> {
        let mut roaming = Roaming::new(proxies, token, 0);
        let mut ops = Vec::new();
        for k in 0..REGISTERS {
            let key = format!("r{k}");
            for attempt in 0..40 {
                let Some(client) = roaming.get().await else {
                    continue;
                };
                let invoke_ms = ms(self.started);
                let outcome = read(&client, &key).await;
                let ok = matches!(outcome, Outcome::Ok(_));
                ops.push(Op {
                    process: 9_000_000 + k * 100 + attempt,
                    key: key.clone(),
                    kind: OpKind::Read,
                    invoke_ms,
                    complete_ms: ms(self.started),
                    outcome,
                    final_read: true,
                });
                if ok {
                    break;
                }
                roaming.failed();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        ops
    }
}

/// Writes `key` = `value`.
pub(crate) async fn put(client: &Client, key: &str, value: &str) -> Result<(), tonic::Status> {
    let record = Record {
        key: key.to_owned(),
        value: value.as_bytes().to_vec(),
        ..Record::default()
    };
    let request = client.request(WriteRequest {
        record: Some(record),
        options: None,
    });
    client.store().write(request).await.map(|_| ())
}

/// Writes `key` = `value` within [`CALL_LIMIT`]; whether it was acknowledged.
async fn write(client: &Client, key: &str, value: &str) -> bool {
    matches!(
        tokio::time::timeout(CALL_LIMIT, put(client, key, value)).await,
        Ok(Ok(()))
    )
}

/// A linearizable read: the value, absent, or unknown (the call failed).
pub(crate) async fn read(client: &Client, key: &str) -> Outcome {
    let request = client.request(ReadRequest {
        key: key.to_owned(),
        options: None,
    });
    match tokio::time::timeout(CALL_LIMIT, client.store().read(request)).await {
        Ok(Ok(reply)) => match reply.into_inner().records.into_iter().next() {
            Some(record) => Outcome::Ok(Some(ReadValue::Found {
                value: String::from_utf8_lossy(&record.value).into_owned(),
                expiry_secs: 0,
            })),
            None => Outcome::Ok(Some(ReadValue::Absent)),
        },
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => {
            Outcome::Ok(Some(ReadValue::Absent))
        }
        _ => Outcome::Unknown,
    }
}

async fn register_client(
    mut roaming: Roaming,
    c: u64,
    started: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Op> {
    let mut dice = crate::harness::Dice::new(c * 7919 + 17);
    let mut ops = Vec::new();
    let mut process = c * 1_000_000;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(client) = roaming.get().await else {
            continue;
        };
        let key = format!("r{}", dice.below(REGISTERS));
        let invoke_ms = ms(started);
        let (kind, outcome) = if dice.below(10) < 6 {
            n += 1;
            let value = format!("c{c}-{n}");
            let ok = write(&client, &key, &value).await;
            let outcome = if ok {
                Outcome::Ok(None)
            } else {
                Outcome::Unknown
            };
            (OpKind::Write { value, ttl_secs: 0 }, outcome)
        } else {
            (OpKind::Read, read(&client, &key).await)
        };
        let failed = outcome == Outcome::Unknown;
        ops.push(Op {
            process,
            key,
            kind,
            invoke_ms,
            complete_ms: ms(started),
            outcome,
            final_read: false,
        });
        if failed {
            // A logical process never has two operations open: the unknown one stays
            // open forever, so later ones belong to a new process.
            process += 1;
            roaming.failed();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    ops
}

async fn writer(
    mut roaming: Roaming,
    w: usize,
    started: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Put> {
    let mut puts = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(client) = roaming.get().await else {
            continue;
        };
        n += 1;
        let key = format!("d{w}-{n}");
        let ok = write(&client, &key, &key).await;
        puts.push(Put {
            key,
            at_ms: ms(started),
            ok,
        });
        if !ok {
            roaming.failed();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    puts
}

async fn publisher(mut roaming: Roaming, stop: Arc<AtomicBool>) -> (Vec<String>, u64) {
    let mut acked = Vec::new();
    let mut failed = 0;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(client) = roaming.get().await else {
            continue;
        };
        n += 1;
        let payload = format!("e{n}");
        let request = client.request(PublishRequest {
            topic: TOPIC.to_owned(),
            payload: format!("{payload:?}").into_bytes(),
            ..PublishRequest::default()
        });
        let mut stream = StreamClient::new(client.channel());
        let call = stream.publish(request);
        if matches!(tokio::time::timeout(CALL_LIMIT, call).await, Ok(Ok(_))) {
            acked.push(payload);
        } else {
            failed += 1;
            roaming.failed();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Events are a side load: a few per second is enough to cross every fault.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (acked, failed)
}

/// The acknowledged unique keys that cannot be read back with their value. One listing
/// finds the candidates (tens of thousands of keys in a long run); each is then read on
/// its own, linearizably, before it counts as lost.
pub(crate) async fn missing_keys(proxies: &[String], token: &str, keys: &[String]) -> Vec<String> {
    let listed = list_all(proxies, token, "d").await;
    let mut roaming = Roaming::new(proxies, token, 0);
    let mut missing = Vec::new();
    for key in keys.iter().filter(|k| !listed.contains(*k)) {
        let mut verdict = None;
        for _ in 0..40 {
            let Some(client) = roaming.get().await else {
                continue;
            };
            match read(&client, key).await {
                Outcome::Ok(Some(ReadValue::Found { value, .. })) => {
                    verdict = Some(value == *key);
                    break;
                }
                Outcome::Ok(_) => {
                    verdict = Some(false);
                    break;
                }
                Outcome::Unknown => {
                    roaming.failed();
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        match verdict {
            Some(true) => {}
            Some(false) => missing.push(key.clone()),
            None => panic!("cannot read {key}: the cluster does not answer"),
        }
    }
    missing
}

/// Every key starting with `prefix`, listed page by page.
async fn list_all(proxies: &[String], token: &str, prefix: &str) -> HashSet<String> {
    use micro_proto::store::{ListOptions, ListRequest};
    const PAGE: u64 = 50_000;
    let mut roaming = Roaming::new(proxies, token, 0);
    let mut keys = HashSet::new();
    let mut failures = 0;
    loop {
        let Some(client) = roaming.get().await else {
            continue;
        };
        let request = client.request(ListRequest {
            options: Some(ListOptions {
                prefix: prefix.to_owned(),
                limit: PAGE,
                offset: keys.len() as u64,
                ..ListOptions::default()
            }),
        });
        let mut store = client.store().max_decoding_message_size(64 << 20);
        match list_page(&mut store, request).await {
            Ok(page) => {
                let full = page.len() as u64 == PAGE;
                keys.extend(page);
                if !full {
                    return keys;
                }
            }
            Err(err) => {
                failures += 1;
                assert!(failures < 40, "cannot list the store: {err}");
                roaming.failed();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// One page of a listing (a stream of replies).
async fn list_page(
    store: &mut micro_proto::store::store_client::StoreClient<tonic::transport::Channel>,
    request: tonic::Request<micro_proto::store::ListRequest>,
) -> Result<Vec<String>, tonic::Status> {
    let mut replies = store.list(request).await?.into_inner();
    let mut keys = Vec::new();
    while let Some(reply) = replies.message().await? {
        keys.extend(reply.keys);
    }
    Ok(keys)
}

/// The acknowledged events not stored in the topic.
pub(crate) async fn missing_events(
    proxies: &[String],
    token: &str,
    acked: &[String],
) -> Vec<String> {
    use micro_proto::events::ReadRequest as EventsRead;
    use micro_proto::events::store_client::StoreClient;
    // A read returns at most 10,000 events: page through the topic.
    const PAGE: u64 = 10_000;
    let mut roaming = Roaming::new(proxies, token, 0);
    let mut stored: HashSet<String> = HashSet::new();
    let mut offset = 0;
    let mut failures = 0;
    loop {
        let Some(client) = roaming.get().await else {
            continue;
        };
        let request = client.request(EventsRead {
            topic: TOPIC.to_owned(),
            limit: PAGE,
            offset,
        });
        let reply = StoreClient::new(client.channel())
            .max_decoding_message_size(256 << 20)
            .read(request)
            .await;
        match reply {
            Ok(reply) => {
                let events = reply.into_inner().events;
                if events.is_empty() {
                    break;
                }
                offset += events.len() as u64;
                stored.extend(
                    events
                        .into_iter()
                        .map(|e| String::from_utf8_lossy(&e.payload).into_owned()),
                );
            }
            Err(err) => {
                failures += 1;
                assert!(failures < 40, "cannot read topic {TOPIC}: {err}");
                roaming.failed();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    acked
        .iter()
        .filter(|p| !stored.contains(&format!("{p:?}")))
        .cloned()
        .collect()
}
