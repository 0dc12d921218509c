//! [`Client`]: the CLI's gRPC connection to a node's proxy.

use std::time::Duration;

use micro_core::Namespace;
use micro_proto::auth::accounts_client::AccountsClient;
use micro_proto::auth::auth_client::AuthClient;
use micro_proto::auth::rules_client::RulesClient;
use micro_proto::cluster::cluster_client::ClusterClient;
use micro_proto::registry::registry_client::RegistryClient;
use micro_proto::runtime::runtime_client::RuntimeClient;
use micro_proto::store::store_client::StoreClient;
use tonic::transport::Channel;

use crate::exit::CliError;

/// How long connecting to the proxy may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a proxy, speaking for one namespace.
#[derive(Debug, Clone)]
pub struct Client {
    proxy: String,
    context: String,
    channel: Channel,
    namespace: Namespace,
    token: Option<String>,
    /// Whether the connection is TLS.
    secure: bool,
}

impl Client {
    /// Connects to the proxy at `proxy` (`host:port`), in plaintext.
    pub async fn connect(proxy: &str, namespace: Namespace) -> Result<Self, CliError> {
        Self::connect_tls(proxy, namespace, None).await
    }

    /// Connects to the proxy at `proxy`, over TLS trusting the CA certificate in file
    /// `ca` when one is given.
    pub async fn connect_tls(
        proxy: &str,
        namespace: Namespace,
        ca: Option<&std::path::Path>,
    ) -> Result<Self, CliError> {
        let tls = match ca {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    CliError::usage(format!("cannot read CA {}: {e}", path.display()))
                })?;
                let tls = micro_proto::tls::trust(&pem)
                    .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
                Some(tls)
            }
            None if proxy.starts_with("https://") => {
                return Err(CliError::usage(format!(
                    "{proxy} speaks TLS: give the CA that signed its certificate with \
                     --proxy-ca FILE (or `micro env add NAME {proxy} --ca FILE`)"
                )));
            }
            None => None,
        };
        let secure = tls.is_some();
        let endpoint = micro_proto::tls::endpoint(proxy, tls)
            .map_err(|e| CliError::usage(format!("invalid proxy address {proxy:?}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|e| {
            let why = error_chain(&e);
            let hint = if secure {
                ""
            } else {
                " (if the proxy speaks TLS, give its CA with --proxy-ca FILE)"
            };
            CliError::unreachable(proxy, &format!("{why}{hint}"))
        })?;
        Ok(Self {
            proxy: proxy.to_owned(),
            context: proxy.to_owned(),
            channel,
            namespace,
            token: None,
            secure,
        })
    }

    /// The same connection, keeping its current namespace under `context` (the
    /// environment it came from).
    #[must_use]
    pub fn with_context(mut self, context: String) -> Self {
        self.context = context;
        self
    }

    /// The environment (or proxy address) whose current namespace this client uses.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The same connection, sending `token` (an access token) with every request.
    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The same connection logged in as account `id` (or name) with `secret`, in the
    /// client's namespace.
    pub async fn logged_in(self, id: &str, secret: &str) -> Result<Self, CliError> {
        let request = micro_proto::auth::TokenRequest {
            id: id.to_owned(),
            secret: secret.to_owned(),
            options: Some(micro_proto::auth::Options {
                namespace: self.namespace.to_string(),
            }),
            ..Default::default()
        };
        let reply = self
            .auth()
            .token(self.request(request))
            .await
            .map_err(|s| self.error(&s))?;
        let token = reply.into_inner().token.map(|t| t.access_token);
        Ok(self.with_token(token))
    }

    /// The access token requests carry, if logged in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `metadata` with the caller's token added as `authorization` (for raw calls).
    pub fn with_auth_metadata(
        &self,
        mut metadata: std::collections::BTreeMap<String, String>,
    ) -> std::collections::BTreeMap<String, String> {
        if let Some(token) = &self.token {
            metadata
                .entry("authorization".to_owned())
                .or_insert_with(|| format!("Bearer {token}"));
        }
        metadata
    }

    /// A request carrying the namespace and, when logged in, the access token.
    pub fn request<T>(&self, body: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(body);
        let value = self
            .namespace
            .as_str()
            .parse()
            .expect("namespace names are valid ASCII metadata");
        request
            .metadata_mut()
            .insert(micro_gateway::NAMESPACE_HEADER, value);
        if let Some(token) = &self.token
            && let Ok(value) = format!("Bearer {token}").parse()
        {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// The `auth.Auth` service (login, inspect, generate).
    pub fn auth(&self) -> AuthClient<Channel> {
        AuthClient::new(self.channel.clone())
    }

    /// The `auth.Accounts` service.
    pub fn accounts(&self) -> AccountsClient<Channel> {
        AccountsClient::new(self.channel.clone())
    }

    /// The `auth.Rules` service.
    pub fn rules(&self) -> RulesClient<Channel> {
        RulesClient::new(self.channel.clone())
    }

    /// A request carrying the namespace and, for a stale read, `Micro-Consistency: stale`.
    pub fn request_with<T>(&self, body: T, stale: bool) -> tonic::Request<T> {
        let mut request = self.request(body);
        if stale {
            let value = tonic::metadata::MetadataValue::from_static("stale");
            request
                .metadata_mut()
                .insert(micro_gateway::CONSISTENCY_HEADER, value);
        }
        request
    }

    /// The store service.
    pub fn store(&self) -> StoreClient<Channel> {
        StoreClient::new(self.channel.clone())
            .max_decoding_message_size(micro_gateway::MESSAGE_LEN_MAX)
    }

    /// The registry service.
    pub fn registry(&self) -> RegistryClient<Channel> {
        RegistryClient::new(self.channel.clone())
            .max_decoding_message_size(micro_gateway::MESSAGE_LEN_MAX)
    }

    /// The runtime service.
    pub fn runtime(&self) -> RuntimeClient<Channel> {
        RuntimeClient::new(self.channel.clone())
    }

    /// The connection itself (for raw calls to any service).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The proxy address (`host:port`) this client talks to.
    pub fn proxy(&self) -> &str {
        &self.proxy
    }

    /// The namespace commands act in.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The cluster service.
    pub fn cluster(&self) -> ClusterClient<Channel> {
        ClusterClient::new(self.channel.clone())
    }

    /// The CLI error a failed call becomes.
    pub fn error(&self, status: &tonic::Status) -> CliError {
        let mut err = CliError::from_status(&self.proxy, status);
        // A plaintext client cut off by a TLS proxy sees only a closed connection.
        if err.code == crate::exit::UNREACHABLE && !self.secure {
            err.message
                .push_str(" (if the proxy speaks TLS, give its CA with --proxy-ca FILE)");
        }
        err
    }
}

/// An error's causes, `: `-joined (tonic's own message is only "transport error").
fn error_chain(error: &dyn std::error::Error) -> String {
    let Some(first) = error.source() else {
        return error.to_string();
    };
    let mut text = first.to_string();
    let mut source = first.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
