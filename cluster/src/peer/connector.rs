//! [`PeerConnector`]: how a node dials its peers (the network seam).

use std::fmt::Debug;
use std::time::Duration;

use tonic::transport::{Channel, ClientTlsConfig};

/// How long dialling a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Makes channels to peer addresses.
///
/// # Contract
/// `channel` does not dial: it returns a channel that connects on first use (so it can
/// be called where blocking is not allowed) and reports connection failures on the
/// calls made through it.
pub trait PeerConnector: Send + Sync + Debug + 'static {
    /// A lazily connecting channel to `addr` (`host:port`).
    fn channel(&self, addr: &str) -> Result<Channel, String>;

    /// A lazily connecting plaintext channel to `addr`, for process services, which
    /// serve without TLS; by default the same as [`channel`](Self::channel).
    fn plain_channel(&self, addr: &str) -> Result<Channel, String> {
        self.channel(addr)
    }
}

/// Dials peers over TCP (production).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl PeerConnector for TcpConnector {
    fn channel(&self, addr: &str) -> Result<Channel, String> {
        tcp_channel(addr, None)
    }
}

/// A lazily connecting channel to `addr` over TCP, through TLS with `tls`.
fn tcp_channel(addr: &str, tls: Option<ClientTlsConfig>) -> Result<Channel, String> {
    let endpoint = micro_proto::tls::endpoint(addr, tls)
        .map_err(|e| format!("peer {addr}: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5));
    Ok(endpoint.connect_lazy())
}

/// Dials peers and other nodes' proxies over TLS, verifying them against the cluster CA
/// and presenting this node's certificate (production with `--tls-*`).
#[derive(Debug, Clone)]
pub struct TlsConnector {
    tls: ClientTlsConfig,
}

impl TlsConnector {
    /// A connector using `tls` (from [`micro_proto::tls::TlsConfig::client`]).
    pub fn new(tls: ClientTlsConfig) -> Self {
        Self { tls }
    }
}

impl PeerConnector for TlsConnector {
    fn channel(&self, addr: &str) -> Result<Channel, String> {
        tcp_channel(addr, Some(self.tls.clone()))
    }

    fn plain_channel(&self, addr: &str) -> Result<Channel, String> {
        tcp_channel(addr, None)
    }
}
