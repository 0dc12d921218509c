//! The registry workload: a client registering, renewing and deregistering the nodes of
//! service `sim` (TTL [`REGISTRATION_TTL_SECS`]) through the registry's gRPC API while
//! the faults run, reading the service back, and finally reading it on every node.
//!
//! Every operation goes into the [`RegistryLog`] the `registry` checker reads.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use micro_proto::registry as pb;
use micro_proto::registry::registry_client::RegistryClient;

use crate::clock::sim_ms;
use crate::net::channel;
use crate::plan::{Dice, FINAL_READS_MS, Plan, proxy_addr};
use crate::trace::Trace;

/// The service the registrar registers.
pub const SERVICE: &str = "sim";
/// The TTL of its registrations.
pub const REGISTRATION_TTL_SECS: u64 = 2;
/// Its node ids.
pub const NODES: [&str; 3] = ["sim-0", "sim-1", "sim-2"];
/// How long after its last registration the final reads wait, so every registration
/// must have expired by log time (see the checker for the bound).
pub const EXPIRY_WAIT_MS: u64 = 11_000;
const OP_TIMEOUT: Duration = Duration::from_secs(6);

/// One registry operation as the registrar saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegOp {
    /// What it did.
    pub kind: RegKind,
    /// When it was sent (simulated ms).
    pub invoke_ms: u64,
    /// When it was answered, or given up.
    pub complete_ms: u64,
    /// Whether it was acknowledged (`false`: unknown outcome).
    pub ok: bool,
}

/// The kinds of registry operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegKind {
    /// Register (or renew) a node.
    Register(String),
    /// Deregister a node.
    Deregister(String),
    /// A linearizable GetService: the node ids it returned.
    Read {
        /// Node ids returned (empty when the service was not found).
        nodes: BTreeSet<String>,
        /// For a final read: the cluster node it was sent to.
        final_on: Option<u64>,
    },
}

/// The registrar's operations, shared with the run.
#[derive(Debug, Clone, Default)]
pub struct RegistryLog(Arc<Mutex<Vec<RegOp>>>);

impl RegistryLog {
    fn push(&self, op: RegOp) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(op);
    }

    /// Every operation so far.
    pub fn ops(&self) -> Vec<RegOp> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn options() -> Option<pb::Options> {
    Some(pb::Options {
        ttl: i64::try_from(REGISTRATION_TTL_SECS).unwrap_or(2),
        domain: "micro".to_owned(),
    })
}

fn service(node: &str) -> pb::Service {
    pb::Service {
        name: SERVICE.to_owned(),
        version: "latest".to_owned(),
        nodes: vec![pb::Node {
            id: node.to_owned(),
            address: format!("{node}:1"),
            ..pb::Node::default()
        }],
        options: options(),
        ..pb::Service::default()
    }
}

/// Sends `kind` to node `target`; returns the operation as it ended.
async fn perform(target: u64, kind: RegKind) -> RegOp {
    let invoke_ms = sim_ms();
    let answer = async {
        let mut client = RegistryClient::new(channel(&proxy_addr(target)).map_err(|_| ())?);
        match &kind {
            RegKind::Register(node) => client.register(service(node)).await.map(|_| None),
            RegKind::Deregister(node) => client.deregister(service(node)).await.map(|_| None),
            RegKind::Read { .. } => {
                let request = pb::GetRequest {
                    service: SERVICE.to_owned(),
                    options: options(),
                };
                match client.get_service(request).await {
                    Ok(reply) => Ok(Some(
                        reply
                            .into_inner()
                            .services
                            .into_iter()
                            .flat_map(|s| s.nodes.into_iter().map(|n| n.id))
                            .collect(),
                    )),
                    Err(status) if status.code() == tonic::Code::NotFound => {
                        Ok(Some(BTreeSet::new()))
                    }
                    Err(status) => Err(status),
                }
            }
        }
        .map_err(|_| ())
    };
    let answer = tokio::time::timeout(OP_TIMEOUT, answer).await;
    let (ok, read) = match answer {
        Ok(Ok(read)) => (true, read),
        _ => (false, None),
    };
    let kind = match (kind, read) {
        (RegKind::Read { final_on, .. }, Some(nodes)) => RegKind::Read { nodes, final_on },
        (other, _) => other,
    };
    RegOp {
        kind,
        invoke_ms,
        complete_ms: sim_ms(),
        ok,
    }
}

/// Runs the registry workload of `plan` until the faults heal, then the final reads.
pub async fn registrar(plan: Plan, log: RegistryLog, trace: Trace) -> turmoil::Result {
    let mut dice = Dice::new(plan.registrar_seed);
    let nodes: Vec<u64> = (1..=plan.founders).collect();
    let pick =
        |dice: &mut Dice| nodes[usize::try_from(dice.below(nodes.len() as u64)).unwrap_or(0)];
    tokio::time::sleep(Duration::from_millis(800 + dice.below(400))).await;
    let mut last_register_ms = 0;
    while sim_ms() < plan.heal_at_ms() {
        let node = NODES[usize::try_from(dice.below(NODES.len() as u64)).unwrap_or(0)].to_owned();
        let kind = match dice.below(100) {
            0..50 => RegKind::Register(node),
            50..70 => RegKind::Deregister(node),
            _ => RegKind::Read {
                nodes: BTreeSet::new(),
                final_on: None,
            },
        };
        let op = perform(pick(&mut dice), kind).await;
        trace.event(op.complete_ms, format_args!("registry {op:?}"));
        if matches!(op.kind, RegKind::Register(_)) {
            last_register_ms = op.complete_ms;
        }
        log.push(op);
        tokio::time::sleep(Duration::from_millis(dice.between(100, 500))).await;
    }
    // Late enough that every acknowledged registration has expired, but within the
    // final-read window every client shares.
    let window_end = plan.final_reads_at_ms() + FINAL_READS_MS;
    let start = plan
        .final_reads_at_ms()
        .max((last_register_ms + EXPIRY_WAIT_MS).min(window_end - FINAL_READS_MS / 2));
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(sim_ms()))).await;
    for target in nodes.iter().copied() {
        // A node that stays crashed never answers: the others still get their turn.
        while sim_ms() < window_end {
            let kind = RegKind::Read {
                nodes: BTreeSet::new(),
                final_on: Some(target),
            };
            let op = perform(target, kind).await;
            trace.event(op.complete_ms, format_args!("registry final {op:?}"));
            let ok = op.ok;
            log.push(op);
            if ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
