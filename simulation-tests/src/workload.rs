//! The workload: clients writing, reading, deleting and writing with a TTL over the
//! store's gRPC API (through a node's proxy, as any user would), and an admin client
//! changing membership during the faults.
//!
//! Each client records every operation into the [`History`]. An operation that fails
//! or times out is *unknown* (a write may still apply), and the client continues as a
//! new logical process, as Jepsen does, so a process never has two operations open.

use std::collections::BTreeMap;
use std::time::Duration;

use micro_proto::cluster::cluster_client::ClusterClient;
use micro_proto::cluster::{AddNodeRequest, RemoveNodeRequest, TransferLeaderRequest};
use micro_proto::store::store_client::StoreClient;
use micro_proto::store::{DeleteRequest, ReadRequest, Record, WriteRequest};
use tonic::transport::Channel;

use crate::clock::sim_ms;
use crate::history::{History, Op, OpKind, Outcome, ReadValue};
use crate::net::channel;
use crate::plan::{CONVERGE_MS, Dice, FINAL_READS_MS, KEYS, Plan, peer_addr, proxy_addr};
use crate::trace::Trace;

/// How long a client waits for an answer before it gives the operation up as unknown:
/// longer than the node's own request deadline, so the node answers first.
const OP_TIMEOUT: Duration = Duration::from_secs(6);
/// How long a client waits after a failure before its next attempt.
const BACKOFF: Duration = Duration::from_millis(100);

/// A client's view of the nodes: a channel per node, dropped after a failure.
struct Nodes {
    ids: Vec<u64>,
    current: u64,
    channels: BTreeMap<u64, Channel>,
}

impl Nodes {
    fn new(ids: Vec<u64>, dice: &mut Dice) -> Self {
        let current = ids[usize::try_from(dice.below(ids.len() as u64)).unwrap_or(0)];
        Self {
            ids,
            current,
            channels: BTreeMap::new(),
        }
    }

    fn channel(&mut self) -> Result<Channel, String> {
        if let Some(channel) = self.channels.get(&self.current) {
            return Ok(channel.clone());
        }
        let channel = channel(&proxy_addr(self.current))?;
        self.channels.insert(self.current, channel.clone());
        Ok(channel)
    }

    /// Forgets the current node's channel and moves to another node, as a client with
    /// a list of endpoints would.
    fn fail_over(&mut self, dice: &mut Dice) {
        self.channels.remove(&self.current);
        let others: Vec<u64> = self
            .ids
            .iter()
            .copied()
            .filter(|id| *id != self.current)
            .collect();
        if !others.is_empty() {
            self.current = others[usize::try_from(dice.below(others.len() as u64)).unwrap_or(0)];
        }
    }

    fn hop(&mut self, dice: &mut Dice) {
        self.current = self.ids[usize::try_from(dice.below(self.ids.len() as u64)).unwrap_or(0)];
    }
}

/// One workload client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Its index (1-based).
    pub index: u64,
    /// The seed of its choices.
    pub seed: u64,
    /// The nodes it may talk to.
    pub nodes: Vec<u64>,
    /// When it stops the workload and starts the final reads.
    pub final_reads_at_ms: u64,
}

impl Client {
    /// The clients of `plan`.
    pub fn of_plan(plan: &Plan) -> Vec<Self> {
        (1..=plan.clients)
            .zip(&plan.client_seeds)
            .map(|(index, seed)| Self {
                index,
                seed: *seed,
                nodes: plan.node_ids().collect(),
                final_reads_at_ms: plan.final_reads_at_ms(),
            })
            .collect()
    }

    /// Runs the workload, then reads every key once the cluster serves again.
    pub async fn run(self, history: History, trace: Trace) -> turmoil::Result {
        let mut dice = Dice::new(self.seed);
        let mut nodes = Nodes::new(self.nodes.clone(), &mut dice);
        let mut process = self.index * 1_000_000;
        let mut written = 0_u64;
        tokio::time::sleep(Duration::from_millis(500 + dice.below(200))).await;
        while sim_ms() < self.final_reads_at_ms {
            let key = KEYS[usize::try_from(dice.below(KEYS.len() as u64)).unwrap_or(0)];
            let kind = match dice.below(100) {
                0..40 => OpKind::Write {
                    value: format!("c{}-{written}", self.index),
                    ttl_secs: 0,
                },
                40..50 => OpKind::Write {
                    value: format!("c{}-{written}", self.index),
                    ttl_secs: dice.between(1, 3),
                },
                50..60 => OpKind::Delete,
                _ => OpKind::Read,
            };
            if matches!(kind, OpKind::Write { .. }) {
                written += 1;
            }
            if dice.percent(20) {
                nodes.hop(&mut dice);
            }
            let op = perform(&mut nodes, process, key, kind, false).await;
            trace.event(op.complete_ms, format_args!("op {op:?}"));
            let unknown = !op.is_ok();
            history.record(op);
            if unknown {
                process += 1;
                nodes.fail_over(&mut dice);
                tokio::time::sleep(BACKOFF).await;
            } else {
                tokio::time::sleep(Duration::from_millis(dice.below(20))).await;
            }
        }
        // Final reads start together, after every client has stopped writing.
        let start = self.final_reads_at_ms + 1_000;
        tokio::time::sleep(Duration::from_millis(start.saturating_sub(sim_ms()))).await;
        for key in KEYS {
            loop {
                let op = perform(&mut nodes, process, key, OpKind::Read, true).await;
                trace.event(op.complete_ms, format_args!("final {op:?}"));
                if op.is_ok() {
                    history.record(op);
                    break;
                }
                process += 1;
                nodes.fail_over(&mut dice);
                if sim_ms() > start + FINAL_READS_MS {
                    // The checkers report the missing final read (liveness).
                    break;
                }
                tokio::time::sleep(BACKOFF).await;
            }
        }
        Ok(())
    }
}

/// Sends one operation to the current node and records how it ended.
async fn perform(nodes: &mut Nodes, process: u64, key: &str, kind: OpKind, final_read: bool) -> Op {
    let invoke_ms = sim_ms();
    let outcome = match nodes.channel() {
        Ok(channel) => {
            let mut store = StoreClient::new(channel);
            match tokio::time::timeout(OP_TIMEOUT, call(&mut store, key, &kind)).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Unknown,
            }
        }
        Err(_) => Outcome::Unknown,
    };
    Op {
        process,
        key: key.to_owned(),
        kind,
        invoke_ms,
        complete_ms: sim_ms(),
        outcome,
        final_read,
    }
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(OP_TIMEOUT);
    request
}

async fn call(store: &mut StoreClient<Channel>, key: &str, kind: &OpKind) -> Outcome {
    match kind {
        OpKind::Write { value, ttl_secs } => {
            let record = Record {
                key: key.to_owned(),
                value: value.clone().into_bytes(),
                expiry: i64::try_from(*ttl_secs).unwrap_or(i64::MAX),
                metadata: Default::default(),
            };
            let write = WriteRequest {
                record: Some(record),
                options: None,
            };
            match store.write(request(write)).await {
                Ok(_) => Outcome::Ok(None),
                Err(_) => Outcome::Unknown,
            }
        }
        OpKind::Delete => {
            let delete = DeleteRequest {
                key: key.to_owned(),
                options: None,
            };
            match store.delete(request(delete)).await {
                Ok(_) => Outcome::Ok(None),
                Err(_) => Outcome::Unknown,
            }
        }
        OpKind::Read => {
            let read = ReadRequest {
                key: key.to_owned(),
                options: None,
            };
            match store.read(request(read)).await {
                Ok(answer) => Outcome::Ok(Some(read_value(answer.into_inner().records))),
                Err(status) if status.code() == tonic::Code::NotFound => {
                    Outcome::Ok(Some(ReadValue::Absent))
                }
                Err(_) => Outcome::Unknown,
            }
        }
    }
}

fn read_value(records: Vec<Record>) -> ReadValue {
    match records.into_iter().next() {
        None => ReadValue::Absent,
        Some(record) => ReadValue::Found {
            value: String::from_utf8_lossy(&record.value).into_owned(),
            expiry_secs: u64::try_from(record.expiry).unwrap_or(0),
        },
    }
}

/// The admin client: adds the standby nodes during the faults, may remove one again,
/// and may hand leadership over, all through the cluster API of some node's proxy.
pub async fn admin(plan: Plan, trace: Trace) -> turmoil::Result {
    let mut dice = Dice::new(plan.admin_seed);
    let mut nodes = Nodes::new((1..=plan.founders).collect(), &mut dice);
    let heal = plan.heal_at_ms();
    let give_up = heal + CONVERGE_MS;
    let standbys = plan.founders + 1..=plan.founders + plan.standbys;
    for id in standbys {
        let at = crate::plan::FAULTS_FROM_MS + dice.below(crate::plan::FAULT_PHASE_MS / 2);
        sleep_until(at).await;
        let added = admin_call(&mut nodes, &mut dice, &trace, give_up, |mut c| async move {
            let add = AddNodeRequest {
                id,
                address: peer_addr(id),
            };
            c.add_node(add).await.map(|_| ())
        })
        .await;
        if added && dice.percent(50) {
            sleep_until(sim_ms() + dice.between(500, 3_000)).await;
            admin_call(&mut nodes, &mut dice, &trace, give_up, |mut c| async move {
                c.remove_node(RemoveNodeRequest { id }).await.map(|_| ())
            })
            .await;
        }
    }
    if dice.percent(50) {
        let id = dice.between(1, plan.founders);
        sleep_until(heal.saturating_sub(dice.below(4_000))).await;
        admin_call(&mut nodes, &mut dice, &trace, heal, |mut c| async move {
            c.transfer_leader(TransferLeaderRequest { id })
                .await
                .map(|_| ())
        })
        .await;
    }
    Ok(())
}

async fn sleep_until(at_ms: u64) {
    tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(sim_ms()))).await;
}

/// Retries `call` on some node until it succeeds or `give_up_ms`; whether it succeeded.
async fn admin_call<F, Fut>(
    nodes: &mut Nodes,
    dice: &mut Dice,
    trace: &Trace,
    give_up_ms: u64,
    call: F,
) -> bool
where
    F: Fn(ClusterClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    while sim_ms() < give_up_ms {
        let answer = match nodes.channel() {
            Ok(channel) => tokio::time::timeout(OP_TIMEOUT, call(ClusterClient::new(channel)))
                .await
                .map_err(|_| tonic::Status::deadline_exceeded("no answer"))
                .and_then(|r| r),
            Err(why) => Err(tonic::Status::unavailable(why)),
        };
        let result = match &answer {
            Ok(()) => "ok".to_owned(),
            Err(status) => format!("{:?}", status.code()),
        };
        trace.event(sim_ms(), format_args!("admin n{} {result}", nodes.current));
        if answer.is_ok() {
            return true;
        }
        nodes.fail_over(dice);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}
