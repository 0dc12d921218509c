//! Blob state: each namespace's blobs as chunks, their part of `apply`, and their reads.
//!
//! A blob is written as chunks of one upload (each its own log entry, so a large blob is
//! never one huge entry), then committed: the commit points the key at the upload and
//! drops the chunks of the blob it replaces. An upload never committed is purged by a
//! tick once its staging time runs out.
//!
//! Space `Blobs`:
//! ```text
//! 0x00 ns key                  -> Manifest   (the upload a key points at)
//! 0x01 ns upload index(be32)   -> bytes      (chunks)
//! 0x02 expires_at(be64) ns upload -> ()      (uploads not yet committed)
//! ```

use serde::{Deserialize, Serialize};

use crate::kv::{KeyRange, KvBackend, KvError, ScanOrder, Space, WriteBatch};
use crate::namespace::Namespace;
use crate::state::keys::encode;
use crate::state::services::key;
use crate::state::{Command, Response};

const MANIFEST_TAG: u8 = 0;
const CHUNK_TAG: u8 = 1;
const STAGING_TAG: u8 = 2;

/// How long an upload may stay uncommitted before a tick purges its chunks.
pub const STAGING_TTL_MS: u64 = 60 * 60 * 1000;

/// What a blob key points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The upload holding its chunks.
    pub upload: String,
    /// How many chunks.
    pub chunks: u32,
    /// Its size in bytes.
    pub size: u64,
}

fn manifest_key(namespace: &Namespace, blob: &str) -> Vec<u8> {
    key(MANIFEST_TAG, &[namespace.as_str(), blob])
}

fn chunks_prefix(namespace: &Namespace, upload: &str) -> Vec<u8> {
    key(CHUNK_TAG, &[namespace.as_str(), upload])
}

fn chunk_key(namespace: &Namespace, upload: &str, index: u32) -> Vec<u8> {
    let mut out = chunks_prefix(namespace, upload);
    out.extend_from_slice(&index.to_be_bytes());
    out
}

fn staging_key(at_ms: u64, namespace: &Namespace, upload: &str) -> Vec<u8> {
    let mut out = vec![STAGING_TAG];
    out.extend_from_slice(&at_ms.to_be_bytes());
    out.extend_from_slice(&chunks_prefix(namespace, upload));
    out
}

/// The manifest of blob `blob`, if it exists.
pub(crate) fn manifest(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    blob: &str,
) -> Result<Option<Manifest>, KvError> {
    crate::state::keys::load(
        kv,
        Space::Blobs,
        &manifest_key(namespace, blob),
        "blob manifest",
    )
}

/// Chunk `index` of `upload`.
pub(crate) fn chunk(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    upload: &str,
    index: u32,
) -> Result<Option<Vec<u8>>, KvError> {
    kv.get(Space::Blobs, &chunk_key(namespace, upload, index))
}

/// The blob keys of `namespace` starting with `prefix`, in order.
pub(crate) fn keys(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    prefix: &str,
) -> Result<Vec<String>, KvError> {
    let base = key(MANIFEST_TAG, &[namespace.as_str()]);
    // The key's length prefix comes first, so scan the namespace and filter.
    let mut out = Vec::new();
    kv.scan(
        Space::Blobs,
        &KeyRange::prefix(&base),
        ScanOrder::Asc,
        &mut |k, _| {
            if let Some(name) = k.get(base.len() + 2..) {
                let name = String::from_utf8_lossy(name);
                if name.starts_with(prefix) {
                    out.push(name.into_owned());
                }
            }
            true
        },
    )?;
    out.sort();
    Ok(out)
}

/// Applies a blob command (the others are not this module's).
pub(crate) fn apply(
    kv: &dyn KvBackend,
    command: &Command,
    now: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    match command {
        Command::BlobChunk {
            namespace,
            upload,
            index,
            data,
        } => {
            if *index == 0 {
                let expires = now.saturating_add(STAGING_TTL_MS);
                batch.put(
                    Space::Blobs,
                    staging_key(expires, namespace, upload),
                    Vec::new(),
                );
            }
            batch.put(
                Space::Blobs,
                chunk_key(namespace, upload, *index),
                data.clone(),
            );
            Ok(Response::Done)
        }
        Command::BlobCommit {
            namespace,
            key: blob,
            manifest: new,
        } => commit(kv, namespace, blob, new, batch),
        Command::BlobDelete {
            namespace,
            key: blob,
        } => {
            let Some(old) = manifest(kv, namespace, blob)? else {
                return Ok(Response::Deleted { existed: false });
            };
            delete_chunks(namespace, &old.upload, batch);
            batch.delete(Space::Blobs, manifest_key(namespace, blob));
            Ok(Response::Deleted { existed: true })
        }
        _ => Err(KvError("not a blob command".to_owned())),
    }
}

fn commit(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    blob: &str,
    new: &Manifest,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    for index in 0..new.chunks {
        if kv
            .get(Space::Blobs, &chunk_key(namespace, &new.upload, index))?
            .is_none()
        {
            return Ok(Response::Refused {
                reason: format!("chunk {index} of the upload is missing (it expired?)"),
            });
        }
    }
    if let Some(old) = manifest(kv, namespace, blob)?
        && old.upload != new.upload
    {
        delete_chunks(namespace, &old.upload, batch);
    }
    // No longer staging: find its entry by scanning the staging index for the upload.
    let suffix = chunks_prefix(namespace, &new.upload);
    let mut staging = Vec::new();
    kv.scan(
        Space::Blobs,
        &KeyRange::prefix(&[STAGING_TAG]),
        ScanOrder::Asc,
        &mut |k, _| {
            if k.get(9..) == Some(suffix.as_slice()) {
                staging.push(k.to_vec());
            }
            true
        },
    )?;
    for k in staging {
        batch.delete(Space::Blobs, k);
    }
    batch.put(Space::Blobs, manifest_key(namespace, blob), encode(new));
    Ok(Response::Done)
}

fn delete_chunks(namespace: &Namespace, upload: &str, batch: &mut WriteBatch) {
    let range = KeyRange::prefix(&chunks_prefix(namespace, upload));
    if let Some(end) = range.end {
        batch.delete_range(Space::Blobs, range.start, end);
    }
}

/// Purges up to `max` uploads never committed whose staging time ran out by `now`.
pub(crate) fn purge_expired(
    kv: &dyn KvBackend,
    now: u64,
    max: usize,
    batch: &mut WriteBatch,
) -> Result<u64, KvError> {
    let due = crate::state::keys::due_expiries(kv, Space::Blobs, STAGING_TAG, now, max)?;
    for index_key in &due {
        batch.delete(Space::Blobs, index_key.clone());
        if let Some(prefix) = index_key.get(9..) {
            let range = KeyRange::prefix(prefix);
            if let Some(end) = range.end {
                batch.delete_range(Space::Blobs, range.start, end);
            }
        }
    }
    Ok(due.len() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::kv::MemKvBackend;
    use crate::state::apply_now;

    fn ns() -> Namespace {
        Namespace::new("acme").unwrap()
    }

    fn write(kv: &MemKvBackend, at: u64, blob: &str, upload: &str, parts: &[&str]) -> Response {
        for (i, part) in parts.iter().enumerate() {
            let command = Command::BlobChunk {
                namespace: ns(),
                upload: upload.into(),
                index: u32::try_from(i).unwrap(),
                data: part.as_bytes().to_vec(),
            };
            apply_now(kv, at, command);
        }
        let manifest = Manifest {
            upload: upload.into(),
            chunks: u32::try_from(parts.len()).unwrap(),
            size: parts.iter().map(|p| p.len() as u64).sum(),
        };
        let command = Command::BlobCommit {
            namespace: ns(),
            key: blob.into(),
            manifest,
        };
        apply_now(kv, at, command)
    }

    fn read(kv: &MemKvBackend, blob: &str) -> Option<String> {
        let m = manifest(kv, &ns(), blob).unwrap()?;
        let mut out = String::new();
        for i in 0..m.chunks {
            let part = chunk(kv, &ns(), &m.upload, i).unwrap().unwrap();
            out.push_str(std::str::from_utf8(&part).unwrap());
        }
        Some(out)
    }

    #[test]
    fn a_blob_reads_back_and_a_rewrite_replaces_its_chunks() {
        let kv = MemKvBackend::new();
        assert_eq!(write(&kv, 1, "a/b", "u1", &["he", "llo"]), Response::Done);
        assert_eq!(read(&kv, "a/b").as_deref(), Some("hello"));
        write(&kv, 2, "a/b", "u2", &["bye"]);
        assert_eq!(read(&kv, "a/b").as_deref(), Some("bye"));
        assert!(
            chunk(&kv, &ns(), "u1", 0).unwrap().is_none(),
            "old chunks dropped"
        );
        write(&kv, 3, "c", "u3", &["x"]);
        assert_eq!(keys(&kv, &ns(), "a/").unwrap(), ["a/b"]);
        assert_eq!(keys(&kv, &ns(), "").unwrap(), ["a/b", "c"]);
        let delete = Command::BlobDelete {
            namespace: ns(),
            key: "a/b".into(),
        };
        assert_eq!(
            apply_now(&kv, 4, delete),
            Response::Deleted { existed: true }
        );
        assert_eq!(read(&kv, "a/b"), None);
        assert!(chunk(&kv, &ns(), "u2", 0).unwrap().is_none());
    }

    #[test]
    fn an_upload_never_committed_is_purged_and_cannot_be_committed_after() {
        let kv = MemKvBackend::new();
        let command = Command::BlobChunk {
            namespace: ns(),
            upload: "u".into(),
            index: 0,
            data: b"x".to_vec(),
        };
        apply_now(&kv, 10, command);
        apply_now(&kv, 10 + STAGING_TTL_MS + 1, Command::Tick);
        assert!(chunk(&kv, &ns(), "u", 0).unwrap().is_none());
        let commit = Command::BlobCommit {
            namespace: ns(),
            key: "k".into(),
            manifest: Manifest {
                upload: "u".into(),
                chunks: 1,
                size: 1,
            },
        };
        assert!(matches!(
            apply_now(&kv, 20 + STAGING_TTL_MS, commit),
            Response::Refused { .. }
        ));
    }
}
