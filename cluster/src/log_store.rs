//! [`KvLogStore`]: the Raft log on a `KvBackend`.
//!
//! Space `Log` holds entries under their big-endian index; space `Raft` holds the vote,
//! the committed log id and the last purged log id. Appends are durable through the
//! [`Flusher`] (group commit); the vote is synced before `save_vote` returns.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use micro_core::kv::{KeyRange, KvBackend, ScanOrder, Space, WriteBatch};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError,
    Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{decode, decode_checked, encode, encode_checked};
use crate::{Flusher, TypeConfig};

const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const PURGED_KEY: &[u8] = b"last_purged";

type StorageResult<T> = Result<T, StorageError<u64>>;

/// The Raft log of one node on a [`KvBackend`].
#[derive(Debug, Clone)]
pub struct KvLogStore {
    kv: Arc<dyn KvBackend>,
    flusher: Flusher,
    committed_index: Arc<AtomicU64>,
}

impl KvLogStore {
    /// A log store on `kv`, made durable by `flusher` (which must flush the same `kv`).
    pub fn new(kv: Arc<dyn KvBackend>, flusher: Flusher) -> Self {
        Self {
            kv,
            flusher,
            committed_index: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The index of the last committed entry this store was told of.
    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed_index.clone()
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &[u8]) -> StorageResult<Option<T>> {
        let bytes = self
            .kv
            .get(Space::Raft, key)
            .map_err(|e| StorageIOError::read(&e))?;
        match bytes {
            None => Ok(None),
            Some(b) => Ok(Some(decode(&b).map_err(StorageIOError::read)?)),
        }
    }

    fn write_meta<T: Serialize>(&self, key: &[u8], value: &T) -> StorageResult<()> {
        let mut batch = WriteBatch::default();
        batch.put(
            Space::Raft,
            key.to_vec(),
            encode(value).map_err(StorageIOError::write)?,
        );
        self.kv
            .write(batch)
            .map_err(|e| StorageIOError::write(&e).into())
    }
}

fn index_key(index: u64) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}

fn index_range<RB: RangeBounds<u64>>(range: &RB) -> Option<KeyRange> {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.checked_add(1).map(index_key),
        Bound::Excluded(e) => Some(index_key(*e)),
        Bound::Unbounded => None,
    };
    Some(KeyRange {
        start: index_key(start),
        end,
    })
}

impl RaftLogReader<TypeConfig> for KvLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let Some(keys) = index_range(&range) else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        let mut failure = None;
        self.kv
            .scan(
                Space::Log,
                &keys,
                ScanOrder::Asc,
                &mut |_, v| match decode_checked(v) {
                    Ok(entry) => {
                        entries.push(entry);
                        true
                    }
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                },
            )
            .map_err(|e| StorageIOError::read_logs(&e))?;
        match failure {
            Some(e) => Err(StorageIOError::read_logs(e).into()),
            None => Ok(entries),
        }
    }
}

impl openraft::storage::RaftLogStorage<TypeConfig> for KvLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<u64>> = self.read_meta(PURGED_KEY)?;
        let mut last = None;
        self.kv
            .scan(
                Space::Log,
                &KeyRange::prefix(b""),
                ScanOrder::Desc,
                &mut |_, v| {
                    last = Some(decode_checked::<Entry<TypeConfig>>(v));
                    false
                },
            )
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let last_log_id = match last {
            Some(entry) => Some(entry.map_err(StorageIOError::read_logs)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> StorageResult<()> {
        self.write_meta(VOTE_KEY, vote)?;
        // A vote must never be forgotten: a node that votes twice in one term breaks Raft.
        self.flusher
            .sync()
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<u64>>> {
        self.read_meta(VOTE_KEY)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> StorageResult<()> {
        if let Some(log_id) = committed {
            self.committed_index
                .fetch_max(log_id.index, Ordering::Relaxed);
        }
        self.write_meta(COMMITTED_KEY, &committed)
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<u64>>> {
        let committed: Option<Option<LogId<u64>>> = self.read_meta(COMMITTED_KEY)?;
        // The committed id is saved lazily, so after a restart it can trail what the
        // state machine applied (and snapshotted). Whatever was applied was committed:
        // report the later of the two, or openraft finds its snapshot ahead of its
        // commit index and refuses to start.
        let applied: Option<LogId<u64>> = match self
            .kv
            .get(Space::Meta, crate::state_machine::LAST_APPLIED_KEY)
            .map_err(|e| StorageIOError::read(&e))?
        {
            Some(bytes) => decode(&bytes).map_err(StorageIOError::read)?,
            None => None,
        };
        let committed = committed.flatten().max(applied);
        if let Some(log_id) = committed {
            self.committed_index
                .fetch_max(log_id.index, Ordering::Relaxed);
        }
        Ok(committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        for entry in entries {
            let bytes = encode_checked(&entry)
                .map_err(|e| StorageIOError::write_log_entry(entry.log_id, e))?;
            batch.put(Space::Log, index_key(entry.log_id.index), bytes);
        }
        self.kv
            .write(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.flusher.after_sync(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        let mut batch = WriteBatch::default();
        batch.delete_range(Space::Log, index_key(log_id.index), index_key(u64::MAX));
        self.kv
            .write(batch)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        let mut batch = WriteBatch::default();
        let bytes = encode(&log_id).map_err(StorageIOError::write_logs)?;
        batch.put(Space::Raft, PURGED_KEY.to_vec(), bytes);
        batch.delete_range(
            Space::Log,
            index_key(0),
            index_key(log_id.index.saturating_add(1)),
        );
        self.kv
            .write(batch)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

/// Wraps a message as an `AnyError`.
pub(crate) fn any_error(message: impl ToString) -> AnyError {
    AnyError::error(message)
}

// `RaftLogStorage` is sealed unless openraft's `storage-v2` feature is on; this assertion
// fails to compile if that feature is ever dropped.
const _: fn() = || {
    fn assert_storage<T: RaftLogStorage<TypeConfig>>() {}
    assert_storage::<KvLogStore>();
};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use micro_core::kv::{KvBackend, MemKvBackend, Space, WriteBatch};
    use openraft::storage::RaftLogStorage;
    use openraft::{CommittedLeaderId, LogId};

    use crate::{Flusher, KvLogStore};

    fn id(index: u64) -> LogId<u64> {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    /// Regression (t20_failover, #5): after a restart the lazily saved committed id was
    /// behind the snapshot the state machine had taken, and openraft refused to start.
    #[tokio::test]
    async fn the_committed_id_read_at_start_is_never_behind_what_was_applied() {
        let kv: Arc<dyn KvBackend> = Arc::new(MemKvBackend::new());
        let mut log = KvLogStore::new(kv.clone(), Flusher::spawn(kv.clone()));
        log.save_committed(Some(id(5))).await.unwrap();
        let mut batch = WriteBatch::default();
        let applied = crate::codec::encode(&Some(id(9))).unwrap();
        batch.put(
            Space::Meta,
            crate::state_machine::LAST_APPLIED_KEY.to_vec(),
            applied,
        );
        kv.write(batch).unwrap();
        assert_eq!(log.read_committed().await.unwrap(), Some(id(9)));
        log.save_committed(Some(id(12))).await.unwrap();
        assert_eq!(log.read_committed().await.unwrap(), Some(id(12)));
    }
}
