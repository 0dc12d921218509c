//! `store.Store` over the store actor.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::Stream;
use micro_actors::store::{StoreHandle, TableRef};
use micro_core::store::StoreError;
use micro_proto::store as pb;
use micro_proto::store::store_server::Store;
use tonic::{Request, Response, Status};

use crate::proxy::guard::require_admin;
use crate::proxy::{consistency_of, namespace_of};

/// The namespace of a store request; the store is for admin and service accounts of the
/// namespace only, as in v3.
fn admin_namespace<T>(request: &Request<T>) -> Result<micro_core::Namespace, Status> {
    let namespace = namespace_of(request)?;
    require_admin(request, &namespace, "store")?;
    Ok(namespace)
}

/// Request and error counts, for `Debug.Stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
}

/// The `store.Store` gRPC service.
#[derive(Debug, Clone)]
pub struct StoreService {
    store: StoreHandle,
    counters: Arc<Counters>,
}

impl StoreService {
    /// A service answering from `store`.
    pub fn new(store: StoreHandle) -> Self {
        Self {
            store,
            counters: Arc::default(),
        }
    }

    pub(crate) fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn finish<T>(&self, result: Result<T, StoreError>) -> Result<Response<T>, Status> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        result.map(Response::new).map_err(|err| {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            micro_proto::status_from_error("store", &err)
        })
    }
}

type ListStream = Pin<Box<dyn Stream<Item = Result<pb::ListResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Store for StoreService {
    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<pb::ReadResponse>, Status> {
        let namespace = admin_namespace(&request)?;
        let consistency = consistency_of(&request)?;
        let body = request.into_inner();
        let result = async {
            let (database, table, query) = micro_proto::read_options(body.key, body.options)?;
            let table = TableRef::new(namespace, database, table);
            let records = self.store.read(table, query, consistency).await?;
            Ok(pb::ReadResponse {
                records: records
                    .into_iter()
                    .map(micro_proto::record_to_wire)
                    .collect(),
            })
        };
        self.finish(result.await)
    }

    async fn write(
        &self,
        request: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let namespace = admin_namespace(&request)?;
        let body = request.into_inner();
        let result = async {
            let record = body
                .record
                .ok_or_else(|| StoreError::Invalid("record is required".to_owned()))?;
            let record = micro_proto::record_from_wire(record)?;
            let options = body.options.unwrap_or_default();
            let table = TableRef::new(namespace, options.database, options.table);
            self.store.write(table, record).await?;
            Ok(pb::WriteResponse {})
        };
        self.finish(result.await)
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let namespace = admin_namespace(&request)?;
        let body = request.into_inner();
        let options = body.options.unwrap_or_default();
        let table = TableRef::new(namespace, options.database, options.table);
        let result = self
            .store
            .delete(table, body.key)
            .await
            .map(|()| pb::DeleteResponse {});
        self.finish(result)
    }

    type ListStream = ListStream;

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<ListStream>, Status> {
        let namespace = admin_namespace(&request)?;
        let consistency = consistency_of(&request)?;
        let body = request.into_inner();
        let result = async {
            let (database, table, query) = micro_proto::list_options(body.options)?;
            let table = TableRef::new(namespace, database, table);
            self.store.list(table, query, consistency).await
        };
        // Micro v3 sends every key in one stream message; so do we.
        let keys = self.finish(result.await)?.into_inner();
        let stream: ListStream = Box::pin(futures::stream::once(async move {
            Ok(pb::ListResponse { keys })
        }));
        Ok(Response::new(stream))
    }

    async fn databases(
        &self,
        request: Request<pb::DatabasesRequest>,
    ) -> Result<Response<pb::DatabasesResponse>, Status> {
        let namespace = admin_namespace(&request)?;
        let result = self
            .store
            .databases(namespace)
            .await
            .map(|databases| pb::DatabasesResponse { databases });
        self.finish(result)
    }

    async fn tables(
        &self,
        request: Request<pb::TablesRequest>,
    ) -> Result<Response<pb::TablesResponse>, Status> {
        let namespace = admin_namespace(&request)?;
        let database = request.into_inner().database;
        let table = TableRef::new(namespace, database, "");
        let result = self
            .store
            .tables(table)
            .await
            .map(|tables| pb::TablesResponse { tables });
        self.finish(result)
    }
}

/// The most entries one `Backup.Snapshot` message carries.
const SNAPSHOT_ENTRIES_PER_MESSAGE: usize = 512;
/// The most record bytes (values and keys) one `Backup.Snapshot` message carries, well
/// under the 4 MiB a stock gRPC client accepts.
const SNAPSHOT_BYTES_PER_MESSAGE: usize = 1 << 20;

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::SnapshotResponse, Status>> + Send>>;

/// The `store.Backup` gRPC service: a namespace's records as of one moment.
#[derive(Debug, Clone)]
pub struct BackupService {
    store: StoreHandle,
}

impl BackupService {
    /// A service answering from `store`.
    pub fn new(store: StoreHandle) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl pb::backup_server::Backup for BackupService {
    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        let namespace = admin_namespace(&request)?;
        let database = Some(request.into_inner().database).filter(|d| !d.is_empty());
        let records = self
            .store
            .snapshot(namespace, database)
            .await
            .map_err(|err| micro_proto::status_from_error("store", &err))?;
        let messages = snapshot_messages(records);
        Ok(Response::new(Box::pin(futures::stream::iter(
            messages.into_iter().map(Ok),
        ))))
    }
}

/// Cuts a snapshot into messages; the first names the total, and an empty snapshot is
/// one message saying so.
fn snapshot_messages(
    records: Vec<(micro_core::store::TablePath, micro_core::store::Record)>,
) -> Vec<pb::SnapshotResponse> {
    let total = u64::try_from(records.len()).unwrap_or(u64::MAX);
    let mut messages = vec![pb::SnapshotResponse {
        entries: Vec::new(),
        total,
    }];
    let mut bytes = 0;
    for (path, record) in records {
        let size = record.key.len() + record.value.len();
        let current = messages.last().map_or(0, |m| m.entries.len());
        if current > 0
            && (current >= SNAPSHOT_ENTRIES_PER_MESSAGE
                || bytes + size > SNAPSHOT_BYTES_PER_MESSAGE)
        {
            messages.push(pb::SnapshotResponse::default());
            bytes = 0;
        }
        bytes += size;
        if let Some(message) = messages.last_mut() {
            message.entries.push(pb::SnapshotEntry {
                database: path.database,
                table: path.table,
                record: Some(micro_proto::record_to_wire(record)),
            });
        }
    }
    messages
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use micro_core::store::{Record, TablePath};

    use super::*;

    #[test]
    fn snapshots_are_cut_by_count_and_bytes_and_say_their_total_first() {
        let path = TablePath::resolve(micro_core::Namespace::new("n").unwrap(), "d", "t").unwrap();
        let record = |i: usize, len: usize| Record {
            key: format!("k{i}"),
            value: vec![b'v'; len],
            ..Record::default()
        };
        assert_eq!(snapshot_messages(Vec::new()).len(), 1);
        let small: Vec<_> = (0..1200).map(|i| (path.clone(), record(i, 1))).collect();
        let messages = snapshot_messages(small);
        let counts: Vec<_> = messages.iter().map(|m| m.entries.len()).collect();
        assert_eq!(counts, [512, 512, 176]);
        assert_eq!(messages[0].total, 1200);
        assert_eq!(messages[1].total, 0);
        let big: Vec<_> = (0..3).map(|i| (path.clone(), record(i, 700_000))).collect();
        let counts: Vec<_> = snapshot_messages(big)
            .iter()
            .map(|m| m.entries.len())
            .collect();
        assert_eq!(counts, [1, 1, 1]);
    }
}
