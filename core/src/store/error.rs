//! [`StoreError`]: everything a store request can fail with.

use crate::error::{Code, HasCode};

/// A failed store request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The request is invalid (empty key, bad name, bad option).
    #[error("{0}")]
    Invalid(String),
    /// A key, value or metadata is over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// No live record has the key.
    #[error("key {key:?} not found in {database}/{table}")]
    NotFound {
        /// The key asked for.
        key: String,
        /// The database searched.
        database: String,
        /// The table searched.
        table: String,
    },
    /// The cluster cannot serve the request now (no leader, shutting down); retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The request did not finish in time; a write may or may not have been applied.
    #[error("store request timed out: {0}")]
    Timeout(String),
    /// The disk under the leader's data is below its reserve; nothing was written.
    #[error("store write refused: {0}")]
    DiskFull(String),
    /// A failure inside the node (storage, a bug).
    #[error("store internal error: {0}")]
    Internal(String),
}

impl HasCode for StoreError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid(_) => Code::BadRequest,
            Self::TooLarge(_) => Code::PayloadTooLarge,
            Self::NotFound { .. } => Code::NotFound,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Timeout(_) => Code::Timeout,
            Self::Internal(_) => Code::Internal,
            Self::DiskFull(_) => Code::InsufficientStorage,
        }
    }
}
