//! Calls between nodes that are not openraft's own.

use micro_core::cluster::MembershipChange;
use micro_core::state::Command;
use serde::{Deserialize, Serialize};

/// What a node asks of a peer besides Raft's own RPCs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerCall {
    /// Propose this command (the callee must be the leader).
    Forward(Box<Command>),
    /// The leader's read index.
    ReadIndex,
    /// Change membership (the callee must be the leader).
    Membership(MembershipChange),
    /// Allow or forbid this node to start elections (leadership transfer).
    SetElect(bool),
    /// Start an election now (leadership transfer).
    Campaign,
    /// You were removed from the cluster: stop campaigning and refuse client requests
    /// (a removed node never receives the log entry that removes it). Carries the log
    /// index of the membership entry that removed it: replication up to that index is
    /// the leader's last word before the removal, only a later entry means re-added.
    Removed(u64),
}
