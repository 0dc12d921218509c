//! `micro store snapshot` and `micro store restore`: a namespace's records to a file and
//! back.
//!
//! ```text
//! snapshot: store.Backup/Snapshot (one linearizable moment) ─> FILE.partial ─> rename FILE
//! restore:  FILE ─> read whole, check magic, format, header, count, checksum
//!                ─> Store.Write each record (RESTORE_IN_FLIGHT at once)
//! ```
//!
//! The file:
//! ```text
//! micro-store-snapshot 1\n                       magic and format version
//! {"namespace":..,"database":..,"records":N,"taken_at":..}\n
//! N × (varint length, protobuf store.SnapshotEntry)
//! CRC-32 (big-endian) of every byte above
//! ```
//! A restore reads and checks the whole file before it writes a record, so a cut,
//! damaged or newer file is refused with nothing written. A record's expiry is the time
//! it had left when the snapshot was taken; it counts again from the restore.

use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use micro_proto::store as pb;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::exit::{CliError, OTHER, USAGE};

/// The first bytes of every snapshot file.
const MAGIC: &str = "micro-store-snapshot";
/// The file format this release writes (and the newest it reads).
pub const SNAPSHOT_FORMAT: u32 = 1;
/// How many writes a restore keeps in flight: enough for the node to batch them into
/// few Raft proposals.
const RESTORE_IN_FLIGHT: usize = 64;

/// The second line of a snapshot file: what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The namespace the records were read from.
    pub namespace: String,
    /// The one database snapshotted, or empty for all of the namespace's.
    pub database: String,
    /// How many entries follow.
    pub records: u64,
    /// When the snapshot was taken (RFC 3339).
    pub taken_at: String,
}

/// A snapshot read back from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotFile {
    /// What the file says it holds.
    pub header: SnapshotHeader,
    /// The records with their tables.
    pub entries: Vec<pb::SnapshotEntry>,
}

/// `file:///path` (as Micro v3 took it) or a plain path.
pub fn file_path(location: &str) -> Result<PathBuf, CliError> {
    match location.split_once("://") {
        None => Ok(PathBuf::from(location)),
        Some(("file", path)) if !path.is_empty() => Ok(PathBuf::from(path)),
        Some((scheme, _)) => Err(CliError::new(
            USAGE,
            format!(
                "{location}: only file:// locations (or plain paths) are supported, not {scheme}://"
            ),
        )),
    }
}

/// A file of ours: `MAGIC VERSION\n`, a JSON header line, the body, and a CRC-32
/// (big-endian) of everything before it.
pub(crate) fn frame(magic: &str, version: u32, header: &impl Serialize, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{magic} {version}\n").into_bytes();
    // Headers are strings and numbers: they always serialize.
    out.extend(serde_json::to_vec(header).unwrap_or_default());
    out.push(b'\n');
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_be_bytes());
    out
}

/// Opens a [`frame`]d file: its version (at most `newest`), header and body. The format
/// is checked first, so a newer file is refused by name whatever its layout; then the
/// checksum, so a cut or damaged file is refused before anything is decoded.
pub(crate) fn unframe<'a, H: serde::de::DeserializeOwned>(
    magic: &str,
    newest: u32,
    bytes: &'a [u8],
) -> Result<(u32, H, &'a [u8]), String> {
    let (first, rest) = split_line(bytes).ok_or_else(|| format!("not a {magic} file"))?;
    let version = std::str::from_utf8(first)
        .ok()
        .and_then(|line| line.strip_prefix(magic))
        .and_then(|v| v.strip_prefix(' '))
        .ok_or_else(|| format!("not a {magic} file (its first line is not \"{magic} N\")"))?;
    let version: u32 = version
        .parse()
        .map_err(|_| format!("{magic} format {version:?} is not a number"))?;
    if version > newest || version == 0 {
        return Err(format!(
            "{magic} format {version} is newer than this release reads ({newest}): use the \
             release that wrote it, or a newer one"
        ));
    }
    let (body, crc) = bytes
        .split_last_chunk::<4>()
        .ok_or("the file is cut short (no checksum)")?;
    if crc32fast::hash(body) != u32::from_be_bytes(*crc) {
        return Err("the file is damaged or cut short (checksum mismatch)".to_owned());
    }
    let rest = &rest[..rest.len().saturating_sub(4)];
    let (header, body) = split_line(rest).ok_or("the file has no header")?;
    let header = serde_json::from_slice(header).map_err(|e| format!("the file's header: {e}"))?;
    Ok((version, header, body))
}

/// Encodes a store snapshot file.
pub fn encode(header: &SnapshotHeader, entries: &[pb::SnapshotEntry]) -> Vec<u8> {
    let body: Vec<u8> = entries
        .iter()
        .flat_map(Message::encode_length_delimited_to_vec)
        .collect();
    frame(MAGIC, SNAPSHOT_FORMAT, header, &body)
}

/// Decodes a store snapshot file, refusing anything but a whole, undamaged file in a
/// format this release reads. The error says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<SnapshotFile, String> {
    let (_, header, mut rest): (_, SnapshotHeader, _) = unframe(MAGIC, SNAPSHOT_FORMAT, bytes)?;
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let entry = pb::SnapshotEntry::decode_length_delimited(&mut rest)
            .map_err(|e| format!("entry {} of the snapshot: {e}", entries.len() + 1))?;
        entries.push(entry);
    }
    if u64::try_from(entries.len()).ok() != Some(header.records) {
        return Err(format!(
            "the snapshot's header promises {} records but it holds {}",
            header.records,
            entries.len()
        ));
    }
    Ok(SnapshotFile { header, entries })
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

fn io_error(what: &str, path: &Path, err: &std::io::Error) -> CliError {
    CliError::new(OTHER, format!("{what} {}: {err}", path.display()))
}

/// `micro store snapshot`: reads the namespace's records as of one moment and writes
/// them to `destination` (atomically: a failed snapshot leaves no file).
pub(crate) async fn snapshot(
    client: &Client,
    destination: &str,
    database: String,
) -> Result<(), CliError> {
    let path = file_path(destination)?;
    let request = client.request(pb::SnapshotRequest {
        database: database.clone(),
    });
    let mut backup = pb::backup_client::BackupClient::new(client.channel())
        .max_decoding_message_size(micro_gateway::MESSAGE_LEN_MAX);
    let stream = backup
        .snapshot(request)
        .await
        .map_err(|s| client.error(&s))?
        .into_inner();
    let messages: Vec<pb::SnapshotResponse> =
        stream.try_collect().await.map_err(|s| client.error(&s))?;
    let total = messages.first().map_or(0, |m| m.total);
    let entries: Vec<pb::SnapshotEntry> = messages.into_iter().flat_map(|m| m.entries).collect();
    let records = u64::try_from(entries.len()).unwrap_or(u64::MAX);
    if records != total {
        return Err(CliError::new(
            OTHER,
            format!(
                "the snapshot stream ended after {records} of {total} records; nothing was written"
            ),
        ));
    }
    let header = SnapshotHeader {
        namespace: client.namespace().as_str().to_owned(),
        database,
        records,
        taken_at: now_rfc3339(),
    };
    let partial = path.with_extension("partial");
    std::fs::write(&partial, encode(&header, &entries))
        .map_err(|e| io_error("cannot write", &partial, &e))?;
    std::fs::rename(&partial, &path).map_err(|e| io_error("cannot write", &path, &e))?;
    println!(
        "snapshot of namespace {}: {} written to {}",
        header.namespace,
        count(records),
        path.display()
    );
    Ok(())
}

/// `micro store restore`: writes every record of the snapshot at `source` into the
/// current namespace (same databases and tables), after checking the whole file.
pub(crate) async fn restore(client: &Client, source: &str) -> Result<(), CliError> {
    let path = file_path(source)?;
    let bytes = std::fs::read(&path).map_err(|e| io_error("cannot read", &path, &e))?;
    let file = decode(&bytes).map_err(|why| {
        CliError::new(
            OTHER,
            format!("{}: {why}; nothing was restored", path.display()),
        )
    })?;
    let records = file.header.records;
    let store = client.store();
    let writes = file.entries.into_iter().map(|entry| {
        let mut store = store.clone();
        let request = client.request(pb::WriteRequest {
            record: entry.record,
            options: Some(pb::WriteOptions {
                database: entry.database,
                table: entry.table,
            }),
        });
        async move { store.write(request).await }
    });
    let mut done = futures::stream::iter(writes).buffer_unordered(RESTORE_IN_FLIGHT);
    let mut written = 0;
    while let Some(result) = done.next().await {
        if let Err(status) = result {
            let mut err = client.error(&status);
            err.message = format!(
                "{} (after {written} of {records} records; restoring again is safe: a write replaces the record)",
                err.message
            );
            return Err(err);
        }
        written += 1;
    }
    println!(
        "restored {} from {} (namespace {} at {}) into namespace {}",
        count(records),
        path.display(),
        file.header.namespace,
        file.header.taken_at,
        client.namespace().as_str()
    );
    Ok(())
}

/// "1 record", "2 records".
fn count(records: u64) -> String {
    match records {
        1 => "1 record".to_owned(),
        n => format!("{n} records"),
    }
}

/// Now, as RFC 3339 (UTC).
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> (SnapshotHeader, Vec<pb::SnapshotEntry>) {
        let entries: Vec<_> = (0..3)
            .map(|i| pb::SnapshotEntry {
                database: "db".into(),
                table: format!("t{i}"),
                record: Some(pb::Record {
                    key: format!("k{i}"),
                    value: vec![i; 5],
                    expiry: i64::from(i),
                    metadata: std::collections::HashMap::new(),
                }),
            })
            .collect();
        let header = SnapshotHeader {
            namespace: "micro".into(),
            database: String::new(),
            records: 3,
            taken_at: "2026-12-02T00:00:00Z".into(),
        };
        (header, entries)
    }

    #[test]
    fn a_file_round_trips() {
        let (header, entries) = sample();
        let file = decode(&encode(&header, &entries)).unwrap();
        assert_eq!(file, SnapshotFile { header, entries });
    }

    #[test]
    fn a_newer_format_is_refused_by_name() {
        let (header, entries) = sample();
        let mut bytes = encode(&header, &entries);
        bytes[MAGIC.len() + 1] = b'9';
        let err = decode(&bytes).unwrap_err();
        assert!(err.contains("format 9 is newer"), "{err}");
        assert!(
            decode(b"PK\x03\x04 zip file\n")
                .unwrap_err()
                .contains("not a micro-store-snapshot file")
        );
    }

    #[test]
    fn cut_damaged_or_lying_files_are_refused() {
        let (header, entries) = sample();
        let bytes = encode(&header, &entries);
        for cut in [bytes.len() - 1, bytes.len() - 7, 30] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes;
        let at = flipped.len() - 10;
        flipped[at] ^= 1;
        assert!(decode(&flipped).unwrap_err().contains("checksum"));
        let lying = SnapshotHeader {
            records: 4,
            ..header
        };
        let err = decode(&encode(&lying, &entries)).unwrap_err();
        assert!(err.contains("promises 4 records but it holds 3"), "{err}");
    }

    #[test]
    fn locations_are_files() {
        assert_eq!(file_path("file:///tmp/s").unwrap(), PathBuf::from("/tmp/s"));
        assert_eq!(file_path("s.snap").unwrap(), PathBuf::from("s.snap"));
        assert_eq!(file_path("s3://bucket/x").unwrap_err().code, USAGE);
    }
}
