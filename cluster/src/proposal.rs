//! [`Proposal`]: what one Raft log entry carries. Client commands that arrive together
//! are proposed together (see the node's batcher), so one entry, one fsync and one
//! replication round serve many writes.

use micro_core::state::{Command, Response};
use serde::{Deserialize, Serialize};

/// The payload of a log entry: commands stamped with the leader's wall time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The proposing leader's wall time (Unix ms); log time never goes backwards.
    pub at_ms: u64,
    /// The commands, applied in order.
    pub commands: Vec<Command>,
}

/// The result of applying a [`Proposal`]: one response per command, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Outcomes(pub Vec<Response>);
