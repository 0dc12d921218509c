//! [`SimCluster`]: the nodes of a run on a turmoil simulation, assembled by the
//! production [`start_node`], and the driver's hands on them (faults, observations).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use micro_cli::node::{NodeConfig, NodeDeps, RunningNode, StorageKind, start_node};
use micro_core::cluster::ClusterStatus;
use micro_core::kv::{KeyRange, KvBackend, MemKvBackend, ScanOrder, Space};

use crate::clock::SimClock;
use crate::faults::{Fault, LATENCY_MAX_MS};
use crate::net::{SimConnector, SimListener};
use crate::plan::{Dice, Plan, node_host, peer_addr};
use crate::trace::Trace;

/// Where every running node puts its handle, so the driver can observe it.
type Registry = Arc<Mutex<BTreeMap<u64, RunningNode>>>;

/// What the driver keeps of one node across crashes: its disk and its clock.
#[derive(Debug)]
struct NodeParts {
    kv: Arc<MemKvBackend>,
    clock: SimClock,
    running: bool,
}

/// The nodes of a run and the simulation they live in.
pub struct SimCluster<'a> {
    /// The turmoil simulation.
    pub sim: turmoil::Sim<'a>,
    parts: BTreeMap<u64, NodeParts>,
    registry: Registry,
    trace: Trace,
}

impl std::fmt::Debug for SimCluster<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCluster")
            .field("nodes", &self.parts.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The configuration of node `id` in `plan`, as `micro-node` would resolve it.
fn node_config(plan: &Plan, id: u64, snapshot_every: u64) -> NodeConfig {
    let founders: BTreeMap<u64, String> = (1..=plan.founders).map(|n| (n, peer_addr(n))).collect();
    let founder = id <= plan.founders;
    NodeConfig {
        node_id: id,
        data_dir: PathBuf::from(format!("/sim/{}", node_host(id))),
        api_addr: "0.0.0.0:8080".to_owned(),
        proxy_addr: "0.0.0.0:8081".to_owned(),
        peer_addr: peer_addr(id),
        storage: StorageKind::Memory,
        peers: if founder { founders } else { BTreeMap::new() },
        join: None,
        standby: !founder,
        snapshot_every,
        body_limit: micro_cli::node::BODY_LIMIT_DEFAULT,
        admin_password: micro_cli::node::Secret("micro".to_owned()),
        events_retention: std::time::Duration::from_secs(24 * 3600),
        build_dir: None,
        run_as: None,
        disk_reserve: 0,
        tls: None,
        runtime: micro_cli::node::RuntimeConfig::Local,
    }
}

impl<'a> SimCluster<'a> {
    /// Builds the simulation of `plan` and registers its node hosts.
    pub fn new(plan: &Plan, trace: Trace) -> Self {
        let sim = turmoil::Builder::new()
            .simulation_duration(Duration::from_secs(3_600))
            .tick_duration(Duration::from_millis(1))
            .min_message_latency(Duration::from_millis(crate::faults::LATENCY_MIN_MS))
            .max_message_latency(Duration::from_millis(LATENCY_MAX_MS))
            .tcp_capacity(65_536)
            .epoch(std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
            .enable_random_order()
            .rng_seed(plan.net_seed)
            .build();
        let mut cluster = Self {
            sim,
            parts: BTreeMap::new(),
            registry: Registry::default(),
            trace,
        };
        let mut dice = Dice::new(plan.net_seed ^ 0x5eed);
        // Small snapshot intervals, so snapshots, purges and snapshot installs all happen.
        let snapshot_every = dice.between(100, 1_000);
        for id in plan.node_ids() {
            cluster.add_node(plan, id, snapshot_every);
        }
        cluster
    }

    fn add_node(&mut self, plan: &Plan, id: u64, snapshot_every: u64) {
        let parts = NodeParts {
            kv: Arc::new(MemKvBackend::new()),
            clock: SimClock::new(),
            running: true,
        };
        let (kv, clock, registry) = (parts.kv.clone(), parts.clock.clone(), self.registry.clone());
        let config = node_config(plan, id, snapshot_every);
        let (bug, raft_seed) = (plan.bug, plan.seed.rotate_left(17) ^ id);
        self.sim.host(node_host(id), move || {
            let (kv, clock, registry, config) =
                (kv.clone(), clock.clone(), registry.clone(), config.clone());
            async move {
                let deps = NodeDeps {
                    kv,
                    clock: Arc::new(clock),
                    proxy_listener: SimListener::bind(8081).await?,
                    api_listener: SimListener::bind(8080).await?,
                    peer_listener: SimListener::bind(7000).await?,
                    connector: Arc::new(SimConnector),
                    seed: Some(raft_seed),
                    tune_raft: Some(Box::new(move |raft| raft.bug = bug)),
                    builtins: micro_cli::builtins(),
                    enforce_auth: false,
                };
                let node = start_node(&config, deps).await.map_err(|e| e.to_string())?;
                registry
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(config.node_id, node);
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        self.parts.insert(id, parts);
    }

    /// Every node id.
    pub fn node_ids(&self) -> Vec<u64> {
        self.parts.keys().copied().collect()
    }

    /// How each running, started node sees the cluster now.
    pub fn statuses(&self) -> BTreeMap<u64, ClusterStatus> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(id, node)| (*id, node.cluster_status()))
            .collect()
    }

    /// The node that leads in the highest term any running node knows of.
    pub fn leader(&self) -> Option<u64> {
        self.statuses()
            .values()
            .filter(|s| s.leader == Some(s.node_id))
            .max_by_key(|s| s.term)
            .map(|s| s.node_id)
    }

    /// The trace the cluster adds its faults to.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The members (voters and learners) of the cluster as its leader sees it, or as
    /// the running nodes see it while there is no leader.
    pub fn members(&self) -> Vec<u64> {
        let statuses = self.statuses();
        let view = self
            .leader()
            .and_then(|leader| statuses.get(&leader))
            .or_else(|| statuses.values().max_by_key(|s| s.term));
        view.map(|s| s.members.iter().map(|m| m.id).collect())
            .unwrap_or_default()
    }

    /// The applied position and a digest of the replicated state (the state machine's
    /// spaces) of node `id`'s disk.
    pub fn state_digest(&self, id: u64) -> Option<(Vec<u8>, u64)> {
        let kv = &self.parts.get(&id)?.kv;
        let applied = kv.get(Space::Meta, b"raft_last_applied").ok()??;
        let mut hash = 0xcbf2_9ce4_8422_2325_u64;
        let all = KeyRange::prefix(b"");
        for space in Space::STATE {
            let scanned = kv.scan(space, &all, ScanOrder::Asc, &mut |key, value| {
                for byte in key.iter().chain(&[0xff]).chain(value).chain(&[0xfe]) {
                    hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
                }
                true
            });
            scanned.ok()?;
        }
        Some((applied, hash))
    }

    /// Applies `fault` now.
    pub fn apply(&mut self, fault: &Fault) {
        let now = u64::try_from(self.sim.elapsed().as_millis()).unwrap_or(u64::MAX);
        let applied = match fault {
            Fault::Partition { side } => {
                for a in side {
                    for b in self.node_ids().iter().filter(|b| !side.contains(b)) {
                        self.sim.partition(node_host(*a), node_host(*b));
                    }
                }
                true
            }
            Fault::PartitionOneway { from, to } => {
                self.sim.partition_oneway(node_host(*from), node_host(*to));
                true
            }
            Fault::IsolateLeader => match self.leader() {
                Some(leader) => {
                    self.apply(&Fault::Partition { side: vec![leader] });
                    self.trace
                        .event(now, format_args!("isolate leader n{leader}"));
                    true
                }
                None => false,
            },
            Fault::RepairAll => {
                self.repair_all();
                true
            }
            Fault::Crash(id) => self.crash(*id),
            Fault::Restart(id) => self.restart(*id),
            Fault::Skew { node, ms } => self.parts.get(node).is_some_and(|p| {
                p.clock.set_skew(*ms);
                true
            }),
            Fault::Loss { per_second } => {
                // One check per link per 1 ms tick.
                self.sim.set_fail_rate(*per_second as f64 / 1_000.0);
                true
            }
            Fault::Delay { max_ms } => {
                self.sim
                    .set_max_message_latency(Duration::from_millis(*max_ms));
                true
            }
            Fault::Hold { a, b } => {
                self.sim.hold(node_host(*a), node_host(*b));
                true
            }
            Fault::Release { a, b } => {
                self.sim.release(node_host(*a), node_host(*b));
                true
            }
        };
        let skipped = if applied { "" } else { " (skipped)" };
        self.trace
            .event(now, format_args!("fault {fault:?}{skipped}"));
    }

    fn repair_all(&mut self) {
        let ids = self.node_ids();
        for a in &ids {
            for b in ids.iter().filter(|b| a < *b) {
                self.sim.repair(node_host(*a), node_host(*b));
                self.sim.release(node_host(*a), node_host(*b));
            }
        }
    }

    /// Crashes node `id`: its tasks stop and its disk loses what was not synced.
    pub fn crash(&mut self, id: u64) -> bool {
        let Some(parts) = self.parts.get_mut(&id).filter(|p| p.running) else {
            return false;
        };
        parts.running = false;
        self.sim.crash(node_host(id));
        parts.kv.crash();
        // The handle of the dead node goes too (its tasks are gone with its runtime).
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
        true
    }

    /// Starts crashed node `id` again from its disk.
    pub fn restart(&mut self, id: u64) -> bool {
        let Some(parts) = self.parts.get_mut(&id).filter(|p| !p.running) else {
            return false;
        };
        parts.running = true;
        self.sim.bounce(node_host(id));
        true
    }

    /// Ends the fault phase: every link repaired and normal, every node running.
    pub fn heal(&mut self) {
        self.apply(&Fault::RepairAll);
        self.apply(&Fault::Loss { per_second: 0 });
        self.apply(&Fault::Delay {
            max_ms: LATENCY_MAX_MS,
        });
        for id in self.node_ids() {
            if !self.parts[&id].running {
                self.apply(&Fault::Restart(id));
            }
        }
    }
}
