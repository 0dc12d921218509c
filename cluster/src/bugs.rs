//! [`InjectedBug`]: known bugs the simulation plants to prove its checkers catch them.
//!
//! Compiled only with the `inject-bugs` feature, which only the simulation enables, and
//! active only on a node whose [`RaftNodeConfig::bug`](crate::RaftNodeConfig) names one.

use serde::{Deserialize, Serialize};

/// A deliberate correctness bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InjectedBug {
    /// The leader acknowledges a write as soon as it is queued, before a majority has
    /// it: a crash or a lost election then loses an acknowledged write, and a read right
    /// after the acknowledgement may miss it.
    AckBeforeCommit,
    /// Reads skip the read index and serve whatever this replica has applied: a lagging
    /// follower or a deposed leader returns stale values.
    StaleRead,
}

impl InjectedBug {
    /// Every bug, for sweeps.
    pub const ALL: [Self; 2] = [Self::AckBeforeCommit, Self::StaleRead];

    /// The bug's name in commands and output.
    pub fn name(self) -> &'static str {
        match self {
            Self::AckBeforeCommit => "ack-before-commit",
            Self::StaleRead => "stale-read",
        }
    }

    /// The bug named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|bug| bug.name() == name)
    }
}
