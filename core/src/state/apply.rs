//! The pure, deterministic `apply` of one log entry.

use crate::kv::{KvBackend, KvError, Space, WriteBatch};
use crate::state::keys::{
    self, EXPIRY_TAG, LOG_TIME_KEY, StoredRecord, catalogue_key, decode, encode, expiry_key,
    record_key,
};
use crate::state::{Command, Request, Response, auth, blobs, config, events, services};
use crate::store::{Record, TablePath};

/// The most expired records one tick purges; the rest wait for the next tick (reads
/// already hide them).
pub const PURGE_PER_TICK: usize = 1024;
/// The most expired events one tick purges: ticks come at least once a second even
/// under load, and a busy topic may take thousands of events a second.
pub(crate) const EVENTS_PURGE_PER_TICK: usize = 16_384;

/// What applying one entry produced: the writes to make and the reply for the proposer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The state changes, to be written atomically with the caller's own bookkeeping.
    pub batch: WriteBatch,
    /// The reply to the proposer.
    pub response: Response,
    /// The log time after this entry.
    pub log_time_ms: u64,
}

/// Applies `request` to the state in `kv`, returning the writes to make. Reads `kv`, never
/// writes it: the caller writes `batch` (with its own bookkeeping) before the next entry.
///
/// The result depends only on the state and the request, so every replica that applies
/// the same log reaches the same state.
///
/// ```
/// use micro_core::kv::{KvBackend, MemKvBackend};
/// use micro_core::state::{apply, Command, Request, StateReader};
/// use micro_core::store::{ReadQuery, Record, TablePath};
/// use std::sync::Arc;
///
/// let kv = Arc::new(MemKvBackend::new());
/// let path = TablePath::resolve(Default::default(), "", "").unwrap();
/// let record = Record { key: "foo".into(), value: b"bar".to_vec(), ..Record::default() };
/// let request = Request { at_ms: 1_000, command: Command::StorePut { path: path.clone(), record } };
/// kv.write(apply(kv.as_ref(), &request).unwrap().batch).unwrap();
///
/// let reader = StateReader::new(kv);
/// let found = reader.store_read(&path, &ReadQuery { key: "foo".into(), ..ReadQuery::default() });
/// assert_eq!(found.unwrap()[0].value, b"bar");
/// ```
pub fn apply(kv: &dyn KvBackend, request: &Request) -> Result<Applied, KvError> {
    let previous = read_log_time(kv)?;
    // Log time never goes backwards, even if a new leader's clock is behind the old one's.
    let now = previous.max(request.at_ms);
    let mut batch = WriteBatch::default();
    if now != previous {
        batch.put(
            Space::Meta,
            LOG_TIME_KEY.to_vec(),
            now.to_be_bytes().to_vec(),
        );
    }
    let response = match &request.command {
        Command::Tick => purge_expired(kv, now, &mut batch)?,
        Command::StorePut { path, record } => put(kv, path, record, now, &mut batch)?,
        Command::StoreDelete { path, key } => delete(kv, &record_key(path, key), now, &mut batch)?,
        Command::RegistryRegister {
            namespace,
            registration,
        } => services::register(kv, namespace, registration, now, &mut batch)?,
        Command::RegistryDeregister {
            namespace,
            name,
            version,
            node_ids,
        } => services::deregister(kv, namespace, name, version, node_ids, &mut batch)?,
        Command::AuthBootstrap { keys, admin } => auth::bootstrap(kv, keys, admin, &mut batch)?,
        Command::AuthAccountCreate { namespace, account } => {
            auth::account_create(kv, namespace, account, &mut batch)?
        }
        Command::AuthAccountUpdate {
            namespace,
            account,
            revision,
        } => auth::account_update(kv, namespace, account, *revision, &mut batch)?,
        Command::AuthAccountDelete { namespace, id } => {
            auth::account_delete(kv, namespace, id, &mut batch)?
        }
        Command::AuthRulePut { namespace, rule } => {
            auth::rule_put(kv, namespace, rule, &mut batch)?
        }
        Command::AuthRuleDelete { namespace, id } => {
            auth::rule_delete(kv, namespace, id, &mut batch)?
        }
        Command::ConfigSet { namespace, leaves } => config::set(namespace, leaves, &mut batch),
        Command::ConfigDelete { namespace, path } => {
            config::delete(kv, namespace, path, &mut batch)?
        }
        Command::RuntimeUpsert { .. }
        | Command::RuntimeDelete { .. }
        | Command::RuntimeChange { .. } => {
            services::runtime_apply(kv, &request.command, now, &mut batch)?
        }
        Command::EventsAppend { .. }
        | Command::EventsClaim { .. }
        | Command::EventsAck { .. }
        | Command::EventsLeave { .. } => events::apply(kv, &request.command, now, &mut batch)?,
        Command::BlobChunk { .. } | Command::BlobCommit { .. } | Command::BlobDelete { .. } => {
            blobs::apply(kv, &request.command, now, &mut batch)?
        }
    };
    Ok(Applied {
        batch,
        response,
        log_time_ms: now,
    })
}

/// The log time recorded in `kv` (0 before the first entry).
pub(crate) fn read_log_time(kv: &dyn KvBackend) -> Result<u64, KvError> {
    let bytes = kv.get(Space::Meta, LOG_TIME_KEY)?;
    Ok(bytes
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes))
}

fn put(
    kv: &dyn KvBackend,
    path: &TablePath,
    record: &Record,
    now: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let key = record_key(path, &record.key);
    match load(kv, &key)? {
        Some(old) => {
            if let Some(at) = old.expires_at_ms {
                batch.delete(Space::Store, expiry_key(at, &key));
            }
        }
        None => adjust_catalogue(kv, path, 1, batch)?,
    }
    let expires_at_ms = record
        .expiry_secs
        .map(|s| now.saturating_add(s.saturating_mul(1000)));
    if let Some(at) = expires_at_ms {
        batch.put(Space::Store, expiry_key(at, &key), Vec::new());
    }
    let stored = StoredRecord {
        value: record.value.clone(),
        metadata: record.metadata.clone(),
        expires_at_ms,
    };
    batch.put(Space::Store, key, encode(&stored));
    Ok(Response::Done)
}

fn delete(
    kv: &dyn KvBackend,
    key: &[u8],
    now: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let Some(old) = load(kv, key)? else {
        return Ok(Response::Deleted { existed: false });
    };
    let live = old.expires_at_ms.is_none_or(|at| at > now);
    remove(kv, key, &old, batch)?;
    Ok(Response::Deleted { existed: live })
}

/// Removes a stored record with its expiry entry and catalogue count.
fn remove(
    kv: &dyn KvBackend,
    key: &[u8],
    old: &StoredRecord,
    batch: &mut WriteBatch,
) -> Result<(), KvError> {
    if let Some(at) = old.expires_at_ms {
        batch.delete(Space::Store, expiry_key(at, key));
    }
    batch.delete(Space::Store, key.to_vec());
    if let Some((path, _)) = keys::parse_path(key) {
        adjust_catalogue(kv, &path, -1, batch)?;
    }
    Ok(())
}

fn purge_expired(
    kv: &dyn KvBackend,
    now: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let due = keys::due_expiries(kv, Space::Store, EXPIRY_TAG, now, PURGE_PER_TICK)?;
    let mut purged = 0;
    // Several records of one table may expire together: count catalogue changes once
    // per table so each decrement sees the previous one.
    let mut per_table = std::collections::BTreeMap::<TablePath, i64>::new();
    for index_key in due {
        batch.delete(Space::Store, index_key.clone());
        let Some((at, key)) = keys::split_expiry_key(&index_key) else {
            continue;
        };
        let Some(old) = load(kv, key)? else { continue };
        if old.expires_at_ms != Some(at) {
            continue;
        }
        batch.delete(Space::Store, key.to_vec());
        if let Some((path, _)) = keys::parse_path(key) {
            *per_table.entry(path).or_default() -= 1;
        }
        purged += 1;
    }
    for (path, delta) in per_table {
        adjust_catalogue(kv, &path, delta, batch)?;
    }
    purged += services::purge_expired(kv, now, PURGE_PER_TICK, batch)?;
    purged += events::purge_expired(kv, now, EVENTS_PURGE_PER_TICK, batch)?;
    purged += blobs::purge_expired(kv, now, PURGE_PER_TICK, batch)?;
    Ok(Response::Ticked { purged })
}

fn load(kv: &dyn KvBackend, key: &[u8]) -> Result<Option<StoredRecord>, KvError> {
    match kv.get(Space::Store, key)? {
        None => Ok(None),
        Some(bytes) => decode(&bytes).map(Some).ok_or_else(|| {
            KvError(format!(
                "corrupt store record under {} bytes key",
                key.len()
            ))
        }),
    }
}

fn adjust_catalogue(
    kv: &dyn KvBackend,
    path: &TablePath,
    delta: i64,
    batch: &mut WriteBatch,
) -> Result<(), KvError> {
    let key = catalogue_key(path);
    let current = kv
        .get(Space::Store, &key)?
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes);
    let next = current.saturating_add_signed(delta);
    if next == 0 {
        batch.delete(Space::Store, key);
    } else {
        batch.put(Space::Store, key, next.to_be_bytes().to_vec());
    }
    Ok(())
}
