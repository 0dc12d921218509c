//! [`PeerConnector`]: how a node dials its peers (the network seam).

use std::fmt::Debug;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

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
}

/// Dials peers over TCP (production).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl PeerConnector for TcpConnector {
    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("invalid peer address {addr:?}: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5));
        Ok(endpoint.connect_lazy())
    }
}
