//! [`Listen`]: where a node accepts connections (the server half of the network seam).
//!
//! Production nodes listen on tokio TCP; the simulation listens on turmoil's simulated
//! TCP. [`start_node`](super::start_node) serves the proxy and peer gRPC servers from
//! [`incoming`] and the HTTP API from [`ApiListener`], so one assembly runs in both.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::Connected;

/// How long to wait before accepting again after a failed accept (e.g. out of file
/// descriptors), so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A bound listener a node accepts connections on.
pub trait Listen: Send + 'static {
    /// One accepted connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Io>> + Send;

    /// The address the listener is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

impl Listen for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<TcpStream> {
        let (stream, _) = Self::accept(self).await?;
        // Replies are small: without TCP_NODELAY each one waits out the client's delayed
        // ACK (about 40 ms).
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
        Ok(stream)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Self::local_addr(self)
    }
}

/// Accepts the next connection, retrying after a pause when accepting fails: one failed
/// accept must not stop a server.
async fn accept_retrying<L: Listen>(listener: &mut L) -> L::Io {
    loop {
        match listener.accept().await {
            Ok(io) => return io,
            Err(err) => {
                tracing::warn!(%err, "accept failed; retrying");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// The connections of `listener`, as tonic's `serve_with_incoming` takes them.
pub fn incoming<L: Listen>(
    listener: L,
) -> impl Stream<Item = Result<Accepted<L::Io>, io::Error>> + Send {
    futures::stream::unfold(listener, |mut listener| async move {
        let io = accept_retrying(&mut listener).await;
        Some((Ok(Accepted(io)), listener))
    })
}

/// An accepted connection, as tonic serves it.
#[derive(Debug)]
pub struct Accepted<Io>(Io);

impl<Io> Connected for Accepted<Io> {
    // No service reads the peer address; `()` keeps the seam transport-neutral.
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl<Io: AsyncRead + Unpin> AsyncRead for Accepted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Accepted<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// A [`Listen`] as axum serves it (the HTTP API).
#[derive(Debug)]
pub struct ApiListener<L>(pub L);

impl<L: Listen> axum::serve::Listener for ApiListener<L> {
    type Io = L::Io;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let io = accept_retrying(&mut self.0).await;
        // axum only logs the peer address; the listener's own stands in so any transport
        // fits (simulated streams report theirs differently).
        let addr = self
            .0
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}
