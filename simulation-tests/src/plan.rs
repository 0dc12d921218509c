//! [`Plan`]: everything a run does, drawn from its seed before it starts.

use micro_cluster::InjectedBug;
use micro_core::rng::{Rng, SeededRng};

use crate::faults::{self, Fault};

/// When the fault phase begins: the cluster has formed and the clients have started.
pub const FAULTS_FROM_MS: u64 = 2_000;
/// How long the fault phase lasts.
pub const FAULT_PHASE_MS: u64 = 10_000;
/// How long the clients go on after every fault is healed.
pub const HEALED_PHASE_MS: u64 = 4_000;
/// How long after the healed phase the final reads may take: the cluster must serve
/// again within it (liveness).
pub const FINAL_READS_MS: u64 = 15_000;
/// How long the replicas have, after the final reads, to apply the same state.
pub const CONVERGE_MS: u64 = 10_000;

/// The keys the clients contend on.
pub const KEYS: [&str; 3] = ["k0", "k1", "k2"];

/// A seeded die: the only source of choices in a plan.
#[derive(Debug)]
pub struct Dice(SeededRng);

impl Dice {
    /// A die seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(SeededRng::new(seed))
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A fresh seed for something else.
    pub fn seed(&mut self) -> u64 {
        self.0.next_u64()
    }
}

/// The shape of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The seed everything comes from.
    pub seed: u64,
    /// The founding voters (ids `1..=founders`).
    pub founders: u64,
    /// Nodes started on standby and added (and maybe removed) during the faults.
    pub standbys: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// The seed of turmoil (network latencies, host order, tokio's RNG).
    pub net_seed: u64,
    /// The seeds of the clients' choices.
    pub client_seeds: Vec<u64>,
    /// The seed of the membership changes.
    pub admin_seed: u64,
    /// The seed of the registry workload.
    pub registrar_seed: u64,
    /// The seed of the events workload (drawn last, so older draws keep their values).
    pub events_seed: u64,
    /// The faults, in time order.
    pub faults: Vec<(u64, Fault)>,
    /// A planted bug, if any.
    pub bug: Option<InjectedBug>,
}

impl Plan {
    /// The plan of `seed`, with `bug` planted in every node.
    pub fn from_seed(seed: u64, bug: Option<InjectedBug>) -> Self {
        let mut dice = Dice::new(seed);
        let founders = if dice.percent(70) { 3 } else { 5 };
        let standbys = u64::from(founders == 3 && dice.percent(50));
        let clients = dice.between(2, 4);
        let net_seed = dice.seed();
        let client_seeds = (0..clients).map(|_| dice.seed()).collect();
        let admin_seed = dice.seed();
        let faults = faults::schedule(&mut dice, founders + standbys);
        let registrar_seed = dice.seed();
        let events_seed = dice.seed();
        Self {
            seed,
            founders,
            standbys,
            clients,
            net_seed,
            client_seeds,
            admin_seed,
            registrar_seed,
            events_seed,
            faults,
            bug,
        }
    }

    /// Every node id.
    pub fn node_ids(&self) -> impl Iterator<Item = u64> + use<> {
        1..=self.founders + self.standbys
    }

    /// When the faults are healed.
    pub fn heal_at_ms(&self) -> u64 {
        FAULTS_FROM_MS + FAULT_PHASE_MS
    }

    /// When the clients stop their workload and start the final reads.
    pub fn final_reads_at_ms(&self) -> u64 {
        self.heal_at_ms() + HEALED_PHASE_MS
    }
}

/// The host name of node `id`.
pub fn node_host(id: u64) -> String {
    format!("n{id}")
}

/// The peer address of node `id`.
pub fn peer_addr(id: u64) -> String {
    format!("n{id}:7000")
}

/// The proxy address of node `id`.
pub fn proxy_addr(id: u64) -> String {
    format!("n{id}:8081")
}
