//! `cluster.Cluster`: how this node sees the Raft cluster.

use std::sync::Arc;

use micro_core::Namespace;
use micro_core::cluster::MembershipChange;
use micro_core::replicator::Replicator;
use micro_proto::cluster as pb;
use micro_proto::cluster::cluster_server::Cluster;
use tonic::{Request, Response, Status};

use crate::proxy::guard::require_admin;

/// The `cluster.Cluster` gRPC service.
#[derive(Debug, Clone)]
pub struct ClusterService {
    replicator: Arc<dyn Replicator>,
}

impl ClusterService {
    /// A service reporting what `replicator` knows.
    pub fn new(replicator: Arc<dyn Replicator>) -> Self {
        Self { replicator }
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        Ok(Response::new(micro_proto::cluster_status_to_wire(
            self.replicator.status(),
        )))
    }

    async fn add_node(
        &self,
        request: Request<pb::AddNodeRequest>,
    ) -> Result<Response<pb::AddNodeResponse>, Status> {
        require_admin(&request, &Namespace::default(), "cluster")?;
        let pb::AddNodeRequest { id, address } = request.into_inner();
        if id == 0 || address.is_empty() {
            return Err(Status::invalid_argument(
                "add-node needs a node id above 0 and an address",
            ));
        }
        self.change(MembershipChange::AddNode { id, addr: address })
            .await?;
        Ok(Response::new(pb::AddNodeResponse {}))
    }

    async fn remove_node(
        &self,
        request: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::RemoveNodeResponse>, Status> {
        require_admin(&request, &Namespace::default(), "cluster")?;
        let id = request.into_inner().id;
        self.change(MembershipChange::RemoveNode { id }).await?;
        Ok(Response::new(pb::RemoveNodeResponse {}))
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        require_admin(&request, &Namespace::default(), "cluster")?;
        let id = request.into_inner().id;
        self.change(MembershipChange::TransferLeader { id }).await?;
        Ok(Response::new(pb::TransferLeaderResponse {}))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        // The whole state: every namespace's accounts, records and secrets.
        require_admin(&request, &Namespace::default(), "cluster")?;
        let snapshot = self
            .replicator
            .snapshot()
            .await
            .map_err(|err| micro_proto::status_from_error("cluster", &err))?;
        let chunks = snapshot_chunks(&snapshot);
        Ok(Response::new(Box::pin(futures::stream::iter(
            chunks.into_iter().map(Ok),
        ))))
    }
}

/// The size of each chunk of a streamed snapshot.
const SNAPSHOT_CHUNK_LEN: usize = 1 << 20;

type SnapshotStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::SnapshotChunk, Status>> + Send>>;

/// Cuts a snapshot into chunks; the first carries its position and size.
fn snapshot_chunks(snapshot: &micro_core::replicator::StateSnapshot) -> Vec<pb::SnapshotChunk> {
    let size = u64::try_from(snapshot.bytes.len()).unwrap_or(u64::MAX);
    let mut chunks: Vec<pb::SnapshotChunk> = snapshot
        .bytes
        .chunks(SNAPSHOT_CHUNK_LEN)
        .map(|data| pb::SnapshotChunk {
            data: data.to_vec(),
            ..pb::SnapshotChunk::default()
        })
        .collect();
    if chunks.is_empty() {
        chunks.push(pb::SnapshotChunk::default());
    }
    if let Some(first) = chunks.first_mut() {
        first.node_id = snapshot.node_id;
        first.index = snapshot.index;
        first.term = snapshot.term;
        first.size = size;
        first.data_format = micro_core::kv::format::DATA_FORMAT;
    }
    chunks
}

impl ClusterService {
    async fn change(&self, change: MembershipChange) -> Result<(), Status> {
        let result = self.replicator.change_membership(change).await;
        result.map_err(|err| micro_proto::status_from_error("cluster", &err))
    }
}
