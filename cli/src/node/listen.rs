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

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; connections beyond are closed at once, so a flood of
/// idle connections cannot hold a node's memory or tasks.
const HANDSHAKES_MAX: usize = 1024;
/// Finished handshakes waiting for the server to take them.
const READY_MAX: usize = 64;

/// A listener that may speak TLS: plaintext, or TLS through an acceptor (the node's
/// `--tls-*` files).
#[derive(Debug)]
pub enum Secured<L: Listen> {
    /// Connections as they come.
    Plain(L),
    /// Connections after a TLS handshake.
    Tls(TlsListener<L::Io>),
}

impl<L: Listen> Secured<L> {
    /// `listener`, behind TLS when `acceptor` is given; `name` labels its log lines.
    pub fn new(
        listener: L,
        acceptor: Option<tokio_rustls::TlsAcceptor>,
        name: &'static str,
    ) -> Self {
        match acceptor {
            Some(acceptor) => Self::Tls(TlsListener::new(listener, acceptor, name)),
            None => Self::Plain(listener),
        }
    }
}

impl<L: Listen> Listen for Secured<L> {
    type Io = tokio_util::either::Either<L::Io, tokio_rustls::server::TlsStream<L::Io>>;

    async fn accept(&mut self) -> io::Result<Self::Io> {
        use tokio_util::either::Either;
        match self {
            Self::Plain(listener) => listener.accept().await.map(Either::Left),
            Self::Tls(listener) => listener.accept().await.map(Either::Right),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Plain(listener) => listener.local_addr(),
            Self::Tls(listener) => Ok(listener.addr),
        }
    }
}

/// Connections that finished a TLS handshake. Handshakes run in their own tasks, so a
/// slow or silent client delays nobody else; a background task accepts.
#[derive(Debug)]
pub struct TlsListener<Io> {
    addr: SocketAddr,
    ready: tokio::sync::mpsc::Receiver<tokio_rustls::server::TlsStream<Io>>,
}

impl<Io: AsyncRead + AsyncWrite + Unpin + Send + 'static> TlsListener<Io> {
    fn new<L: Listen<Io = Io>>(
        listener: L,
        acceptor: tokio_rustls::TlsAcceptor,
        name: &'static str,
    ) -> Self {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (ready, ready_rx) = tokio::sync::mpsc::channel(READY_MAX);
        tokio::spawn(handshakes(listener, acceptor, ready, name));
        Self {
            addr,
            ready: ready_rx,
        }
    }

    async fn accept(&mut self) -> io::Result<tokio_rustls::server::TlsStream<Io>> {
        self.ready
            .recv()
            .await
            .ok_or_else(|| io::Error::other("the TLS acceptor stopped"))
    }
}

/// Accepts connections and runs their handshakes until the listener is dropped.
async fn handshakes<L: Listen>(
    mut listener: L,
    acceptor: tokio_rustls::TlsAcceptor,
    ready: tokio::sync::mpsc::Sender<tokio_rustls::server::TlsStream<L::Io>>,
    name: &'static str,
) {
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_MAX));
    loop {
        let io = tokio::select! {
            io = accept_retrying(&mut listener) => io,
            () = ready.closed() => return,
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(
                listener = name,
                "too many TLS handshakes in progress; closing a connection"
            );
            continue;
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                Ok(Ok(stream)) => {
                    let _ = ready.send(stream).await;
                }
                // A refused peer certificate is worth an operator's attention; a client
                // giving up on the front listeners is not.
                Ok(Err(err)) if name == "peer" => {
                    tracing::warn!(listener = name, %err, "TLS handshake refused");
                }
                Ok(Err(err)) => tracing::debug!(listener = name, %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(listener = name, "TLS handshake timed out"),
            }
        });
    }
}
