//! [`StoreHandle`]: the typed API over the store actor.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use micro_core::Namespace;
use micro_core::replicator::Consistency;
use micro_core::store::{ListQuery, ReadQuery, Record, StoreError, TablePath};
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};

use crate::store::{StoreMsg, TableRef};

/// The typed API of the store service. Cloning is cheap; every clone follows the actor
/// across restarts.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    actor: Arc<RwLock<ActorRef<StoreMsg>>>,
    timeout: Duration,
}

impl StoreHandle {
    /// A handle on `actor`, giving each request `timeout` to complete.
    pub fn new(actor: ActorRef<StoreMsg>, timeout: Duration) -> Self {
        Self {
            actor: Arc::new(RwLock::new(actor)),
            timeout,
        }
    }

    /// Points every clone of this handle at a restarted actor.
    pub fn replace(&self, actor: ActorRef<StoreMsg>) {
        *self
            .actor
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = actor;
    }

    /// Reads a record, or the records matching a prefix/suffix.
    pub async fn read(
        &self,
        table: TableRef,
        query: ReadQuery,
        consistency: Consistency,
    ) -> Result<Vec<Record>, StoreError> {
        self.call(|reply| StoreMsg::Read {
            table,
            query,
            consistency,
            reply,
        })
        .await
    }

    /// Writes a record; returns once it is durable on a majority.
    pub async fn write(&self, table: TableRef, record: Record) -> Result<(), StoreError> {
        self.call(|reply| StoreMsg::Write {
            table,
            record,
            reply,
        })
        .await
    }

    /// Deletes a record; returns once the delete is durable on a majority.
    pub async fn delete(&self, table: TableRef, key: String) -> Result<(), StoreError> {
        self.call(|reply| StoreMsg::Delete { table, key, reply })
            .await
    }

    /// Lists keys.
    pub async fn list(
        &self,
        table: TableRef,
        query: ListQuery,
        consistency: Consistency,
    ) -> Result<Vec<String>, StoreError> {
        self.call(|reply| StoreMsg::List {
            table,
            query,
            consistency,
            reply,
        })
        .await
    }

    /// The databases of a namespace that hold records.
    pub async fn databases(&self, namespace: Namespace) -> Result<Vec<String>, StoreError> {
        self.call(|reply| StoreMsg::Databases { namespace, reply })
            .await
    }

    /// Every live record of a namespace (or of one database), with its table, as of one
    /// linearizable moment: one read barrier, then one scan of the applied state.
    pub async fn snapshot(
        &self,
        namespace: Namespace,
        database: Option<String>,
    ) -> Result<Vec<(TablePath, Record)>, StoreError> {
        self.call(|reply| StoreMsg::Snapshot {
            namespace,
            database,
            reply,
        })
        .await
    }

    /// The tables of a database that hold records.
    pub async fn tables(&self, table: TableRef) -> Result<Vec<String>, StoreError> {
        self.call(|reply| StoreMsg::Tables { table, reply }).await
    }

    async fn call<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<Result<T, StoreError>>) -> StoreMsg,
    ) -> Result<T, StoreError> {
        let actor = self
            .actor
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match actor.call(build, Some(self.timeout)).await {
            Ok(CallResult::Success(result)) => result,
            Ok(CallResult::Timeout) => Err(StoreError::Timeout(format!(
                "no answer within {:?}",
                self.timeout
            ))),
            Ok(CallResult::SenderError) | Err(_) => Err(StoreError::Unavailable(
                "the store service is restarting; retry".to_owned(),
            )),
        }
    }
}
