//! Three-node clusters in one process: real nodes (gRPC on loopback, port 0, memory
//! storage that loses unsynced writes on a simulated crash), driven through their proxies.

// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used)]

mod harness;
mod t10_forming;
mod t20_failover;
mod t30_membership;
