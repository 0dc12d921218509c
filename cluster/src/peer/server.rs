//! [`PeerService`] and [`serve_peer`]: the answering side of the peer network.

use std::future::Future;

use futures::Stream;
use micro_proto::peer::Payload;
use micro_proto::peer::peer_server::{Peer, PeerServer};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

use crate::peer::{PeerCall, payload};
use crate::{RaftNode, TypeConfig};

/// Calls one connection may have in flight at once: a leader's replication streams,
/// forwarded writes and reads, with room to spare.
const STREAMS_PER_CONNECTION_MAX: u32 = 1024;

/// The peer gRPC service of one node.
#[derive(Debug, Clone)]
pub struct PeerService {
    node: RaftNode,
}

impl PeerService {
    /// The service answering for `node`.
    pub fn new(node: RaftNode) -> Self {
        Self { node }
    }
}

/// Serves the peer service of `node` on every connection `incoming` yields until
/// `shutdown` resolves.
pub async fn serve_peer<I, IO, IE>(
    incoming: I,
    node: RaftNode,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error>
where
    I: Stream<Item = Result<IO, IE>>,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Messages are not capped: a batch of log entries has no byte bound in openraft, and
    // one too large to pass would stop replication for good. With TLS only members reach
    // this port.
    let service = PeerServer::new(PeerService::new(node))
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let routes = tonic::service::Routes::new(service)
        .prepare()
        .into_axum_router()
        .layer(axum::middleware::from_fn(
            micro_proto::bad_protobuf_is_invalid_argument,
        ));
    tonic::transport::Server::builder()
        .max_concurrent_streams(STREAMS_PER_CONNECTION_MAX)
        .add_routes(tonic::service::Routes::from(routes))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

fn decode<T: DeserializeOwned>(request: Request<Payload>) -> Result<T, Status> {
    let payload = request.into_inner();
    // Another release's bytes are not bad input but a member that must be upgraded.
    payload::check_format(&payload).map_err(Status::failed_precondition)?;
    payload::decode(&payload).map_err(Status::invalid_argument)
}

fn encode<T: Serialize>(value: &T) -> Result<Response<Payload>, Status> {
    payload::encode(value)
        .map(Response::new)
        .map_err(Status::internal)
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn append_entries(&self, request: Request<Payload>) -> Result<Response<Payload>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(request)?;
        // A leader replicating entries past the removal counts this node as a member
        // again; a heartbeat still in flight from before the removal does not.
        let highest = rpc
            .entries
            .last()
            .map(|entry| entry.log_id.index)
            .or(rpc.prev_log_id.map(|id| id.index))
            .unwrap_or(0);
        self.node.replicated_up_to(highest);
        encode(&self.node.raft().append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<Payload>) -> Result<Response<Payload>, Status> {
        let rpc: VoteRequest<u64> = decode(request)?;
        encode(&self.node.raft().vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<Payload>,
    ) -> Result<Response<Payload>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(request)?;
        encode(&self.node.raft().install_snapshot(rpc).await)
    }

    async fn call(&self, request: Request<Payload>) -> Result<Response<Payload>, Status> {
        match decode::<PeerCall>(request)? {
            PeerCall::Forward(command) => encode(&self.node.propose_local(*command).await),
            PeerCall::ReadIndex => encode(&self.node.read_index_local().await),
            PeerCall::Membership(change) => encode(&self.node.change_membership(change).await),
            PeerCall::SetElect(enabled) => {
                self.node.set_elect(enabled);
                encode(&Ok::<(), micro_core::replicator::ReplicaError>(()))
            }
            PeerCall::Campaign => encode(&self.node.campaign().await),
            PeerCall::Removed(at) => {
                self.node.removed_at(at);
                encode(&Ok::<(), micro_core::replicator::ReplicaError>(()))
            }
        }
    }
}
