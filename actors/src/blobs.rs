//! Blobs for a node: writes chunked into log entries of at most [`CHUNK_LEN`] and
//! committed at the end, reads after a read barrier, chunk by chunk.
//!
//! ```text
//! write(ns, key, bytes...) ─re-chunk─> BlobChunk 0, 1, 2 ... ─Raft─> staged chunks
//!                          ─────────> BlobCommit(key -> upload) ─Raft─> visible, old chunks gone
//! read(ns, key) ─read barrier─ manifest ─> chunk 0, chunk 1, ...  (from this node's state)
//! ```
//!
//! A write that fails half-way leaves a staged upload nobody points at; a tick purges it
//! after [`micro_core::state::blobs::STAGING_TTL_MS`].

use std::sync::Arc;

use micro_core::Namespace;
use micro_core::replicator::Replicator;
use micro_core::rng::Rng;
use micro_core::state::{Command, Response, blobs::Manifest};
use micro_core::{Code, MicroError};

/// The largest chunk one log entry carries.
pub const CHUNK_LEN: usize = 1024 * 1024;
/// The largest blob a node accepts.
pub const BLOB_LEN_MAX: u64 = 1024 * 1024 * 1024;
/// The longest blob key.
pub const KEY_LEN_MAX: usize = 1024;

/// The blob engine of a node; cheap to clone.
#[derive(Clone)]
pub struct BlobHandle {
    replicator: Arc<dyn Replicator>,
    rng: Arc<dyn Rng>,
}

impl std::fmt::Debug for BlobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobHandle").finish_non_exhaustive()
    }
}

fn unavailable(err: &dyn std::fmt::Display) -> MicroError {
    MicroError::new("store", Code::Unavailable, err.to_string())
}

fn error(code: Code, detail: impl Into<String>) -> MicroError {
    MicroError::new("store", code, detail)
}

/// Checks a blob key: 1 to [`KEY_LEN_MAX`] bytes.
pub fn validate_key(key: &str) -> Result<(), MicroError> {
    if key.is_empty() || key.len() > KEY_LEN_MAX {
        return Err(error(
            Code::BadRequest,
            format!("a blob key must be 1 to {KEY_LEN_MAX} bytes"),
        ));
    }
    Ok(())
}

/// A blob write in progress: feed it bytes, then commit.
#[derive(Debug)]
pub struct BlobWriter {
    handle: BlobHandle,
    namespace: Namespace,
    key: String,
    upload: String,
    pending: Vec<u8>,
    chunks: u32,
    size: u64,
}

impl BlobWriter {
    /// Adds `bytes` to the blob, storing every full chunk.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), MicroError> {
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.size > BLOB_LEN_MAX {
            return Err(error(
                Code::PayloadTooLarge,
                format!("a blob is at most {BLOB_LEN_MAX} bytes"),
            ));
        }
        self.pending.extend_from_slice(bytes);
        while self.pending.len() >= CHUNK_LEN {
            let rest = self.pending.split_off(CHUNK_LEN);
            let chunk = std::mem::replace(&mut self.pending, rest);
            self.store(chunk).await?;
        }
        Ok(())
    }

    async fn store(&mut self, data: Vec<u8>) -> Result<(), MicroError> {
        let command = Command::BlobChunk {
            namespace: self.namespace.clone(),
            upload: self.upload.clone(),
            index: self.chunks,
            data,
        };
        self.handle.propose(command).await?;
        self.chunks += 1;
        Ok(())
    }

    /// Stores what is left and makes the blob visible under its key.
    pub async fn commit(mut self) -> Result<(), MicroError> {
        if !self.pending.is_empty() || self.chunks == 0 {
            let last = std::mem::take(&mut self.pending);
            self.store(last).await?;
        }
        let command = Command::BlobCommit {
            namespace: self.namespace,
            key: self.key,
            manifest: Manifest {
                upload: self.upload,
                chunks: self.chunks,
                size: self.size,
            },
        };
        match self.handle.propose(command).await? {
            Response::Refused { reason } => Err(error(Code::Conflict, reason)),
            _ => Ok(()),
        }
    }
}

impl BlobHandle {
    /// Blobs over `replicator`'s state; upload ids drawn from `rng`.
    pub fn new(replicator: Arc<dyn Replicator>, rng: Arc<dyn Rng>) -> Self {
        Self { replicator, rng }
    }

    async fn propose(&self, command: Command) -> Result<Response, MicroError> {
        self.replicator
            .propose(command)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// Starts writing blob `key` of `namespace`.
    pub fn writer(&self, namespace: &Namespace, key: &str) -> Result<BlobWriter, MicroError> {
        validate_key(key)?;
        let upload = format!("{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64());
        Ok(BlobWriter {
            handle: self.clone(),
            namespace: namespace.clone(),
            key: key.to_owned(),
            upload,
            pending: Vec::new(),
            chunks: 0,
            size: 0,
        })
    }

    /// A reader of the state after a read barrier: what it reads is linearizable.
    async fn read_now(&self) -> Result<micro_core::state::StateReader, MicroError> {
        self.replicator
            .read_barrier()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(self.replicator.reader())
    }

    /// The manifest of blob `key`, linearizably (`NotFound` if there is none).
    pub async fn open(&self, namespace: &Namespace, key: &str) -> Result<Manifest, MicroError> {
        validate_key(key)?;
        self.read_now()
            .await?
            .blob_manifest(namespace, key)
            .map_err(|e| unavailable(&e.0))?
            .ok_or_else(|| error(Code::NotFound, format!("no blob {key:?}")))
    }

    /// Chunk `index` of an opened blob. A chunk gone since the blob was opened (it was
    /// replaced or deleted meanwhile) is `NotFound`.
    pub fn chunk(
        &self,
        namespace: &Namespace,
        manifest: &Manifest,
        index: u32,
    ) -> Result<Vec<u8>, MicroError> {
        self.replicator
            .reader()
            .blob_chunk(namespace, &manifest.upload, index)
            .map_err(|e| unavailable(&e.0))?
            .ok_or_else(|| error(Code::NotFound, "the blob changed while it was read"))
    }

    /// Deletes blob `key`; whether it existed.
    pub async fn delete(&self, namespace: &Namespace, key: &str) -> Result<bool, MicroError> {
        validate_key(key)?;
        let command = Command::BlobDelete {
            namespace: namespace.clone(),
            key: key.to_owned(),
        };
        match self.propose(command).await? {
            Response::Deleted { existed } => Ok(existed),
            _ => Ok(true),
        }
    }

    /// The blob keys of `namespace` starting with `prefix`, linearizably.
    pub async fn list(
        &self,
        namespace: &Namespace,
        prefix: &str,
    ) -> Result<Vec<String>, MicroError> {
        self.read_now()
            .await?
            .blob_keys(namespace, prefix)
            .map_err(|e| unavailable(&e.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use micro_core::replicator::MemReplicator;

    use super::*;

    #[tokio::test]
    async fn a_blob_larger_than_a_chunk_reads_back_whole() {
        let replicator = Arc::new(MemReplicator::new(Arc::new(micro_core::SystemClock)));
        let blobs = BlobHandle::new(replicator, Arc::new(micro_core::rng::SeededRng::new(1)));
        let ns = Namespace::default();
        let data: Vec<u8> = (0..CHUNK_LEN * 2 + 7).map(|i| (i % 251) as u8).collect();
        let mut writer = blobs.writer(&ns, "big").unwrap();
        for piece in data.chunks(100_000) {
            writer.write(piece).await.unwrap();
        }
        writer.commit().await.unwrap();
        let manifest = blobs.open(&ns, "big").await.unwrap();
        assert_eq!((manifest.chunks, manifest.size), (3, data.len() as u64));
        let mut back = Vec::new();
        for i in 0..manifest.chunks {
            back.extend(blobs.chunk(&ns, &manifest, i).unwrap());
        }
        assert_eq!(back, data);
        assert_eq!(blobs.list(&ns, "b").await.unwrap(), ["big"]);
        assert!(blobs.delete(&ns, "big").await.unwrap());
        let gone = blobs.open(&ns, "big").await.unwrap_err();
        assert_eq!(gone.code, 404);
        assert!(blobs.writer(&ns, "").is_err());
    }
}
