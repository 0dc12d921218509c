//! [`run_seed`]: one simulated run, from seed to verdict.

use std::collections::{BTreeMap, BTreeSet};

use micro_cluster::InjectedBug;

use crate::checkers::{Observations, Violation, check_all};
use crate::cluster::SimCluster;
use crate::history::History;
use crate::plan::{CONVERGE_MS, FINAL_READS_MS, Plan};
use crate::trace::Trace;
use crate::workload::{Client, admin};

/// How a run is made.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// A bug to plant in every node.
    pub bug: Option<InjectedBug>,
    /// Keep the trace's lines (for `SIM_TRACE=1`), not only its hash.
    pub keep_trace: bool,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The plan it followed.
    pub plan: Plan,
    /// The hash of everything observable: the same seed must give the same hash.
    pub trace_hash: u64,
    /// The trace's lines, if kept.
    pub trace: Vec<String>,
    /// Client operations, and how many of them ended unknown.
    pub ops: (usize, usize),
    /// Registry operations of the registrar.
    pub registry_ops: usize,
    /// Events published (acknowledged), and deliveries to the consumer group.
    pub events: (usize, usize, usize),
    /// Terms in which a leader was seen.
    pub terms: usize,
    /// Simulated time the run took (ms).
    pub sim_ms: u64,
    /// Every property broken.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Whether every property held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// One line: the seed, its shape and its verdict.
    pub fn summary(&self) -> String {
        let verdict = if self.passed() {
            "ok".to_owned()
        } else {
            format!("FAILED ({} violations)", self.violations.len())
        };
        format!(
            "seed {} nodes {}+{} clients {} faults {} ops {} ({} unknown) registry {} events {} ({} acked, {} delivered) terms {} sim {} ms trace {:016x}: {verdict}",
            self.seed,
            self.plan.founders,
            self.plan.standbys,
            self.plan.clients,
            self.plan.faults.len(),
            self.ops.0,
            self.ops.1,
            self.registry_ops,
            self.events.0,
            self.events.1,
            self.events.2,
            self.terms,
            self.sim_ms,
            self.trace_hash,
        )
    }
}

/// Seeds that found real bugs in an optimized (`--release`) build, with what they found;
/// `sim --regressions` runs them (CI does, in release). Seeds found by `cargo test`'s
/// debug builds live in `tests/sim/t90_regressions.rs` instead: the two profiles take
/// different paths from one seed.
pub const RELEASE_REGRESSIONS: [(u64, &str); 6] = [
    (
        314,
        "a leader restarted after a crash resumed leading in its term without the entries \
         its followers had committed, reused their log ids and lost an acknowledged write",
    ),
    (
        191,
        "after healing, the three voters campaigned in step and elected nobody for 25 s",
    ),
    (
        402,
        "after healing, the voters elected nobody and the clients could not read for 25 s",
    ),
    (
        1635,
        "five voters whose fixed election timeouts fell on the same tick split every vote \
         for 40 s",
    ),
    (
        1651,
        "after healing, the voters split every vote and the clients could not read for 25 s",
    ),
    (
        1988,
        "checker: a delete still running when a final read began was taken as finished",
    ),
];

/// The command that replays `seed` (with `bug` planted). It names the build profile
/// this run was made in: optimized and debug builds schedule differently, so a seed
/// replays exactly only in the profile that ran it.
pub fn replay_command(seed: u64, bug: Option<InjectedBug>) -> String {
    let bug = bug.map_or(String::new(), |b| format!(" --bug {}", b.name()));
    let release = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    format!("cargo run{release} -p micro-simulation-tests --bin sim -- --seed {seed}{bug}")
}

/// Serializes runs within a process (see [`align_task_ids`]).
static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How far apart task ids are aligned at the start of each run.
const TASK_ID_ALIGNMENT: u64 = 1_024;

/// Moves tokio's process-wide task-id counter to a multiple of [`TASK_ID_ALIGNMENT`].
///
/// A crashed host drops its tasks shard by shard, and tokio picks a task's shard from its
/// id; the sockets those tasks own send their last segments in that order, which draws
/// on the network's RNG. Without the alignment a seed would replay exactly only as the
/// first run of a fresh process.
fn align_task_ids() {
    let runtime = tokio::runtime::Builder::new_current_thread().build();
    let Ok(runtime) = runtime else { return };
    runtime.block_on(async {
        for _ in 0..TASK_ID_ALIGNMENT {
            let id = tokio::spawn(async { tokio::task::id() }).await;
            let id = id.ok().and_then(|id| id.to_string().parse::<u64>().ok());
            if id.is_none_or(|id| id % TASK_ID_ALIGNMENT == TASK_ID_ALIGNMENT - 1) {
                return;
            }
        }
    });
}

/// Runs the simulation of `seed` and checks it. Runs in one process take turns, so
/// each starts from the same process-wide state and replays exactly.
pub fn run_seed(seed: u64, options: RunOptions) -> Report {
    let _turn = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    align_task_ids();
    let plan = Plan::from_seed(seed, options.bug);
    let trace = Trace::new(options.keep_trace);
    let history = History::new();
    let mut cluster = SimCluster::new(&plan, trace.clone());
    for client in Client::of_plan(&plan) {
        let host = format!("c{}", client.index);
        cluster
            .sim
            .client(host, client.run(history.clone(), trace.clone()));
    }
    cluster
        .sim
        .client("admin", admin(plan.clone(), trace.clone()));
    let registry_log = crate::registrar::RegistryLog::default();
    cluster.sim.client(
        "registrar",
        crate::registrar::registrar(plan.clone(), registry_log.clone(), trace.clone()),
    );
    let events_log = crate::eventer::EventsLog::default();
    cluster.sim.client(
        "events",
        crate::eventer::eventer(plan.clone(), events_log.clone(), trace.clone()),
    );
    let mut driver = Driver::default();
    let mut violations = Vec::new();
    if let Err(failure) = driver.run_phases(&plan, &mut cluster) {
        violations.push(Violation {
            checker: "simulation",
            detail: failure,
        });
    }
    let final_states = driver.converge(&mut cluster);
    let ops = history.ops();
    let observations = Observations {
        ops,
        leaders_by_term: driver.leaders_by_term,
        final_states,
        clients: plan.clients,
        registry: registry_log.ops(),
        events: events_log.observed(),
    };
    violations.extend(check_all(&observations));
    let unknown = observations.ops.iter().filter(|op| !op.is_ok()).count();
    Report {
        seed,
        trace_hash: trace.hash(),
        trace: trace.lines(),
        ops: (observations.ops.len(), unknown),
        registry_ops: observations.registry.len(),
        events: observations.events.counts(),
        terms: observations.leaders_by_term.len(),
        sim_ms: elapsed_ms(&cluster),
        violations,
        plan,
    }
}

fn elapsed_ms(cluster: &SimCluster<'_>) -> u64 {
    u64::try_from(cluster.sim.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The driver's observations while it steps the simulation.
#[derive(Debug, Default)]
struct Driver {
    leaders_by_term: BTreeMap<u64, BTreeSet<u64>>,
    /// Each node's last seen (term, leader), to trace changes only.
    last_view: BTreeMap<u64, (u64, Option<u64>)>,
}

impl Driver {
    /// Steps through warm-up, faults, the healed phase and the final reads, until every
    /// client is done.
    fn run_phases(&mut self, plan: &Plan, cluster: &mut SimCluster<'_>) -> Result<(), String> {
        let give_up = plan.final_reads_at_ms() + 1_000 + FINAL_READS_MS + 10_000;
        let mut faults = plan.faults.iter().peekable();
        let mut healed = false;
        loop {
            let done = cluster
                .sim
                .step()
                .map_err(|e| format!("a host failed: {e}"))?;
            let now = elapsed_ms(cluster);
            while let Some((_, fault)) = faults.next_if(|(at, _)| *at <= now) {
                cluster.apply(fault);
            }
            if !healed && now >= plan.heal_at_ms() {
                cluster.heal();
                healed = true;
            }
            self.observe(cluster, now);
            if done {
                return Ok(());
            }
            if now > give_up {
                return Err(format!("the clients were not done after {now} ms"));
            }
        }
    }

    /// Samples every node's view of leader and term.
    fn observe(&mut self, cluster: &SimCluster<'_>, now: u64) {
        for (id, status) in cluster.statuses() {
            let view = (status.term, status.leader);
            if let Some(leader) = status.leader {
                self.leaders_by_term
                    .entry(status.term)
                    .or_default()
                    .insert(leader);
            }
            if self.last_view.insert(id, view) != Some(view) {
                cluster.trace().event(
                    now,
                    format_args!("n{id} term {} leader {:?}", view.0, view.1),
                );
            }
        }
    }

    /// Steps on until every member has applied the same state (or time runs out), and
    /// returns each member's applied position and digest.
    fn converge(&mut self, cluster: &mut SimCluster<'_>) -> BTreeMap<u64, Option<(Vec<u8>, u64)>> {
        let until = elapsed_ms(cluster) + CONVERGE_MS;
        loop {
            let members = cluster.members();
            let states: BTreeMap<u64, Option<(Vec<u8>, u64)>> = members
                .iter()
                .map(|id| (*id, cluster.state_digest(*id)))
                .collect();
            let distinct: BTreeSet<_> = states.values().collect();
            let now = elapsed_ms(cluster);
            if (distinct.len() == 1 && !states.values().any(Option::is_none)) || now > until {
                cluster
                    .trace()
                    .event(now, format_args!("converged {states:?}"));
                return states;
            }
            if cluster.sim.step().is_err() {
                return states;
            }
            self.observe(cluster, elapsed_ms(cluster));
        }
    }
}

/// [`run_seed`], with a panic anywhere in the run (a node, a client, the driver) turned
/// into a violation of its seed instead of ending the sweep.
pub fn run_seed_catching(seed: u64, options: RunOptions) -> Report {
    let run = std::panic::catch_unwind(|| run_seed(seed, options));
    run.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "unknown panic".to_owned());
        Report {
            seed,
            plan: Plan::from_seed(seed, options.bug),
            trace_hash: 0,
            trace: Vec::new(),
            ops: (0, 0),
            registry_ops: 0,
            events: (0, 0, 0),
            terms: 0,
            sim_ms: 0,
            violations: vec![Violation {
                checker: "panic",
                detail: why,
            }],
        }
    })
}
