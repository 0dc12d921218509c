//! Fault tests on real `micro-node` processes (issue #11): SIGKILL loops, rolling
//! restarts, network partitions between network namespaces, corrupted and full disks.
//! The simulation (`micro-simulation-tests`) proves the algorithm; these prove the
//! binary. Each test checks the guarantee the README's "Guarantees" section names for it.
//!
//! The tests take turns (one cluster at a time): they measure availability, which
//! another cluster's CPU would distort. `MICRO_CHAOS_SECS` lengthens the kill loop (60 s
//! by default); `MICRO_CHAOS_SEED` replays its schedule.

// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used)]
// Real processes in real time: the simulated-time rules do not apply.
#![allow(clippy::disallowed_methods)]

mod harness;
mod t10_kill_loop;
mod t20_rolling_restart;
mod t30_partition;
mod t40_disk;
mod workload;
