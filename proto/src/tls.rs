//! TLS for a node's listeners and for everything that dials them (rustls with ring).
//!
//! ```text
//! node:  --tls-cert node.crt --tls-key node.key --tls-ca ca.crt   -> TlsConfig
//!          api   (HTTP)  : TLS, server certificate only   front_acceptor()
//!          proxy (gRPC)  : TLS, server certificate only   front_acceptor()
//!          peer  (Raft)  : mutual TLS, the caller must     peer_acceptor()
//!                          present a certificate the CA signed
//!          dialing peers and other nodes' proxies         client()  (CA + own certificate)
//! CLI / services:  --proxy-ca ca.crt                       trust(ca)  (CA only)
//! ```
//!
//! One certificate per node serves all three listeners, so a single CA both proves a
//! proxy to its clients and admits a node to the cluster. Certificates are checked when
//! the node starts (key matches certificate, certificate chains to the CA), so a wrong
//! file is a clear error at start rather than failed handshakes later.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use tokio_rustls::TlsAcceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Why TLS could not be set up: which file, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// ALPN of the gRPC listeners: HTTP/2 only.
const ALPN_GRPC: &[&[u8]] = &[b"h2"];
/// ALPN of the HTTP API: HTTP/2 or HTTP/1.1, as the client prefers.
const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];

/// A node's TLS identity: its certificate chain and key, and the cluster CA.
#[derive(Clone)]
pub struct TlsConfig {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    roots: Arc<RootCertStore>,
    pem: Pem,
}

/// The PEM texts, as tonic's client configuration takes them.
#[derive(Clone)]
struct Pem {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Vec<u8>,
}

impl std::fmt::Debug for TlsConfig {
    // Never the key: it is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("chain_len", &self.chain.len())
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a file whole, the error naming it.
fn read(what: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError(format!("cannot read {what} {}: {e}", path.display())))
}

/// The certificates of a PEM text (at least one).
fn certificates(what: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{what}: not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{what}: holds no PEM certificate")));
    }
    Ok(certs)
}

/// A root store holding the CA certificates of `pem`.
fn roots(what: &str, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(what, pem)? {
        roots
            .add(cert)
            .map_err(|e| TlsError(format!("{what}: not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

impl TlsConfig {
    /// Loads a node's certificate, key and CA from PEM files, and checks that they fit:
    /// the key is the certificate's, the certificate chains to the CA and may serve as a
    /// client (the node dials its peers with it).
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<Self, TlsError> {
        let config = Self::from_pem(
            read("certificate", cert)?,
            read("key", key)?,
            read("CA certificate", ca)?,
        )
        .map_err(|e| {
            TlsError(format!(
                "{e} (certificate {}, key {}, CA {})",
                cert.display(),
                key.display(),
                ca.display()
            ))
        })?;
        Ok(config)
    }

    /// As [`load`](Self::load), from PEM texts.
    pub fn from_pem(cert: Vec<u8>, key: Vec<u8>, ca: Vec<u8>) -> Result<Self, TlsError> {
        let chain = certificates("certificate", &cert)?;
        let private = PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| TlsError(format!("key: not a PEM private key: {e}")))?;
        let roots = Arc::new(roots("CA certificate", &ca)?);
        let config = Self {
            chain,
            key: Arc::new(private),
            roots,
            pem: Pem { cert, key, ca },
        };
        // Building the server side checks the key against the certificate.
        config.front_acceptor()?;
        config.check_signed()?;
        Ok(config)
    }

    /// Checks that the node's certificate chains to the CA and allows client use.
    fn check_signed(&self) -> Result<(), TlsError> {
        let verifier = self.client_verifier()?;
        let (leaf, intermediates) = self
            .chain
            .split_first()
            .ok_or_else(|| TlsError("certificate: empty chain".to_owned()))?;
        verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| {
                TlsError(format!(
                    "certificate: not accepted by the CA as a cluster member: {e}"
                ))
            })
    }

    fn client_verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .map_err(|e| TlsError(format!("CA certificate: {e}")))
    }

    fn server_config(
        &self,
        verifier: Option<Arc<dyn ClientCertVerifier>>,
        alpn: &[&[u8]],
    ) -> Result<rustls::ServerConfig, TlsError> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("TLS versions: {e}")))?;
        let builder = match verifier {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError(format!("certificate and key do not fit: {e}")))?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    /// The acceptor of the proxy: the node's certificate, no client certificate asked.
    pub fn front_acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        Ok(TlsAcceptor::from(Arc::new(
            self.server_config(None, ALPN_GRPC)?,
        )))
    }

    /// The acceptor of the HTTP API: as the proxy's, offering HTTP/1.1 too.
    pub fn http_acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        Ok(TlsAcceptor::from(Arc::new(
            self.server_config(None, ALPN_HTTP)?,
        )))
    }

    /// The acceptor of the peer port: mutual TLS, only callers whose certificate the CA
    /// signed get through the handshake.
    pub fn peer_acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let verifier = self.client_verifier()?;
        Ok(TlsAcceptor::from(Arc::new(
            self.server_config(Some(verifier), ALPN_GRPC)?,
        )))
    }

    /// How the node dials peers and other nodes' proxies: trusting the CA, presenting
    /// its own certificate.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.pem.ca))
            .identity(Identity::from_pem(&self.pem.cert, &self.pem.key))
    }

    /// The CA certificate (PEM), for the services this node runs, which trust it to
    /// reach the proxy.
    pub fn ca_pem(&self) -> &[u8] {
        &self.pem.ca
    }
}

/// A client configuration trusting the CA certificates of `ca_pem` (the CLI's and a
/// service's way to a TLS proxy).
pub fn trust(ca_pem: &[u8]) -> Result<ClientTlsConfig, TlsError> {
    // Parsed here so a bad file is reported as such, not as a failed handshake.
    roots("CA certificate", ca_pem)?;
    Ok(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)))
}

/// An endpoint for `addr` (`host:port`, or a URL): `https://` with `tls`, else
/// `http://`.
pub fn endpoint(addr: &str, tls: Option<ClientTlsConfig>) -> Result<Endpoint, String> {
    let bare = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .unwrap_or(addr);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{bare}"))
        .map_err(|e| format!("invalid address {addr:?}: {e}"))?;
    match tls {
        Some(tls) => endpoint
            .tls_config(tls)
            .map_err(|e| format!("TLS for {addr}: {e}")),
        None => Ok(endpoint),
    }
}
