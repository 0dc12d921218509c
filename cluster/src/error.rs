//! [`ClusterError`]: why a Raft node could not start or stop.

use micro_core::{Code, HasCode};

/// A failure to start or run a Raft node (not the failure of one request: those are
/// `micro_core::replicator::ReplicaError`).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The Raft configuration is invalid.
    #[error("invalid raft configuration: {0}")]
    Config(String),
    /// The storage could not be opened or read.
    #[error("storage: {0}")]
    Storage(String),
    /// Raft stopped with a fatal error.
    #[error("raft: {0}")]
    Raft(String),
}

impl HasCode for ClusterError {
    fn code(&self) -> Code {
        match self {
            Self::Config(_) => Code::BadRequest,
            Self::Storage(_) | Self::Raft(_) => Code::Internal,
        }
    }
}
