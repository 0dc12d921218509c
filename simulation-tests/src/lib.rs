//! # micro-simulation-tests
//!
//! Deterministic simulation of Micro clusters. Every node is assembled by the same
//! [`micro_cli::node::start_node`] as `micro-node`, but on turmoil's simulated network,
//! an in-memory disk that loses unsynced writes when its host crashes, a simulated clock
//! (with per-node skew) and RNGs seeded from one `u64`. One seed decides everything: the
//! cluster's size, the fault schedule, the workload and every scheduling choice, so a
//! failing seed replays exactly.
//!
//! ```text
//! seed ─> Plan (nodes, faults, workload, bug)
//!      ─> turmoil Sim: hosts n1..nN (start_node) + clients c1..cK (+ admin, registrar,
//!         events)
//!      ─> driver loop: step 1 ms, apply due faults, sample every node's Raft view
//!      ─> phases: warm-up │ faults │ healed (clients go on) │ final reads │ converge
//!      ─> checkers (one per file in `checkers/`) over the history and the samples
//!      ─> Report { seed, trace hash, violations }
//! ```
//!
//! ## Determinism
//!
//! Everything a node does runs on its host's current-thread tokio runtime with paused
//! time; turmoil seeds the network and each runtime's RNG, [`micro_cluster::SeededRuntime`]
//! seeds openraft's election timeouts, and every choice of the plan, the clients and the
//! faults comes from [`plan::Dice`]. Two process-wide things remain, and [`run_seed`]
//! neutralizes both: runs in one process take turns (other threads' runs would interleave
//! tokio's global task ids), and each run starts with the task-id counter aligned, since a
//! crashed host drops its tasks in an order derived from their ids. The test
//! `t20_replay` and the bug tests' replays check the result.
//!
//! Entry points: `cargo test -p micro-simulation-tests` (a CI-sized sweep), the `sim`
//! binary for long sweeps and replays (`cargo run --release -p micro-simulation-tests
//! --bin sim -- --seed N`).

#[cfg(not(tokio_unstable))]
compile_error!(
    "the simulation needs `--cfg tokio_unstable` (set in the workspace's .cargo/config.toml) \
     so turmoil can seed tokio's scheduler"
);

pub mod checkers;
pub mod clock;
pub mod cluster;
pub mod eventer;
pub mod faults;
pub use micro_checkers::history;
pub mod net;
pub mod plan;
pub mod registrar;
pub mod run;
pub mod trace;
pub mod workload;

pub use plan::Plan;
pub use run::{
    RELEASE_REGRESSIONS, Report, RunOptions, replay_command, run_seed, run_seed_catching,
};
