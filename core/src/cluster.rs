//! What a node knows about its cluster: the answer of `cluster.Cluster/Status`.

use serde::{Deserialize, Serialize};

/// The role of a member in the Raft group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Accepts writes and replicates them.
    Leader,
    /// Votes and replicates.
    Follower,
    /// Campaigning for leadership.
    Candidate,
    /// Replicates without a vote.
    Learner,
}

impl Role {
    /// The lower-case name (`"leader"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Follower => "follower",
            Self::Candidate => "candidate",
            Self::Learner => "learner",
        }
    }
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node id.
    pub id: u64,
    /// The peer address (`host:port`).
    pub address: String,
    /// Its role, as this node sees it.
    pub role: Role,
    /// How long ago (ms) this node last heard back from it over the peer network
    /// (`None`: never, or itself). On the leader, which sends heartbeats every 100 ms,
    /// a growing value means the member is down or cut off.
    #[serde(default)]
    pub silent_ms: Option<u64>,
}

/// The cluster as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node answering.
    pub node_id: u64,
    /// The current leader, if one is known.
    pub leader: Option<u64>,
    /// The current Raft term.
    pub term: u64,
    /// Every member, voters and learners.
    pub members: Vec<Member>,
    /// The index of the last committed log entry.
    pub commit_index: u64,
    /// The index of the last applied log entry.
    pub applied_index: u64,
    /// The last log index the latest snapshot covers (0: none yet).
    pub snapshot_index: u64,
    /// The last log index purged from this node's log (0: none).
    pub purged_index: u64,
}

/// A change of membership or leadership, run on the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add a node: first as a learner, then, once it has caught up, as a voter.
    AddNode {
        /// Its id.
        id: u64,
        /// Its peer address.
        addr: String,
    },
    /// Remove a node (voter or learner).
    RemoveNode {
        /// Its id.
        id: u64,
    },
    /// Make another voter the leader.
    TransferLeader {
        /// The voter to lead.
        id: u64,
    },
}
