//! The openraft type configuration of Micro.

// `declare_raft_types!` names the default snapshot type as a bare `Cursor`.
use std::io::Cursor;

use crate::proposal::{Outcomes, Proposal};
use crate::runtime::SeededRuntime;

openraft::declare_raft_types!(
    /// Micro's Raft types: log entries carry a [`Proposal`] (a batch of core commands),
    /// apply returns their [`Outcomes`], node ids are `u64`, and the runtime's RNG can be seeded.
    pub TypeConfig:
        D = Proposal,
        R = Outcomes,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = SeededRuntime,
);
