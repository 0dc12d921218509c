//! [`NoPeerNetwork`]: the Raft network of a single-member cluster.
//!
//! A single-member cluster never sends a Raft RPC: it is its own majority. Should its
//! membership ever name another node, every RPC to it fails as unreachable, so openraft
//! backs off and the node keeps serving what it can. The peer network over tonic (for
//! three-node clusters) replaces it when the node is started with peers.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode};

use crate::TypeConfig;

/// A network that reaches no peer.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeerNetwork;

fn no_peer<E: std::error::Error>(target: u64) -> RPCError<u64, BasicNode, E> {
    let why = AnyError::error(format!(
        "node {target} is not reachable: this node runs as a single-member cluster without a \
         peer network"
    ));
    RPCError::Unreachable(Unreachable::from(why))
}

/// The client side of [`NoPeerNetwork`] for one target.
#[derive(Debug, Clone, Copy)]
pub struct NoPeerClient {
    target: u64,
}

impl RaftNetworkFactory<TypeConfig> for NoPeerNetwork {
    type Network = NoPeerClient;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Self::Network {
        NoPeerClient { target }
    }
}

impl RaftNetwork<TypeConfig> for NoPeerClient {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(no_peer(self.target))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(no_peer(self.target))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(no_peer(self.target))
    }
}
