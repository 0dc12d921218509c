//! The simulated network seam: [`SimListener`] for a node's servers, [`SimConnector`] for
//! its peer channels, and [`channel`] for clients, all over turmoil's TCP.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use micro_cli::node::Listen;
use micro_cluster::PeerConnector;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long dialling may take (as in production).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A node's listener on the simulated network.
pub struct SimListener(turmoil::net::TcpListener);

impl std::fmt::Debug for SimListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SimListener")
            .field(&self.0.local_addr().ok())
            .finish()
    }
}

impl SimListener {
    /// Binds `port` on the current host.
    pub async fn bind(port: u16) -> io::Result<Self> {
        turmoil::net::TcpListener::bind(("0.0.0.0", port))
            .await
            .map(Self)
    }
}

impl Listen for SimListener {
    type Io = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<turmoil::net::TcpStream> {
        self.0.accept().await.map(|(stream, _)| stream)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A lazily connecting channel to `addr` (`host:port`) over the simulated network. Call
/// it inside a host: tonic spawns the channel's worker on the current runtime.
pub fn channel(addr: &str) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("invalid address {addr:?}: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT);
    Ok(
        endpoint.connect_with_connector_lazy(tower::service_fn(|uri: Uri| async move {
            let host = uri.host().unwrap_or_default().to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let stream = turmoil::net::TcpStream::connect((host, port)).await?;
            Ok::<_, io::Error>(TokioIo::new(stream))
        })),
    )
}

/// Dials peers over the simulated network.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimConnector;

impl PeerConnector for SimConnector {
    fn channel(&self, addr: &str) -> Result<Channel, String> {
        channel(addr)
    }
}
