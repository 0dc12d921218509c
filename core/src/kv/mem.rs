//! [`MemKvBackend`]: the in-memory backend, which can also play a crash.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::kv::{KeyRange, KvBackend, KvError, Op, ScanOrder, Space, WriteBatch};

type Spaces = BTreeMap<Space, BTreeMap<Vec<u8>, Vec<u8>>>;

/// An in-memory [`KvBackend`] that tracks which writes are durable, so a simulated crash
/// ([`MemKvBackend::crash`]) loses exactly the writes made since the last `sync`.
///
/// ```
/// use micro_core::kv::{KvBackend, MemKvBackend, Space, WriteBatch};
/// let kv = MemKvBackend::new();
/// let mut b = WriteBatch::default();
/// b.put(Space::Store, b"a".to_vec(), b"1".to_vec());
/// kv.write(b.clone()).unwrap();
/// kv.sync().unwrap();
/// b.put(Space::Store, b"b".to_vec(), b"2".to_vec());
/// kv.write(b).unwrap();
/// kv.crash();
/// assert!(kv.get(Space::Store, b"a").unwrap().is_some());
/// assert!(kv.get(Space::Store, b"b").unwrap().is_none());
/// ```
#[derive(Debug, Default)]
pub struct MemKvBackend {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    live: Spaces,
    durable: Spaces,
    unsynced: Vec<WriteBatch>,
}

impl MemKvBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates a crash: every write since the last `sync` is lost.
    pub fn crash(&self) {
        let mut inner = self.lock();
        inner.unsynced.clear();
        inner.live = inner.durable.clone();
    }

    /// How many batches are written but not yet durable.
    pub fn unsynced_batches(&self) -> usize {
        self.lock().unsynced.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated (every
        // mutation is a single map operation), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn apply(spaces: &mut Spaces, batch: &WriteBatch) {
    for op in batch.ops() {
        match op {
            Op::Put { space, key, value } => {
                spaces
                    .entry(*space)
                    .or_default()
                    .insert(key.clone(), value.clone());
            }
            Op::Delete { space, key } => {
                if let Some(map) = spaces.get_mut(space) {
                    map.remove(key);
                }
            }
            Op::DeleteRange { space, start, end } => {
                if let Some(map) = spaces.get_mut(space)
                    && start < end
                {
                    let doomed: Vec<Vec<u8>> = map
                        .range(start.clone()..end.clone())
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in doomed {
                        map.remove(&key);
                    }
                }
            }
        }
    }
}

impl KvBackend for MemKvBackend {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self
            .lock()
            .live
            .get(&space)
            .and_then(|m| m.get(key))
            .cloned())
    }

    fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        order: ScanOrder,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError> {
        let inner = self.lock();
        let Some(map) = inner.live.get(&space) else {
            return Ok(());
        };
        let upper = match &range.end {
            Some(end) => std::ops::Bound::Excluded(end.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let iter = map.range((std::ops::Bound::Included(range.start.clone()), upper));
        let mut go = |(k, v): (&Vec<u8>, &Vec<u8>)| visit(k, v);
        match order {
            ScanOrder::Asc => {
                for kv in iter {
                    if !go(kv) {
                        break;
                    }
                }
            }
            ScanOrder::Desc => {
                for kv in iter.rev() {
                    if !go(kv) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), KvError> {
        let mut inner = self.lock();
        apply(&mut inner.live, &batch);
        inner.unsynced.push(batch);
        Ok(())
    }

    fn sync(&self) -> Result<(), KvError> {
        let mut inner = self.lock();
        let pending = std::mem::take(&mut inner.unsynced);
        for batch in &pending {
            apply(&mut inner.durable, batch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_conformance_suite() {
        crate::testing::kv_backend_suite(MemKvBackend::new);
    }

    #[test]
    fn crash_keeps_a_prefix_of_synced_batches() {
        crate::testing::kv_backend_crash_suite(MemKvBackend::new, MemKvBackend::crash);
    }
}
