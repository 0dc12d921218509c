//! [`PeerNetwork`] and [`PeerClient`]: the calling side of the peer network.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use micro_proto::peer::Payload;
use micro_proto::peer::peer_client::PeerClient as GrpcClient;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::Channel;

use crate::TypeConfig;
use crate::peer::{PeerCall, PeerConnector, payload};

/// Which RPC of the peer service a call uses.
#[derive(Debug, Clone, Copy)]
enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
    Call,
}

/// Why a call to a peer failed before the peer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The peer could not be reached (refused, unknown address).
    Unreachable(String),
    /// The call went out but failed (timeout, reset, bad answer).
    Network(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) | Self::Network(why) => f.write_str(why),
        }
    }
}

/// The channels to every peer, shared by openraft's clients and the node's own calls.
#[derive(Debug, Clone)]
pub struct PeerNetwork {
    connector: Arc<dyn PeerConnector>,
    channels: Arc<Mutex<BTreeMap<String, Channel>>>,
    /// When each peer address last answered a call (any answer, errors included).
    heard: Arc<Mutex<BTreeMap<String, tokio::time::Instant>>>,
}

impl PeerNetwork {
    /// A network dialling through `connector`.
    pub fn new(connector: Arc<dyn PeerConnector>) -> Self {
        Self {
            connector,
            channels: Arc::default(),
            heard: Arc::default(),
        }
    }

    /// How long ago (ms) the peer at `addr` last answered a call; `None` if it never did.
    pub fn silent_ms(&self, addr: &str) -> Option<u64> {
        let heard = self
            .heard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        heard
            .get(addr)
            .map(|at| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn channel(&self, addr: &str) -> Result<Channel, CallError> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let channel = self
            .connector
            .channel(addr)
            .map_err(CallError::Unreachable)?;
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Forgets a channel after a failure, so the next call dials afresh.
    fn forget(&self, addr: &str) {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(addr);
    }

    /// Sends `request` to `addr` and decodes the answer, within `deadline`.
    async fn send<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        rpc: Rpc,
        request: &Req,
        deadline: Duration,
    ) -> Result<Resp, CallError> {
        let payload = payload::encode(request).map_err(CallError::Network)?;
        let mut client = GrpcClient::new(self.channel(addr)?)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let mut call = tonic::Request::new(payload);
        call.set_timeout(deadline);
        let answer = tokio::time::timeout(deadline, async {
            match rpc {
                Rpc::AppendEntries => client.append_entries(call).await,
                Rpc::Vote => client.vote(call).await,
                Rpc::InstallSnapshot => client.install_snapshot(call).await,
                Rpc::Call => client.call(call).await,
            }
        })
        .await;
        let result = match answer {
            Err(_) => Err(CallError::Network(format!(
                "no answer from {addr} within {deadline:?}"
            ))),
            Ok(Err(status)) if status.code() == tonic::Code::Unavailable => Err(
                CallError::Unreachable(format!("{addr}: {}", status.message())),
            ),
            Ok(Err(status)) => Err(CallError::Network(format!("{addr}: {}", status.message()))),
            Ok(Ok(reply)) => {
                self.heard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(addr.to_owned(), tokio::time::Instant::now());
                decode_reply(addr, &reply.into_inner())
            }
        };
        if result.is_err() {
            self.forget(addr);
        }
        result
    }

    /// Makes a [`PeerCall`] on the node at `addr`.
    pub(crate) async fn call<Resp: DeserializeOwned>(
        &self,
        addr: &str,
        call: &PeerCall,
        deadline: Duration,
    ) -> Result<Resp, CallError> {
        self.send(addr, Rpc::Call, call, deadline).await
    }
}

fn decode_reply<Resp: DeserializeOwned>(addr: &str, reply: &Payload) -> Result<Resp, CallError> {
    payload::decode(reply).map_err(|e| CallError::Network(format!("{addr}: {e}")))
}

/// openraft's client for one target node.
#[derive(Debug, Clone)]
pub struct PeerClient {
    network: PeerNetwork,
    target: u64,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            network: self.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

impl PeerClient {
    async fn raft_call<Req, Resp, E>(
        &self,
        rpc: Rpc,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        // Answer before openraft's own deadline drops the call, so the channel is reset.
        let answer: Result<Resp, RaftError<u64, E>> = self
            .network
            .send(&self.addr, rpc, request, option.soft_ttl())
            .await
            .map_err(|e| match e {
                CallError::Unreachable(why) => {
                    RPCError::Unreachable(Unreachable::new(&AnyError::error(why)))
                }
                CallError::Network(why) => {
                    RPCError::Network(NetworkError::new(&AnyError::error(why)))
                }
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.raft_call(Rpc::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.raft_call(Rpc::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.raft_call(Rpc::Vote, &rpc, &option).await
    }
}
