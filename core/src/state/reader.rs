//! [`StateReader`]: queries over the applied state.

use std::sync::Arc;

use crate::kv::{KeyRange, KvBackend, KvError, ScanOrder, Space};
use crate::namespace::Namespace;
use crate::state::apply::read_log_time;
use crate::state::keys::{
    StoredRecord, catalogue_prefix, decode, parse_path, record_key, record_prefix, records_prefix,
};
use crate::store::{ListQuery, Order, ReadQuery, Record, StoreError, TablePath};

/// The most records one read returns, whatever its limit.
pub const READ_RECORDS_MAX: usize = 10_000;
/// The most keys one list returns, whatever its limit.
pub const LIST_KEYS_MAX: usize = 100_000;

/// Reads the applied state. It sees whatever has been applied locally; callers that need
/// linearizable reads pass the replicator's read barrier first.
#[derive(Debug, Clone)]
pub struct StateReader {
    kv: Arc<dyn KvBackend>,
}

impl StateReader {
    /// A reader over `kv`.
    pub fn new(kv: Arc<dyn KvBackend>) -> Self {
        Self { kv }
    }

    /// The log time of the applied state (Unix ms).
    pub fn log_time_ms(&self) -> Result<u64, KvError> {
        read_log_time(self.kv.as_ref())
    }

    /// The live services of `namespace` (only those named `name` if given), each the
    /// union of its live nodes. Nodes past their TTL by log time are never returned.
    pub fn registry_services(
        &self,
        namespace: &Namespace,
        name: Option<&str>,
    ) -> Result<Vec<crate::registry::Service>, KvError> {
        let now = self.log_time_ms()?;
        crate::state::services::services(self.kv.as_ref(), namespace, name, now)
    }

    /// The namespaces with registrations.
    pub fn registry_namespaces(&self) -> Result<Vec<Namespace>, KvError> {
        crate::state::services::registry_namespaces(self.kv.as_ref())
    }

    /// The runtime's desired services, of one namespace or all.
    pub fn runtime_services(
        &self,
        namespace: Option<&Namespace>,
    ) -> Result<Vec<(Namespace, crate::runtime::RuntimeService)>, KvError> {
        crate::state::services::runtime_services(self.kv.as_ref(), namespace)
    }

    /// The account `id` of `namespace`, as stored (with its secret's hash).
    pub fn auth_account(
        &self,
        namespace: &Namespace,
        id: &str,
    ) -> Result<Option<crate::auth::StoredAccount>, KvError> {
        crate::state::auth::account(self.kv.as_ref(), namespace, id)
    }

    /// Every account of `namespace`.
    pub fn auth_accounts(
        &self,
        namespace: &Namespace,
    ) -> Result<Vec<crate::auth::StoredAccount>, KvError> {
        crate::state::auth::accounts(self.kv.as_ref(), namespace)
    }

    /// The rules of `namespace` (`default` alone until the first rule change).
    pub fn auth_rules(&self, namespace: &Namespace) -> Result<Vec<crate::auth::Rule>, KvError> {
        crate::state::auth::rules(self.kv.as_ref(), namespace)
    }

    /// The config leaves of `namespace` at and under `path` (paths from the root).
    pub fn config_leaves(
        &self,
        namespace: &Namespace,
        path: &str,
    ) -> Result<Vec<(String, crate::config::Leaf)>, KvError> {
        crate::state::config::leaves(self.kv.as_ref(), namespace, path)
    }

    /// Where `topic`'s log of `namespace` starts and ends.
    pub fn events_head(
        &self,
        namespace: &Namespace,
        topic: &str,
    ) -> Result<crate::events::TopicHead, KvError> {
        crate::state::events::head(self.kv.as_ref(), namespace, topic)
    }

    /// Up to `max` events of `topic` from `from_seq` on, in order.
    pub fn events_range(
        &self,
        namespace: &Namespace,
        topic: &str,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<crate::events::StoredEvent>, KvError> {
        crate::state::events::range(self.kv.as_ref(), namespace, topic, from_seq, max)
    }

    /// The seq of the first event of `topic` appended at or after `at_ms`.
    pub fn events_seq_at(
        &self,
        namespace: &Namespace,
        topic: &str,
        at_ms: u64,
    ) -> Result<u64, KvError> {
        crate::state::events::seq_at(self.kv.as_ref(), namespace, topic, at_ms)
    }

    /// Consumer group `group` of `topic`, if it has claimed anything.
    pub fn events_group(
        &self,
        namespace: &Namespace,
        topic: &str,
        group: &str,
    ) -> Result<Option<crate::events::Group>, KvError> {
        crate::state::events::group(self.kv.as_ref(), namespace, topic, group)
    }

    /// Every consumer group of every topic: namespace, topic, group, state.
    pub fn events_groups(
        &self,
    ) -> Result<Vec<(Namespace, String, String, crate::events::Group)>, KvError> {
        crate::state::events::groups(self.kv.as_ref())
    }

    /// The manifest of blob `key` of `namespace`, if it exists.
    pub fn blob_manifest(
        &self,
        namespace: &Namespace,
        key: &str,
    ) -> Result<Option<crate::state::blobs::Manifest>, KvError> {
        crate::state::blobs::manifest(self.kv.as_ref(), namespace, key)
    }

    /// Chunk `index` of blob upload `upload`.
    pub fn blob_chunk(
        &self,
        namespace: &Namespace,
        upload: &str,
        index: u32,
    ) -> Result<Option<Vec<u8>>, KvError> {
        crate::state::blobs::chunk(self.kv.as_ref(), namespace, upload, index)
    }

    /// The blob keys of `namespace` starting with `prefix`.
    pub fn blob_keys(&self, namespace: &Namespace, prefix: &str) -> Result<Vec<String>, KvError> {
        crate::state::blobs::keys(self.kv.as_ref(), namespace, prefix)
    }

    /// The cluster's signing keys, once bootstrapped.
    pub fn auth_keys(&self) -> Result<Option<crate::auth::SigningKeys>, KvError> {
        crate::state::auth::keys(self.kv.as_ref())
    }

    /// Reads one record exactly, or the records matching a prefix and/or suffix. An
    /// exact read of a missing or expired key is `NotFound`; a scan may return nothing.
    pub fn store_read(
        &self,
        path: &TablePath,
        query: &ReadQuery,
    ) -> Result<Vec<Record>, StoreError> {
        query.validate()?;
        let now = self.log_time_ms().map_err(internal)?;
        if !query.is_scan() {
            let stored = self
                .kv
                .get(Space::Store, &record_key(path, &query.key))
                .map_err(internal)?;
            let record = stored
                .and_then(|b| decode::<StoredRecord>(&b))
                .and_then(|s| live(&query.key, s, now));
            return record.map(|r| vec![r]).ok_or_else(|| StoreError::NotFound {
                key: query.key.clone(),
                database: path.database.clone(),
                table: path.table.clone(),
            });
        }
        let prefix = if query.prefix { query.key.as_str() } else { "" };
        let suffix = if query.suffix { query.key.as_str() } else { "" };
        let window = Window::new(query.offset, query.limit, READ_RECORDS_MAX);
        let mut out = Vec::new();
        self.scan_live(
            path,
            prefix,
            suffix,
            query.order,
            window,
            &mut |key, stored| {
                if let Some(record) = live(key, stored, now) {
                    out.push(record);
                }
            },
        )?;
        Ok(out)
    }

    /// Every live record of a namespace (or of one of its databases), with its table,
    /// from one scan: what one moment of the applied state holds, in key order. Expiry
    /// is the time left at that moment.
    pub fn store_snapshot(
        &self,
        namespace: &Namespace,
        database: Option<&str>,
    ) -> Result<Vec<(TablePath, Record)>, StoreError> {
        let now = self.log_time_ms().map_err(internal)?;
        let mut out = Vec::new();
        let mut corrupt = None;
        self.kv
            .scan(
                Space::Store,
                &KeyRange::prefix(&records_prefix(namespace, database)),
                ScanOrder::Asc,
                &mut |k, v| {
                    let parsed = parse_path(k).and_then(|(path, key)| {
                        let key = std::str::from_utf8(key).ok()?.to_owned();
                        Some((path, key, decode::<StoredRecord>(v)?))
                    });
                    let Some((path, key, stored)) = parsed else {
                        corrupt = Some(k.to_vec());
                        return false;
                    };
                    if let Some(record) = live(&key, stored, now) {
                        out.push((path, record));
                    }
                    true
                },
            )
            .map_err(internal)?;
        match corrupt {
            Some(key) => Err(StoreError::Internal(format!(
                "stored record {} is corrupt",
                String::from_utf8_lossy(&key)
            ))),
            None => Ok(out),
        }
    }

    /// Lists the keys of live records in a table.
    pub fn store_list(
        &self,
        path: &TablePath,
        query: &ListQuery,
    ) -> Result<Vec<String>, StoreError> {
        let window = Window::new(query.offset, query.limit, LIST_KEYS_MAX);
        let mut out = Vec::new();
        self.scan_live(
            path,
            &query.prefix,
            &query.suffix,
            query.order,
            window,
            &mut |key, _| {
                out.push(key.to_owned());
            },
        )?;
        Ok(out)
    }

    /// The databases of a namespace that hold records.
    pub fn store_databases(&self, namespace: &Namespace) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        self.catalogue(namespace, None, &mut |path| {
            if out.last() != Some(&path.database) {
                out.push(path.database);
            }
        })?;
        Ok(out)
    }

    /// The tables of a database that hold records.
    pub fn store_tables(
        &self,
        namespace: &Namespace,
        database: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        self.catalogue(namespace, Some(database), &mut |path| out.push(path.table))?;
        Ok(out)
    }

    fn catalogue(
        &self,
        namespace: &Namespace,
        database: Option<&str>,
        visit: &mut dyn FnMut(TablePath),
    ) -> Result<(), StoreError> {
        let range = KeyRange::prefix(&catalogue_prefix(namespace, database));
        self.kv
            .scan(Space::Store, &range, ScanOrder::Asc, &mut |k, _| {
                if let Some((path, _)) = parse_path(k) {
                    visit(path);
                }
                true
            })
            .map_err(internal)
    }

    /// Visits the live records of `path` whose keys match, inside the offset/limit window.
    fn scan_live(
        &self,
        path: &TablePath,
        prefix: &str,
        suffix: &str,
        order: Order,
        mut window: Window,
        visit: &mut dyn FnMut(&str, StoredRecord),
    ) -> Result<(), StoreError> {
        let now = self.log_time_ms().map_err(internal)?;
        let table_prefix = record_prefix(path);
        let mut start = table_prefix.clone();
        start.extend_from_slice(prefix.as_bytes());
        let order = match order {
            Order::Asc => ScanOrder::Asc,
            Order::Desc => ScanOrder::Desc,
        };
        let mut corrupt = None;
        self.kv
            .scan(
                Space::Store,
                &KeyRange::prefix(&start),
                order,
                &mut |k, v| {
                    let Ok(key) = std::str::from_utf8(&k[table_prefix.len()..]) else {
                        return true;
                    };
                    if !key.ends_with(suffix) {
                        return true;
                    }
                    let Some(stored) = decode::<StoredRecord>(v) else {
                        corrupt = Some(key.to_owned());
                        return false;
                    };
                    if stored.expires_at_ms.is_some_and(|at| at <= now) {
                        return true;
                    }
                    if window.admit() {
                        visit(key, stored);
                    }
                    !window.full()
                },
            )
            .map_err(internal)?;
        match corrupt {
            Some(key) => Err(StoreError::Internal(format!("record {key:?} is corrupt"))),
            None => Ok(()),
        }
    }
}

/// Offset and limit over a stream of matches.
#[derive(Debug)]
struct Window {
    skip: u64,
    left: u64,
}

impl Window {
    fn new(offset: u64, limit: u64, max: usize) -> Self {
        let max = u64::try_from(max).unwrap_or(u64::MAX);
        let left = if limit == 0 { max } else { limit.min(max) };
        Self { skip: offset, left }
    }

    /// Whether the next match is inside the window (and consumes it).
    fn admit(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }

    fn full(&self) -> bool {
        self.skip == 0 && self.left == 0
    }
}

/// The record if it is live at `now`, with its remaining time to live in seconds.
fn live(key: &str, stored: StoredRecord, now: u64) -> Option<Record> {
    let expiry_secs = match stored.expires_at_ms {
        Some(at) if at <= now => return None,
        Some(at) => Some((at - now).div_ceil(1000)),
        None => None,
    };
    Some(Record {
        key: key.to_owned(),
        value: stored.value,
        expiry_secs,
        metadata: stored.metadata,
    })
}

fn internal(err: KvError) -> StoreError {
    StoreError::Internal(err.0)
}

#[cfg(test)]
mod tests;
