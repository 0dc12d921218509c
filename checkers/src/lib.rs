//! # micro-checkers
//!
//! What a client saw, and whether it could have happened. A test records every operation
//! it made into a [`history::History`] (when it was sent, when it was answered, what came
//! back, or that the outcome is unknown) and asks [`linearizable::check_all`] whether a
//! single register per key, changing atomically at one instant inside each operation,
//! explains everything every client saw.
//!
//! Two kinds of run record histories: the deterministic simulation
//! (`micro-simulation-tests`, simulated milliseconds) and the fault tests on real
//! `micro-node` processes (`cli/tests/faults`, real milliseconds). The checker is the
//! same, so a history is judged the same way whichever produced it.

pub mod history;
pub mod linearizable;
