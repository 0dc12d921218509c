//! `cluster.Cluster`: how this node sees the Raft cluster.

use std::sync::Arc;

use micro_core::replicator::Replicator;
use micro_proto::cluster as pb;
use micro_proto::cluster::cluster_server::Cluster;
use tonic::{Request, Response, Status};

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
}
