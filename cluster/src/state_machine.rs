//! [`KvStateMachine`]: the replicated state machine on a `KvBackend`.
//!
//! Each entry is applied by micro-core's pure `apply` and written in one batch together
//! with the last-applied log id (and membership), so the state and its position in the
//! log never disagree, even across a crash. The state is not fsynced per entry: the log
//! is, and entries after the last durable `last_applied` are re-applied on restart.
//!
//! Snapshots carry every state space (`Meta`, `Store`). They are copied while the state
//! machine is paused between entries (`get_snapshot_builder`), so each is consistent,
//! then written to space `Snapshot` and synced before openraft purges the log behind it.

use std::io::Cursor;
use std::sync::Arc;

use micro_core::kv::{KeyRange, KvBackend, ScanOrder, Space, WriteBatch};
use micro_core::state::{Request, Response, apply};
use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::codec::{decode, decode_checked, encode, encode_checked};
use crate::proposal::{Outcomes, Proposal};
use crate::{Flusher, TypeConfig};

pub(crate) const LAST_APPLIED_KEY: &[u8] = b"raft_last_applied";
const MEMBERSHIP_KEY: &[u8] = b"raft_membership";
/// How far into an entry's commands the state is: `(log index, commands applied)`,
/// written with each command but the last, removed with the entry's position.
const PROGRESS_KEY: &[u8] = b"raft_apply_progress";
pub(crate) const SNAPSHOT_KEY: &[u8] = b"current";

type StorageResult<T> = Result<T, StorageError<u64>>;
type Membership = StoredMembership<u64, openraft::BasicNode>;

/// The contents of a snapshot: every key of every state space.
/// Every key and value of one space.
/// Bytes as bytes: serde would otherwise write (and read) them one element at a time,
/// which unoptimised builds take seconds over for a snapshot holding blobs. Same format.
type SpaceDump = (Space, Vec<(ByteBuf, ByteBuf)>);

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotData {
    spaces: Vec<SpaceDump>,
}

/// A snapshot as kept in space `Snapshot`.
#[derive(Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, openraft::BasicNode>,
    data: Vec<u8>,
}

/// Decodes a snapshot as kept in space `Snapshot`, checking its CRC.
pub(crate) fn check_stored_snapshot(bytes: &[u8]) -> Result<(), openraft::AnyError> {
    decode_checked::<StoredSnapshot>(bytes).map(|_| ())
}

/// The metadata and body of a stored snapshot (space `Snapshot`), checksum checked.
pub(crate) fn open_stored_snapshot(
    bytes: &[u8],
) -> Result<(SnapshotMeta<u64, openraft::BasicNode>, Vec<u8>), openraft::AnyError> {
    let stored: StoredSnapshot = decode_checked(bytes)?;
    // The body must decode too: a restore refuses a damaged one before writing.
    decode_checked::<SnapshotData>(&stored.data)?;
    Ok((stored.meta, stored.data))
}

/// The state machine of one node on a [`KvBackend`].
#[derive(Debug, Clone)]
pub struct KvStateMachine {
    kv: Arc<dyn KvBackend>,
    flusher: Flusher,
}

impl KvStateMachine {
    /// A state machine on `kv`, made durable by `flusher`.
    pub fn new(kv: Arc<dyn KvBackend>, flusher: Flusher) -> Self {
        Self { kv, flusher }
    }

    fn applied(&self) -> StorageResult<(Option<LogId<u64>>, Membership)> {
        let read = |key: &[u8]| {
            self.kv
                .get(Space::Meta, key)
                .map_err(|e| StorageIOError::read_state_machine(&e))
        };
        let last_applied = match read(LAST_APPLIED_KEY)? {
            Some(b) => decode(&b).map_err(StorageIOError::read_state_machine)?,
            None => None,
        };
        let membership = match read(MEMBERSHIP_KEY)? {
            Some(b) => decode(&b).map_err(StorageIOError::read_state_machine)?,
            None => Membership::default(),
        };
        Ok((last_applied, membership))
    }

    fn apply_one(&self, entry: &Entry<TypeConfig>) -> StorageResult<Outcomes> {
        let mut batch = WriteBatch::default();
        let mut outcomes = Vec::new();
        match &entry.payload {
            EntryPayload::Blank => {}
            EntryPayload::Normal(proposal) => {
                outcomes = self.apply_commands(entry.log_id, proposal, &mut batch)?;
            }
            EntryPayload::Membership(membership) => {
                let stored = Membership::new(Some(entry.log_id), membership.clone());
                let bytes = encode(&stored).map_err(|e| StorageIOError::apply(entry.log_id, e))?;
                batch.put(Space::Meta, MEMBERSHIP_KEY.to_vec(), bytes);
            }
        }
        let position =
            encode(&Some(entry.log_id)).map_err(|e| StorageIOError::apply(entry.log_id, e))?;
        batch.put(Space::Meta, LAST_APPLIED_KEY.to_vec(), position);
        self.kv
            .write(batch)
            .map_err(|e| StorageIOError::apply(entry.log_id, &e))?;
        Ok(Outcomes(outcomes))
    }

    /// Applies the commands of one entry in order. Each command must see the writes of
    /// the ones before it, so all but the last are written at once, each with a progress
    /// mark; the last goes into `batch`, which the caller writes with the entry's
    /// position (and which drops the mark). A crash in between re-applies the entry on
    /// restart from the first command the mark does not cover: not every command is
    /// idempotent (an events append would append again, under new seqs, on this node
    /// only). Nobody waits for the skipped commands' replies after a restart.
    fn apply_commands(
        &self,
        log_id: LogId<u64>,
        proposal: &Proposal,
        batch: &mut WriteBatch,
    ) -> StorageResult<Vec<Response>> {
        let done = self.progress(log_id)?;
        let mut responses = Vec::with_capacity(proposal.commands.len());
        let last = proposal.commands.len().saturating_sub(1);
        for (i, command) in proposal.commands.iter().enumerate() {
            if i < done {
                responses.push(Response::Done);
                continue;
            }
            let request = Request {
                at_ms: proposal.at_ms,
                command: command.clone(),
            };
            let applied =
                apply(self.kv.as_ref(), &request).map_err(|e| StorageIOError::apply(log_id, &e))?;
            responses.push(applied.response);
            if i == last {
                batch.extend(applied.batch);
                batch.delete(Space::Meta, PROGRESS_KEY.to_vec());
            } else {
                let mut step = applied.batch;
                let mark =
                    encode(&(log_id.index, i + 1)).map_err(|e| StorageIOError::apply(log_id, e))?;
                step.put(Space::Meta, PROGRESS_KEY.to_vec(), mark);
                self.kv
                    .write(step)
                    .map_err(|e| StorageIOError::apply(log_id, &e))?;
            }
        }
        Ok(responses)
    }

    /// How many commands of the entry at `log_id` are already applied (0 unless a crash
    /// interrupted this very entry).
    fn progress(&self, log_id: LogId<u64>) -> StorageResult<usize> {
        let stored = self
            .kv
            .get(Space::Meta, PROGRESS_KEY)
            .map_err(|e| StorageIOError::apply(log_id, &e))?;
        let Some(bytes) = stored else { return Ok(0) };
        let (index, done): (u64, usize) =
            decode(&bytes).map_err(|e| StorageIOError::apply(log_id, e))?;
        Ok(if index == log_id.index { done } else { 0 })
    }

    /// Copies every state space: the body of a snapshot.
    fn dump(&self) -> StorageResult<SnapshotData> {
        let mut spaces = Vec::new();
        for space in Space::STATE {
            let mut pairs = Vec::new();
            self.kv
                .scan(
                    space,
                    &KeyRange::prefix(b""),
                    ScanOrder::Asc,
                    &mut |k, v| {
                        pairs.push((ByteBuf::from(k), ByteBuf::from(v)));
                        true
                    },
                )
                .map_err(|e| StorageIOError::read_state_machine(&e))?;
            spaces.push((space, pairs));
        }
        Ok(SnapshotData { spaces })
    }

    async fn save_snapshot(
        &self,
        stored: &StoredSnapshot,
        mut batch: WriteBatch,
    ) -> StorageResult<()> {
        let signature = Some(stored.meta.signature());
        let bytes = encode_checked(stored)
            .map_err(|e| StorageIOError::write_snapshot(signature.clone(), e))?;
        batch.put(Space::Snapshot, SNAPSHOT_KEY.to_vec(), bytes);
        self.kv
            .write(batch)
            .map_err(|e| StorageIOError::write_snapshot(signature.clone(), &e))?;
        // openraft purges the log behind a snapshot: the state it covers must be on disk.
        self.flusher
            .sync()
            .await
            .map_err(|e| StorageIOError::write_snapshot(signature, &e).into())
    }
}

/// Builds a snapshot from a copy taken between two entries.
#[derive(Debug)]
pub struct KvSnapshotBuilder {
    machine: KvStateMachine,
    copy: StorageResult<(SnapshotData, Option<LogId<u64>>, Membership)>,
}

impl RaftSnapshotBuilder<TypeConfig> for KvSnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let (data, last_applied, membership) = std::mem::replace(
            &mut self.copy,
            Err(
                StorageIOError::read_state_machine(crate::log_store::any_error(
                    "snapshot already built",
                ))
                .into(),
            ),
        )?;
        let snapshot_id = match last_applied {
            Some(id) => format!("{}-{}", id.leader_id.term, id.index),
            None => "empty".to_owned(),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let body = encode_checked(&data)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: body.clone(),
        };
        self.machine
            .save_snapshot(&stored, WriteBatch::default())
            .await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(body)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for KvStateMachine {
    type SnapshotBuilder = KvSnapshotBuilder;

    async fn applied_state(&mut self) -> StorageResult<(Option<LogId<u64>>, Membership)> {
        self.applied()
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Outcomes>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        entries
            .into_iter()
            .map(|entry| self.apply_one(&entry))
            .collect()
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let copy = self
            .applied()
            .and_then(|(last, membership)| Ok((self.dump()?, last, membership)));
        KvSnapshotBuilder {
            machine: self.clone(),
            copy,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let body = snapshot.into_inner();
        let data: SnapshotData = decode_checked(&body)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), e))?;
        let mut batch = WriteBatch::default();
        for space in Space::STATE {
            // Keys have no upper bound a range could name, so the old state is removed
            // key by key.
            self.kv
                .scan(
                    space,
                    &KeyRange::prefix(b""),
                    ScanOrder::Asc,
                    &mut |k, _| {
                        batch.delete(space, k.to_vec());
                        true
                    },
                )
                .map_err(|e| StorageIOError::write_state_machine(&e))?;
        }
        for (space, pairs) in data.spaces {
            for (key, value) in pairs {
                batch.put(space, key.into_vec(), value.into_vec());
            }
        }
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: body,
        };
        self.save_snapshot(&stored, batch).await
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let bytes = self
            .kv
            .get(Space::Snapshot, SNAPSHOT_KEY)
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        let Some(bytes) = bytes else { return Ok(None) };
        let stored: StoredSnapshot =
            decode_checked(&bytes).map_err(|e| StorageIOError::read_snapshot(None, e))?;
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use micro_core::events::Event;
    use micro_core::kv::{KvBackend, MemKvBackend, Space};
    use micro_core::state::{Command, StateReader};
    use micro_core::{Namespace, state};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

    use super::{KvStateMachine, PROGRESS_KEY};
    use crate::Flusher;
    use crate::proposal::Proposal;

    fn append(body: &str) -> Command {
        Command::EventsAppend {
            namespace: Namespace::default(),
            topic: "t".into(),
            events: vec![Event {
                topic: "t".into(),
                payload: body.as_bytes().to_vec(),
                ..Event::default()
            }],
            retention_ms: 60_000,
        }
    }

    /// A crash after the first command of an entry was written re-applies the entry on
    /// restart: the first command must not be applied twice (an append would append
    /// again, on this node only).
    #[tokio::test]
    async fn an_entry_interrupted_by_a_crash_is_resumed_not_repeated() {
        let kv: Arc<dyn KvBackend> = Arc::new(MemKvBackend::new());
        let machine = KvStateMachine::new(kv.clone(), Flusher::spawn(kv.clone()));
        let log_id = LogId::new(CommittedLeaderId::new(1, 1), 7);
        let proposal = Proposal {
            at_ms: 1_000,
            commands: vec![append("a"), append("b"), append("c")],
        };
        // What the node had written when it crashed: the first command and its mark.
        let request = state::Request {
            at_ms: 1_000,
            command: append("a"),
        };
        let mut first = state::apply(kv.as_ref(), &request).unwrap().batch;
        first.put(
            Space::Meta,
            PROGRESS_KEY.to_vec(),
            crate::codec::encode(&(7_u64, 1_usize)).unwrap(),
        );
        kv.write(first).unwrap();

        let entry = Entry {
            log_id,
            payload: EntryPayload::Normal(proposal),
        };
        machine.apply_one(&entry).unwrap();
        let events = StateReader::new(kv.clone())
            .events_range(&Namespace::default(), "t", 1, 10)
            .unwrap();
        let bodies: Vec<&[u8]> = events.iter().map(|e| e.event.payload.as_slice()).collect();
        assert_eq!(bodies, [b"a".as_slice(), b"b", b"c"]);
        assert!(kv.get(Space::Meta, PROGRESS_KEY).unwrap().is_none());
    }
}
