//! The helloworld service through the code `micro::build` generated, hosted in this
//! process as a node would host it, and as its own process against a cluster.

// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used)]

mod t10_calls;
mod t20_process;
mod t30_config;
mod t40_broker;
mod t50_events;
