//! The batcher: client commands that arrive while earlier proposals are in flight are
//! proposed together as one log entry.
//!
//! ```text
//! propose_local ─(command, reply)─> channel ─> batcher: take a slot (at most
//!     IN_FLIGHT_MAX entries in flight), drain up to BATCH_MAX waiting commands,
//!     client_write(Proposal) in its own task ─> answer each command from its outcome
//! ```
//!
//! At low load every command is proposed at once (a slot is free); under load commands
//! queue while the slots are busy and share the next entry: one append, one fsync, one
//! replication round and one apply for all of them.

use std::sync::Arc;

use micro_core::Clock;
use micro_core::replicator::ReplicaError;
use micro_core::state::{Command, Response};
use openraft::Raft;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::node::REQUEST_DEADLINE;
use crate::node::status::fatal_error;
use crate::{Proposal, TypeConfig};

/// The most commands one log entry carries.
pub(crate) const BATCH_MAX: usize = 512;
/// Stop adding commands to an entry once their payloads pass this many bytes, so an
/// entry (and the AppendEntries carrying it) stays a few MiB however large the values.
pub(crate) const BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The most log entries this node has in flight at once.
pub(crate) const IN_FLIGHT_MAX: usize = 4;
/// The most commands waiting for a batch.
pub(crate) const QUEUE_MAX: usize = 16_384;

/// A command waiting to be proposed, with where its answer goes.
pub(crate) type Pending = (Command, oneshot::Sender<Result<Response, ReplicaError>>);

/// Starts the batcher of `raft`; it ends when every sender is dropped.
pub(crate) fn spawn(raft: Raft<TypeConfig>, clock: Arc<dyn Clock>) -> mpsc::Sender<Pending> {
    let (tx, rx) = mpsc::channel(QUEUE_MAX);
    tokio::spawn(run(raft, clock, rx));
    tx
}

async fn run(raft: Raft<TypeConfig>, clock: Arc<dyn Clock>, mut rx: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut bytes = payload_len(&first.0);
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX && bytes < BATCH_BYTES_MAX {
            match rx.try_recv() {
                Ok(pending) => {
                    bytes += payload_len(&pending.0);
                    batch.push(pending);
                }
                Err(_) => break,
            }
        }
        let (raft, at_ms) = (raft.clone(), clock.now_ms());
        tokio::spawn(async move {
            propose(&raft, at_ms, batch).await;
            drop(slot);
        });
    }
}

/// The bytes a command carries (keys, values and metadata of records).
fn payload_len(command: &Command) -> usize {
    match command {
        Command::Tick => 0,
        Command::StorePut { record, .. } => {
            let metadata: usize = record
                .metadata
                .iter()
                .map(|(k, f)| k.len() + f.kind.len() + f.value.len())
                .sum();
            record.key.len() + record.value.len() + metadata
        }
        Command::StoreDelete { key, .. } => key.len(),
        Command::RegistryRegister { registration, .. } => {
            // The metadata (descriptor set included) dominates; endpoints are small.
            let service = &registration.service;
            let metadata: usize = service
                .metadata
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum();
            metadata + service.endpoints.len() * 64 + registration.node.address.len()
        }
        Command::RegistryDeregister { name, node_ids, .. } => {
            name.len() + node_ids.iter().map(String::len).sum::<usize>()
        }
        Command::RuntimeUpsert { service, .. } => {
            service.name.len()
                + service
                    .metadata
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
        }
        Command::RuntimeDelete { name, .. } => name.len(),
        Command::RuntimeChange { name, change, .. } => {
            let text = match change {
                micro_core::runtime::Change::BuildDone { outcome, .. } => match outcome {
                    Ok(text) | Err(text) => text.len(),
                },
                micro_core::runtime::Change::Instance { error, .. } => {
                    error.as_ref().map_or(0, String::len)
                }
                _ => 0,
            };
            name.len() + text + 64
        }
        // Keys, hashes and refresh digests: a few KiB at most.
        Command::AuthBootstrap { keys, .. } => keys.private_der.len() + keys.public_der.len() + 256,
        Command::AuthAccountCreate { account, .. } | Command::AuthAccountUpdate { account, .. } => {
            account.secret_hash.len() + account.refresh.len() * 64 + 256
        }
        Command::AuthAccountDelete { id, .. } | Command::AuthRuleDelete { id, .. } => id.len(),
        Command::AuthRulePut { rule, .. } => rule.id.len() + rule.scope.len() + 64,
        Command::ConfigSet { leaves, .. } => leaves
            .iter()
            .map(|(path, leaf)| path.len() + leaf.value.len())
            .sum(),
        Command::ConfigDelete { path, .. } => path.len(),
        Command::EventsAppend { .. }
        | Command::EventsClaim { .. }
        | Command::EventsAck { .. }
        | Command::EventsLeave { .. }
        | Command::BlobChunk { .. }
        | Command::BlobCommit { .. }
        | Command::BlobDelete { .. } => data_len(command),
    }
}

/// The bytes an events or blob command carries.
fn data_len(command: &Command) -> usize {
    match command {
        Command::EventsAppend { events, .. } => events
            .iter()
            .map(|e| {
                let metadata: usize = e.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
                e.id.len() + e.topic.len() + e.payload.len() + metadata
            })
            .sum(),
        Command::BlobChunk { upload, data, .. } => upload.len() + data.len(),
        Command::BlobCommit { key, manifest, .. } => key.len() + manifest.upload.len() + 16,
        Command::BlobDelete { key, .. } => key.len(),
        Command::EventsClaim {
            topic,
            group,
            member,
            ..
        } => topic.len() + group.len() + member.len(),
        Command::EventsLeave {
            topic,
            group,
            member,
            ..
        } => topic.len() + group.len() + member.len(),
        Command::EventsAck {
            topic,
            group,
            member,
            acks,
            ..
        } => topic.len() + group.len() + member.len() + acks.len() * 9,
        _ => 0,
    }
}

async fn propose(raft: &Raft<TypeConfig>, at_ms: u64, batch: Vec<Pending>) {
    let (commands, replies): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
    let write = raft.client_write(Proposal { at_ms, commands });
    let outcome = match tokio::time::timeout(REQUEST_DEADLINE, write).await {
        Ok(Ok(written)) => Ok(written.data.0),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
            Err(ReplicaError::NoLeader("this node does not lead".to_owned()))
        }
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
            Err(ReplicaError::Unknown(e.to_string()))
        }
        Ok(Err(RaftError::Fatal(fatal))) => Err(fatal_error(fatal)),
        Err(_) => Err(ReplicaError::NoQuorum(format!(
            "the write was not committed within {REQUEST_DEADLINE:?}: this node cannot reach \
             a majority (it is applied only if the majority is reached again)"
        ))),
    };
    match outcome {
        Ok(responses) => {
            for (reply, response) in replies.into_iter().zip(responses) {
                // A caller that gave up has nobody to tell.
                let _ = reply.send(Ok(response));
            }
        }
        Err(err) => {
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}
