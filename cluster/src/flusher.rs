//! [`Flusher`]: group commit.
//!
//! Appends write their entries without waiting for the disk and hand their completion
//! callback to the flusher. The flusher takes every callback that is waiting, makes the
//! backend durable with **one** `sync` (one fsync), and completes them all. While that
//! fsync runs, new appends queue up and share the next one, so throughput grows with
//! concurrency instead of being capped at one fsync per write.

use std::sync::Arc;

use micro_core::kv::{KvBackend, KvError};
use openraft::storage::LogFlushed;
use tokio::sync::{mpsc, oneshot};

use crate::TypeConfig;

/// The most completions one sync serves; bounds the work between two fsyncs.
const WAITERS_PER_SYNC_MAX: usize = 4096;

/// A completion waiting for the next sync.
enum Waiter {
    Log(LogFlushed<TypeConfig>),
    Notify(oneshot::Sender<Result<(), KvError>>),
}

/// A handle to the group-commit task of one backend. Cloning shares the task.
#[derive(Debug, Clone)]
pub struct Flusher {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Log(_) => "Waiter::Log",
            Self::Notify(_) => "Waiter::Notify",
        })
    }
}

impl Flusher {
    /// Starts the group-commit task of `kv` on the current tokio runtime. It ends when
    /// every handle is dropped.
    pub fn spawn(kv: Arc<dyn KvBackend>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(kv, rx));
        Self { tx }
    }

    /// Completes `callback` once everything written so far is durable.
    pub(crate) fn after_sync(&self, callback: LogFlushed<TypeConfig>) {
        if let Err(mpsc::error::SendError(Waiter::Log(callback))) =
            self.tx.send(Waiter::Log(callback))
        {
            callback.log_io_completed(Err(std::io::Error::other("flusher stopped")));
        }
    }

    /// Waits until everything written so far is durable.
    pub async fn sync(&self) -> Result<(), KvError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Waiter::Notify(tx))
            .map_err(|_| KvError("flusher stopped".to_owned()))?;
        rx.await
            .map_err(|_| KvError("flusher stopped".to_owned()))?
    }
}

async fn run(kv: Arc<dyn KvBackend>, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        waiters.push(first);
        while waiters.len() < WAITERS_PER_SYNC_MAX {
            match rx.try_recv() {
                Ok(waiter) => waiters.push(waiter),
                Err(_) => break,
            }
        }
        let result = sync(&kv).await;
        if let Err(err) = &result {
            tracing::error!(%err, "sync failed: the node cannot acknowledge writes");
        }
        for waiter in waiters.drain(..) {
            match waiter {
                Waiter::Log(callback) => callback
                    .log_io_completed(result.clone().map_err(|e| std::io::Error::other(e.0))),
                Waiter::Notify(tx) => {
                    // The waiter may have gone away (cancelled); nothing to tell it then.
                    let _ = tx.send(result.clone());
                }
            }
        }
    }
}

async fn sync(kv: &Arc<dyn KvBackend>) -> Result<(), KvError> {
    if !kv.sync_blocks() {
        return kv.sync();
    }
    let kv = kv.clone();
    match tokio::task::spawn_blocking(move || kv.sync()).await {
        Ok(result) => result,
        Err(err) => Err(KvError(format!("sync task failed: {err}"))),
    }
}
