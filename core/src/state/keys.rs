//! Key layout of the replicated state.
//!
//! Space `Store` holds three sub-keyspaces, told apart by their first byte:
//! ```text
//! 0x00 ns db table key        -> StoredRecord   (records; key bytes last, unprefixed,
//!                                                 so a scan on a key prefix is a range)
//! 0x01 expires_at(be64) <record key>  -> ()     (expiry index, oldest first)
//! 0x02 ns db table            -> count(be64)    (catalogue of databases and tables)
//! ```
//! Each name is length-prefixed (be16), so no prefix of one path is a prefix of another.

use serde::{Deserialize, Serialize};

use crate::namespace::Namespace;
use crate::store::{Field, TablePath};

pub(crate) const RECORD_TAG: u8 = 0;
pub(crate) const EXPIRY_TAG: u8 = 1;
pub(crate) const CATALOGUE_TAG: u8 = 2;

/// Key of the log time in space `Meta`.
pub(crate) const LOG_TIME_KEY: &[u8] = b"log_time";

/// A record as stored: what `Record` holds, with an absolute expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredRecord {
    #[serde(with = "serde_bytes")]
    pub(crate) value: Vec<u8>,
    pub(crate) metadata: std::collections::BTreeMap<String, Field>,
    pub(crate) expires_at_ms: Option<u64>,
}

fn push_name(out: &mut Vec<u8>, name: &str) {
    let len = u16::try_from(name.len()).expect("names are validated to at most 255 bytes");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
}

fn path_bytes(tag: u8, path: &TablePath) -> Vec<u8> {
    let mut out = vec![tag];
    push_name(&mut out, path.namespace.as_str());
    push_name(&mut out, &path.database);
    push_name(&mut out, &path.table);
    out
}

/// The prefix of every record key of `path`.
pub(crate) fn record_prefix(path: &TablePath) -> Vec<u8> {
    path_bytes(RECORD_TAG, path)
}

/// The prefix of every record key of a namespace, or of one of its databases.
pub(crate) fn records_prefix(namespace: &Namespace, database: Option<&str>) -> Vec<u8> {
    let mut out = vec![RECORD_TAG];
    push_name(&mut out, namespace.as_str());
    if let Some(database) = database {
        push_name(&mut out, database);
    }
    out
}

/// The stored key of record `key` in `path`.
pub(crate) fn record_key(path: &TablePath, key: &str) -> Vec<u8> {
    let mut out = record_prefix(path);
    out.extend_from_slice(key.as_bytes());
    out
}

/// The expiry-index key for a record key expiring at `at_ms`.
pub(crate) fn expiry_key(at_ms: u64, record_key: &[u8]) -> Vec<u8> {
    let mut out = vec![EXPIRY_TAG];
    out.extend_from_slice(&at_ms.to_be_bytes());
    out.extend_from_slice(record_key);
    out
}

/// Splits an expiry-index key into its time and record key.
pub(crate) fn split_expiry_key(key: &[u8]) -> Option<(u64, &[u8])> {
    let rest = key.strip_prefix(&[EXPIRY_TAG])?;
    let (time, record) = rest.split_at_checked(8)?;
    Some((u64::from_be_bytes(time.try_into().ok()?), record))
}

/// The catalogue key of `path`.
pub(crate) fn catalogue_key(path: &TablePath) -> Vec<u8> {
    path_bytes(CATALOGUE_TAG, path)
}

/// The prefix of the catalogue entries of a namespace (and optionally one database).
pub(crate) fn catalogue_prefix(namespace: &Namespace, database: Option<&str>) -> Vec<u8> {
    let mut out = vec![CATALOGUE_TAG];
    push_name(&mut out, namespace.as_str());
    if let Some(database) = database {
        push_name(&mut out, database);
    }
    out
}

/// Splits a catalogue key (or a record key's path) into its path.
pub(crate) fn parse_path(key: &[u8]) -> Option<(TablePath, &[u8])> {
    let mut rest = key.get(1..)?;
    let mut names = Vec::with_capacity(3);
    for _ in 0..3 {
        let (len, tail) = rest.split_at_checked(2)?;
        let len = usize::from(u16::from_be_bytes(len.try_into().ok()?));
        let (name, tail) = tail.split_at_checked(len)?;
        names.push(String::from_utf8(name.to_vec()).ok()?);
        rest = tail;
    }
    let table = names.pop()?;
    let database = names.pop()?;
    let namespace = Namespace::new(names.pop()?).ok()?;
    Some((
        TablePath {
            namespace,
            database,
            table,
        },
        rest,
    ))
}

/// Up to `max` keys of the expiry index under `tag` in `space` (laid out
/// `tag expires_at(be64) ...`, oldest first) that are due by `now`.
pub(crate) fn due_expiries(
    kv: &dyn crate::kv::KvBackend,
    space: crate::kv::Space,
    tag: u8,
    now: u64,
    max: usize,
) -> Result<Vec<Vec<u8>>, crate::kv::KvError> {
    let mut end = vec![tag];
    end.extend_from_slice(&now.saturating_add(1).to_be_bytes());
    let range = crate::kv::KeyRange {
        start: vec![tag],
        end: Some(end),
    };
    let mut due = Vec::new();
    kv.scan(space, &range, crate::kv::ScanOrder::Asc, &mut |k, _| {
        due.push(k.to_vec());
        due.len() < max
    })?;
    Ok(due)
}

/// The value under `key` in `space`, decoded; a value that does not decode is an error
/// naming `what`.
pub(crate) fn load<T: serde::de::DeserializeOwned>(
    kv: &dyn crate::kv::KvBackend,
    space: crate::kv::Space,
    key: &[u8],
    what: &str,
) -> Result<Option<T>, crate::kv::KvError> {
    match kv.get(space, key)? {
        None => Ok(None),
        Some(bytes) => decode(&bytes)
            .map(Some)
            .ok_or_else(|| crate::kv::KvError(format!("corrupt state: {what}"))),
    }
}

/// Encodes a value with the state's codec.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("in-memory state types always encode")
}

/// Decodes a value of the state's codec.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .ok()
        .map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_and_never_prefix_each_other() {
        let ns = Namespace::new("a").unwrap();
        let p1 = TablePath::resolve(ns.clone(), "db", "t").unwrap();
        let p2 = TablePath::resolve(ns, "db", "t2").unwrap();
        let key = record_key(&p1, "k");
        let (parsed, rest) = parse_path(&key).unwrap();
        assert_eq!((parsed, rest), (p1.clone(), &b"k"[..]));
        assert!(!record_key(&p2, "x").starts_with(&record_prefix(&p1)));
        let index = expiry_key(42, &key);
        let (at, record) = split_expiry_key(&index).unwrap();
        assert_eq!((at, record), (42, key.as_slice()));
    }
}
