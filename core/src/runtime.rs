//! The runtime's replicated desired state: which services should run, where, and how
//! they are doing.
//!
//! `micro run helloworld` proposes a [`RuntimeService`] with status `pending` and the node
//! chosen to run it; that node's reconciler starts it and records `running` (or
//! `error`); `micro kill` deletes the entry and the node stops it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a service comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A service compiled into the node binary, started in-node by name.
    Builtin(String),
}

/// The lifecycle status of a runtime service (v3's numeric enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Status {
    /// Unknown.
    #[default]
    Unknown,
    /// Accepted, not started yet.
    Pending,
    /// Being built.
    Building,
    /// Starting.
    Starting,
    /// Serving.
    Running,
    /// Being stopped.
    Stopping,
    /// Stopped.
    Stopped,
    /// Failed; metadata `error` says why.
    Error,
}

impl Status {
    /// The wire number (v3's `status` int32).
    pub fn number(self) -> i32 {
        match self {
            Self::Unknown => 0,
            Self::Pending => 1,
            Self::Building => 2,
            Self::Starting => 3,
            Self::Running => 4,
            Self::Stopping => 5,
            Self::Stopped => 6,
            Self::Error => 7,
        }
    }

    /// From the wire number (unknown numbers are `Unknown`).
    pub fn from_number(n: i32) -> Self {
        match n {
            1 => Self::Pending,
            2 => Self::Building,
            3 => Self::Starting,
            4 => Self::Running,
            5 => Self::Stopping,
            6 => Self::Stopped,
            7 => Self::Error,
            _ => Self::Unknown,
        }
    }

    /// The lower-case name (`running`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Pending => "pending",
            Self::Building => "building",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Error => "error",
        }
    }
}

/// One desired service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeService {
    /// Name.
    pub name: String,
    /// Version (`latest` by default).
    pub version: String,
    /// What to run.
    pub source: Source,
    /// The Raft node id assigned to run it.
    pub node_id: u64,
    /// Status as last reported.
    pub status: Status,
    /// Metadata (`owner`, `started`, `error`, ...).
    pub metadata: BTreeMap<String, String>,
    /// Log time of the last change (Unix ms).
    pub updated_ms: u64,
}
