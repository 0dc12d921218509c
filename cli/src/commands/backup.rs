//! Whole-node backups: `micro cluster snapshot` saves a node's Raft snapshot to a file,
//! `micro-node restore` puts it into a new data directory.
//!
//! ```text
//! micro cluster snapshot --destination F ─> cluster.Cluster/Snapshot (the node makes a
//!     Raft snapshot of all it has applied) ─> F.partial ─> rename F
//! micro-node restore --source F --data-dir D [--node-id N]
//!     F: magic, format, header, checksum, then the stored snapshot's own checksums
//!     D: must be new or empty ─> install the state, purge the log to it, vote in its term
//!     ─> prints the members; start each restored node with its old id and peer address
//! ```
//!
//! The file: `micro-cluster-snapshot 1\n`, a JSON header (node, index, term, size,
//! time), the snapshot as the node stores it, and a CRC-32 of everything before.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use micro_proto::cluster as pb;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::commands::snapshot::{file_path, frame, unframe};
use crate::exit::{CliError, OTHER};

/// The first word of every whole-node snapshot file.
const MAGIC: &str = "micro-cluster-snapshot";
/// The file format this release writes (and the newest it reads).
pub const NODE_SNAPSHOT_FORMAT: u32 = 1;

/// The header of a whole-node snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSnapshotHeader {
    /// The node that made it.
    pub node_id: u64,
    /// The last log index it covers.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The size of the snapshot in bytes.
    pub size: u64,
    /// The data format of its contents (`micro_core::kv::format::DATA_FORMAT` of the
    /// node that made it).
    pub data_format: u32,
    /// When it was taken (RFC 3339).
    pub taken_at: String,
}

/// `micro-node restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The file `micro cluster snapshot` wrote: file:///path or a path
    #[arg(long)]
    pub source: String,
    /// The data directory to create (it must not hold data)
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The id of the node this directory is for [default: the node that made the
    /// snapshot]; every member of the old cluster can be restored from one file
    #[arg(long)]
    pub node_id: Option<u64>,
}

fn io_error(what: &str, path: &Path, err: &std::io::Error) -> CliError {
    CliError::new(OTHER, format!("{what} {}: {err}", path.display()))
}

/// `micro cluster snapshot`: asks the node for a Raft snapshot of everything it has
/// applied and writes it to `destination` (atomically).
pub(crate) async fn save(client: &Client, destination: &str) -> Result<(), CliError> {
    let path = file_path(destination)?;
    let chunks: Vec<pb::SnapshotChunk> = client
        .cluster()
        .max_decoding_message_size(micro_gateway::MESSAGE_LEN_MAX)
        .snapshot(client.request(pb::SnapshotRequest {}))
        .await
        .map_err(|s| client.error(&s))?
        .into_inner()
        .try_collect()
        .await
        .map_err(|s| client.error(&s))?;
    let first = chunks.first().cloned().unwrap_or_default();
    let body: Vec<u8> = chunks.into_iter().flat_map(|c| c.data).collect();
    let size = u64::try_from(body.len()).unwrap_or(u64::MAX);
    if size != first.size || size == 0 {
        return Err(CliError::new(
            OTHER,
            format!(
                "the snapshot stream ended after {size} of {} bytes; nothing was written",
                first.size
            ),
        ));
    }
    let header = NodeSnapshotHeader {
        node_id: first.node_id,
        index: first.index,
        term: first.term,
        size,
        data_format: first.data_format.max(1),
        taken_at: crate::commands::snapshot::now_rfc3339(),
    };
    let partial = path.with_extension("partial");
    std::fs::write(&partial, frame(MAGIC, NODE_SNAPSHOT_FORMAT, &header, &body))
        .map_err(|e| io_error("cannot write", &partial, &e))?;
    std::fs::rename(&partial, &path).map_err(|e| io_error("cannot write", &path, &e))?;
    println!(
        "snapshot of node {} at index {} (term {}): {size} bytes written to {}",
        header.node_id,
        header.index,
        header.term,
        path.display()
    );
    Ok(())
}

/// `micro-node restore`: checks the file, then writes its state into a new data
/// directory as node `--node-id`'s.
pub async fn restore(args: RestoreArgs) -> Result<(), CliError> {
    let path = file_path(&args.source)?;
    let bytes = std::fs::read(&path).map_err(|e| io_error("cannot read", &path, &e))?;
    let refused = |why: &dyn std::fmt::Display| {
        CliError::new(
            OTHER,
            format!("{}: {why}; nothing was restored", path.display()),
        )
    };
    let (_, header, body): (_, NodeSnapshotHeader, _) =
        unframe(MAGIC, NODE_SNAPSHOT_FORMAT, &bytes).map_err(|e| refused(&e))?;
    let (oldest, newest) = (
        micro_core::kv::format::DATA_FORMAT_MIN,
        micro_core::kv::format::DATA_FORMAT,
    );
    if !(oldest..=newest).contains(&header.data_format) {
        return Err(refused(&format!(
            "its contents are in data format {}, this release reads {oldest} to {newest}",
            header.data_format
        )));
    }
    let node_id = args.node_id.unwrap_or(header.node_id);
    let kv = open_empty(&args.data_dir)?;
    let restored = micro_cluster::restore_snapshot(kv, node_id, body)
        .await
        .map_err(|e| refused(&e))?;
    println!(
        "restored node {node_id} into {} at index {} (term {}), from a snapshot node {} took at {}",
        args.data_dir.display(),
        restored.index,
        restored.term,
        header.node_id,
        header.taken_at
    );
    println!("start every member with its old id and peer address:");
    for (id, addr) in &restored.members {
        println!("  --node-id {id} --peer-addr {addr}");
    }
    Ok(())
}

/// Opens `dir` for a restore: a new or empty directory only, so a restore never mixes
/// with (or overwrites) a node's data.
#[cfg(feature = "rocksdb")]
fn open_empty(dir: &Path) -> Result<std::sync::Arc<dyn micro_core::kv::KvBackend>, CliError> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(CliError::new(
            OTHER,
            format!(
                "{} is not empty: restore into a new data directory",
                dir.display()
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, &e))?;
    let kv = micro_cluster::RocksKvBackend::open(dir)
        .map_err(|e| CliError::new(OTHER, format!("cannot open {}: {}", dir.display(), e.0)))?;
    micro_core::kv::format::check_data_format(&kv)
        .map_err(|e| CliError::new(OTHER, format!("{}: {}", dir.display(), e.0)))?;
    Ok(std::sync::Arc::new(kv))
}

/// Without RocksDB there is no data directory to restore into.
#[cfg(not(feature = "rocksdb"))]
fn open_empty(_dir: &Path) -> Result<std::sync::Arc<dyn micro_core::kv::KvBackend>, CliError> {
    Err(CliError::usage(
        "this micro-node was built without RocksDB (feature rocksdb): it keeps no data directory to restore into",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file_with(dir: &Path, header: &NodeSnapshotHeader) -> String {
        let path = dir.join("node.snap");
        std::fs::write(&path, frame(MAGIC, NODE_SNAPSHOT_FORMAT, header, b"body")).unwrap();
        path.display().to_string()
    }

    #[tokio::test]
    async fn contents_in_a_newer_data_format_are_refused_before_anything_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let header = NodeSnapshotHeader {
            node_id: 1,
            index: 10,
            term: 2,
            size: 4,
            data_format: micro_core::kv::format::DATA_FORMAT + 1,
            taken_at: "2026-12-02T00:00:00Z".into(),
        };
        let data_dir = dir.path().join("data");
        let args = RestoreArgs {
            source: file_with(dir.path(), &header),
            data_dir: data_dir.clone(),
            node_id: None,
        };
        let err = restore(args).await.unwrap_err();
        let wanted = format!("data format {}", header.data_format);
        assert!(err.message.contains(&wanted), "{}", err.message);
        assert!(!data_dir.exists());
        // A newer file format, too.
        let newer = dir.path().join("newer.snap");
        std::fs::write(&newer, b"micro-cluster-snapshot 2\n{}\n\0\0\0\0").unwrap();
        let args = RestoreArgs {
            source: newer.display().to_string(),
            data_dir,
            node_id: None,
        };
        let err = restore(args).await.unwrap_err();
        assert!(err.message.contains("format 2 is newer"), "{}", err.message);
    }
}
