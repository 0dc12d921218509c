//! The peer network: node-to-node gRPC on the peer address.
//!
//! ```text
//! openraft ──RaftNetwork──> PeerClient ──/peer.Peer/AppendEntries──> PeerService ──> Raft
//! RaftNode.propose on a follower ──/peer.Peer/Forward──> leader's RaftNode.propose_local
//! RaftNode.read_barrier on a follower ──/peer.Peer/ReadIndex──> leader's read index,
//!     then wait until the follower has applied up to it
//! ```
//!
//! Every payload is the bincode of an openraft or micro type with a CRC-32, so a
//! corrupted message is refused. Clients come from an injected [`PeerConnector`] and the
//! server from an injected stream of connections ([`serve_peer`]), so the simulation can
//! replace the sockets. Every call has a deadline; a failed channel is dropped and
//! redialled on the next call.

mod client;
mod connector;
pub mod fuzzing;
mod messages;
mod payload;
mod server;

pub(crate) use client::CallError;
pub use client::{PeerClient, PeerNetwork};
pub use connector::{PeerConnector, TcpConnector, TlsConnector};
pub(crate) use messages::PeerCall;
pub use payload::{WIRE_FORMAT, WIRE_FORMAT_MIN};
pub use server::{PeerService, serve_peer};
