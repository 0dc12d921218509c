//! The events workload: a publisher sending unique payloads to two topics through random
//! nodes while the faults run, two members of consumer group [`GROUP`] per topic
//! following them with manual acks (reconnecting to another node whenever their stream
//! breaks or goes quiet; nacking some events and leaving some unacked, which must come
//! back), and, once healed, a read of every topic on every node.
//!
//! Everything goes into the [`EventsLog`] the `events` checker reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use micro_proto::events as pb;
use tokio_stream::StreamExt;

use crate::clock::sim_ms;
use crate::net::channel;
use crate::plan::{Dice, FINAL_READS_MS, Plan, proxy_addr};
use crate::trace::Trace;

/// The topics.
pub const TOPICS: [&str; 2] = ["sim-a", "sim-b"];
/// The consumer group following each topic.
pub const GROUP: &str = "live";
/// Members of the group per topic.
const MEMBERS: u64 = 2;
/// How long a delivered event may stay unacked.
const ACK_WAIT: Duration = Duration::from_millis(1_000);
/// A member reconnects elsewhere after this long without an event.
const QUIET: Duration = Duration::from_secs(3);
const OP_TIMEOUT: Duration = Duration::from_secs(6);

/// One publish as the publisher saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOp {
    /// Its topic.
    pub topic: String,
    /// Its payload (unique across the run).
    pub payload: String,
    /// When it was sent (simulated ms).
    pub invoke_ms: u64,
    /// When it was answered, or given up.
    pub complete_ms: u64,
    /// Whether it was acknowledged (`false`: unknown outcome).
    pub ok: bool,
}

/// A final read of one topic on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalRead {
    /// The node.
    pub node: u64,
    /// The topic.
    pub topic: String,
    /// The payloads in log order.
    pub payloads: Vec<String>,
    /// When it was answered (simulated ms).
    pub complete_ms: u64,
}

/// What the events workload observed.
#[derive(Debug, Clone, Default)]
pub struct EventsObserved {
    /// Every publish.
    pub publishes: Vec<PublishOp>,
    /// Per topic, every payload delivered to a member of [`GROUP`].
    pub delivered: BTreeMap<String, BTreeSet<String>>,
    /// The final reads that were answered.
    pub finals: Vec<FinalRead>,
    /// Whether the final reads are over.
    pub finals_done: bool,
}

impl EventsObserved {
    /// Publishes, acknowledged publishes, and deliveries to the groups (for reports).
    pub fn counts(&self) -> (usize, usize, usize) {
        let acked = self.publishes.iter().filter(|p| p.ok).count();
        let delivered = self.delivered.values().map(BTreeSet::len).sum();
        (self.publishes.len(), acked, delivered)
    }

    /// Whether the group has had every event the final reads found on `topic` (then
    /// its members may stop early).
    fn topic_done(&self, topic: &str) -> bool {
        self.finals_done
            && self
                .finals
                .iter()
                .filter(|read| read.topic == topic)
                .all(|read| {
                    read.payloads.iter().all(|p| {
                        self.delivered
                            .get(topic)
                            .is_some_and(|delivered| delivered.contains(p))
                    })
                })
    }
}

/// The workload's observations, shared with the run.
#[derive(Debug, Clone, Default)]
pub struct EventsLog(Arc<Mutex<EventsObserved>>);

impl EventsLog {
    fn with<T>(&self, f: impl FnOnce(&mut EventsObserved) -> T) -> T {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Everything observed so far.
    pub fn observed(&self) -> EventsObserved {
        self.with(|o| o.clone())
    }
}

fn pick(dice: &mut Dice, plan: &Plan) -> u64 {
    1 + dice.below(plan.founders)
}

/// Runs the events workload of `plan`: publisher, members and final reads.
pub async fn eventer(plan: Plan, log: EventsLog, trace: Trace) -> turmoil::Result {
    let mut dice = Dice::new(plan.events_seed);
    let mut members = Vec::new();
    for topic in TOPICS {
        for _ in 0..MEMBERS {
            let member = member(plan.clone(), log.clone(), topic, dice.seed());
            members.push(tokio::spawn(member));
        }
    }
    tokio::time::sleep(Duration::from_millis(600 + dice.below(400))).await;
    let mut count = 0;
    while sim_ms() < plan.heal_at_ms() {
        let topic = TOPICS[usize::try_from(dice.below(2)).unwrap_or(0)];
        let op = publish(pick(&mut dice, &plan), topic, format!("p{count}")).await;
        count += 1;
        trace.event(op.complete_ms, format_args!("events {op:?}"));
        log.with(|o| o.publishes.push(op));
        tokio::time::sleep(Duration::from_millis(dice.between(20, 150))).await;
    }
    let start = plan.final_reads_at_ms() + 1_000;
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(sim_ms()))).await;
    final_reads(&plan, &log, &trace).await;
    log.with(|o| o.finals_done = true);
    for member in members {
        let _ = member.await;
    }
    Ok(())
}

async fn publish(node: u64, topic: &str, payload: String) -> PublishOp {
    let invoke_ms = sim_ms();
    let request = pb::PublishRequest {
        topic: topic.to_owned(),
        payload: payload.clone().into_bytes(),
        ..pb::PublishRequest::default()
    };
    let answer = async {
        let mut client = pb::stream_client::StreamClient::new(channel(&proxy_addr(node))?);
        client.publish(request).await.map_err(|s| s.to_string())
    };
    let ok = matches!(tokio::time::timeout(OP_TIMEOUT, answer).await, Ok(Ok(_)));
    PublishOp {
        topic: topic.to_owned(),
        payload,
        invoke_ms,
        complete_ms: sim_ms(),
        ok,
    }
}

/// Reads every topic on every founder, retrying each until it answers or the final-read
/// window closes.
async fn final_reads(plan: &Plan, log: &EventsLog, trace: &Trace) {
    let window_end = plan.final_reads_at_ms() + FINAL_READS_MS / 2;
    for node in 1..=plan.founders {
        for topic in TOPICS {
            while sim_ms() < window_end {
                let request = pb::ReadRequest {
                    topic: topic.to_owned(),
                    limit: 10_000,
                    offset: 0,
                };
                let answer = async {
                    let mut client =
                        pb::store_client::StoreClient::new(channel(&proxy_addr(node))?);
                    client.read(request).await.map_err(|s| s.to_string())
                };
                if let Ok(Ok(reply)) = tokio::time::timeout(OP_TIMEOUT, answer).await {
                    let payloads = reply
                        .into_inner()
                        .events
                        .into_iter()
                        .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
                        .collect();
                    let read = FinalRead {
                        node,
                        topic: topic.to_owned(),
                        payloads,
                        complete_ms: sim_ms(),
                    };
                    trace.event(read.complete_ms, format_args!("events final {read:?}"));
                    log.with(|o| o.finals.push(read));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One member of [`GROUP`] on `topic`, until the final-read window closes.
async fn member(plan: Plan, log: EventsLog, topic: &'static str, seed: u64) {
    let mut dice = Dice::new(seed);
    let end = plan.final_reads_at_ms() + FINAL_READS_MS;
    while sim_ms() < end && !log.with(|o| o.topic_done(topic)) {
        let node = pick(&mut dice, &plan);
        let (acks, ack_rx) = tokio::sync::mpsc::channel(64);
        let request = pb::ConsumeRequest {
            group: GROUP.to_owned(),
            topic: topic.to_owned(),
            offset: 1,
            auto_ack: false,
            ack_wait: i64::try_from(ACK_WAIT.as_nanos()).unwrap_or(i64::MAX),
            retry_limit: -1,
        };
        let open = async {
            let channel = channel(&proxy_addr(node)).map_err(tonic::Status::unavailable)?;
            let acks = tokio_stream::wrappers::ReceiverStream::new(ack_rx);
            micro_proto::consume::consume(channel, tonic::Request::new(request), acks).await
        };
        if let Ok(Ok(mut events)) = tokio::time::timeout(OP_TIMEOUT, open).await {
            while let Ok(Some(Ok(event))) = tokio::time::timeout(QUIET, events.next()).await {
                // Mostly acked; some nacked (redelivered at once) and some left unacked
                // (redelivered after ack_wait). Only an acked event counts as delivered.
                let success = match dice.below(100) {
                    0..85 => true,
                    85..95 => false,
                    _ => continue,
                };
                if success {
                    let payload = String::from_utf8_lossy(&event.payload).into_owned();
                    log.with(|o| {
                        o.delivered
                            .entry(topic.to_owned())
                            .or_default()
                            .insert(payload);
                    });
                }
                let ack = pb::AckRequest {
                    id: event.id,
                    success,
                };
                if acks.send(ack).await.is_err() || sim_ms() >= end {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(dice.between(100, 400))).await;
    }
}
