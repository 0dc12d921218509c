//! System tests: real `micro-node` processes and the `micro` CLI, run as a user runs them.
//! Every test starts its own node on port 0 with a temporary data directory.

// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used)]
// System tests drive real processes in real time: the simulated-time rules do not apply.
#![allow(clippy::disallowed_methods)]

mod harness;
mod t05_deploy;
mod t10_store_cli;
mod t15_backup;
mod t20_durability;
mod t30_grpc_contract;
mod t40_cluster;
mod t50_services;
mod t60_auth;
mod t70_config;
mod t80_broker;
mod t90_events;
mod t92_tls;
mod t93_limits;
mod t95_python;
mod t96_blobs;
mod t97_runtime;
mod t98_env;
mod t99_metrics;
