//! [`RocksKvBackend`]: the durable `KvBackend`, one RocksDB column family per space.
//!
//! Writes go to the WAL and memtable without fsync; `sync` is one `flush_wal(true)`
//! (fsync of the WAL), which makes every earlier write of every column family durable.
//! The flusher calls it for many writes at once (group commit).
//!
//! Corruption is an error, never a silent repair: the WAL is replayed in
//! `TolerateCorruptedTailRecords` mode, so only a record torn by a crash in the middle of
//! its write (never acknowledged: it was not synced) is dropped, and a damaged record
//! anywhere else stops the open. RocksDB's default (`PointInTimeRecovery`) would instead
//! truncate the log at the damage and open, losing acknowledged writes without a word.

use std::path::Path;

use micro_core::kv::{KeyRange, KvBackend, KvError, Op, ScanOrder, Space, WriteBatch};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, IteratorMode, Options, ReadOptions};

/// A [`KvBackend`] on RocksDB.
#[derive(Debug)]
pub struct RocksKvBackend {
    db: DB,
    dir: std::path::PathBuf,
}

impl RocksKvBackend {
    /// Opens (or creates) the database in `dir`, with a column family per [`Space`].
    pub fn open(dir: &Path) -> Result<Self, KvError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_paranoid_checks(true);
        options.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        let families = Space::ALL.map(|space| {
            let mut cf = Options::default();
            cf.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(space.name(), cf)
        });
        let db = DB::open_cf_descriptors(&options, dir, families)
            .map_err(|e| KvError(format!("open {}: {e}", dir.display())))?;
        Ok(Self {
            db,
            dir: dir.to_path_buf(),
        })
    }

    fn cf(&self, space: Space) -> Result<&ColumnFamily, KvError> {
        self.db
            .cf_handle(space.name())
            .ok_or_else(|| KvError(format!("column family {} is missing", space.name())))
    }
}

impl Drop for RocksKvBackend {
    /// A graceful stop leaves the data in SST files, not only in the WAL: the next start
    /// replays nothing, and its verification reads checksummed blocks.
    fn drop(&mut self) {
        for space in Space::ALL {
            if let Ok(cf) = self.cf(space)
                && let Err(err) = self.db.flush_cf(cf)
            {
                tracing::warn!(%err, space = space.name(), "flush at close failed");
            }
        }
    }
}

fn rocks_error(err: rocksdb::Error) -> KvError {
    KvError(err.into_string())
}

impl KvBackend for RocksKvBackend {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.db.get_cf(self.cf(space)?, key).map_err(rocks_error)
    }

    fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        order: ScanOrder,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError> {
        let mut options = ReadOptions::default();
        options.set_iterate_lower_bound(range.start.clone());
        if let Some(end) = &range.end {
            options.set_iterate_upper_bound(end.clone());
        }
        let mode = match order {
            ScanOrder::Asc => IteratorMode::Start,
            ScanOrder::Desc => IteratorMode::End,
        };
        for item in self.db.iterator_cf_opt(self.cf(space)?, options, mode) {
            let (key, value) = item.map_err(rocks_error)?;
            if !visit(&key, &value) {
                break;
            }
        }
        Ok(())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), KvError> {
        let mut rocks = rocksdb::WriteBatch::default();
        for op in batch.into_ops() {
            match op {
                Op::Put { space, key, value } => rocks.put_cf(self.cf(space)?, key, value),
                Op::Delete { space, key } => rocks.delete_cf(self.cf(space)?, key),
                Op::DeleteRange { space, start, end } => {
                    rocks.delete_range_cf(self.cf(space)?, start, end);
                }
            }
        }
        self.db.write(rocks).map_err(rocks_error)
    }

    fn sync(&self) -> Result<(), KvError> {
        self.db.flush_wal(true).map_err(rocks_error)
    }

    fn sync_blocks(&self) -> bool {
        true
    }

    fn free_space(&self) -> Option<u64> {
        let stat = rustix::fs::statvfs(&self.dir).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_conformance_suite() {
        let dirs = std::sync::Mutex::new(Vec::new());
        micro_core::testing::kv_backend_suite(|| {
            let dir = tempfile::tempdir().unwrap();
            let kv = RocksKvBackend::open(dir.path()).unwrap();
            dirs.lock().unwrap().push(dir);
            kv
        });
    }

    #[test]
    fn free_space_is_that_of_the_disk_under_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let kv = RocksKvBackend::open(dir.path()).unwrap();
        let free = kv
            .free_space()
            .expect("a real directory has a free-space figure");
        assert!(free > 0);
    }

    #[test]
    fn synced_writes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = RocksKvBackend::open(dir.path()).unwrap();
            let mut batch = WriteBatch::default();
            batch.put(Space::Store, b"k".to_vec(), b"v".to_vec());
            kv.write(batch).unwrap();
            kv.sync().unwrap();
        }
        let kv = RocksKvBackend::open(dir.path()).unwrap();
        assert_eq!(kv.get(Space::Store, b"k").unwrap(), Some(b"v".to_vec()));
    }
}
