//! [`Client`]: typed and JSON calls to services through a node's proxy.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use micro_core::Namespace;
use micro_core::service::{CONTENT_JSON, CONTENT_PROTO, Call, Replies};
use micro_proto::raw::NAMESPACE_HEADER;
use tonic::transport::Channel;

use crate::client::{RegistryClient, StoreClient};
use crate::context::AUTHORIZATION_METADATA;
use crate::error::{self, Error};
use crate::handler::ReplyStream;

/// How long a call may take unless [`Client::with_timeout`] says otherwise (Micro's 5 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Calls services through a node's proxy. Cloning is cheap (one shared connection).
///
/// ```no_run
/// # async fn demo() -> Result<(), micro::Error> {
/// let client = micro::Client::new("127.0.0.1:8081")?.with_token("my-token");
/// let reply = client
///     .call_json("helloworld", "Helloworld.Call", &serde_json::json!({"name": "Alice"}))
///     .await?;
/// assert_eq!(reply["msg"], "Hello Alice");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    namespace: Namespace,
    metadata: BTreeMap<String, String>,
    timeout: Duration,
    session: Option<crate::session::Session>,
}

impl Client {
    /// A client of the node proxy at `proxy` (`host:port`); connects on first use.
    pub fn new(proxy: &str) -> Result<Self, Error> {
        Ok(Self::from_channel(crate::process::proxy_channel(
            "client", proxy,
        )?))
    }

    /// A client over an existing channel to a node proxy.
    pub fn from_channel(channel: Channel) -> Self {
        Self {
            channel,
            namespace: Namespace::default(),
            metadata: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
            session: crate::session::service_session(),
        }
    }

    /// Calls time out after `timeout` (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Calls are made in `namespace` (default `micro`).
    pub fn with_namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Sends `key: value` with every call (keys are lower-cased, as gRPC requires).
    pub fn with_metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata
            .insert(key.to_ascii_lowercase(), value.to_owned());
        self
    }

    /// Sends `authorization: Bearer <token>` with every call.
    pub fn with_token(self, token: &str) -> Self {
        self.with_metadata(AUTHORIZATION_METADATA, &format!("Bearer {token}"))
    }

    /// Calls the unary `endpoint` (`Helloworld.Call`) of `service` with a protobuf
    /// request.
    pub async fn call<Req, Resp>(
        &self,
        service: &str,
        endpoint: &str,
        req: &Req,
    ) -> Result<Resp, Error>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let body = req.encode_to_vec();
        let reply = self.unary(service, endpoint, CONTENT_PROTO, body).await?;
        Resp::decode(reply.as_slice()).map_err(|e| invalid_reply(service, endpoint, &e))
    }

    /// Calls the unary `endpoint` of `service` with a JSON request; the service
    /// transcodes it with its descriptors.
    pub async fn call_json(
        &self,
        service: &str,
        endpoint: &str,
        req: &serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        let body = serde_json::to_vec(req).map_err(|e| {
            error::bad_request(service, format!("cannot encode the request as JSON: {e}"))
        })?;
        let reply = self.unary(service, endpoint, CONTENT_JSON, body).await?;
        serde_json::from_slice(&reply).map_err(|e| invalid_reply(service, endpoint, &e))
    }

    /// Calls the server-streaming `endpoint` of `service`; the stream ends after the last
    /// reply or at the first error.
    pub async fn stream<Req, Resp>(
        &self,
        service: &str,
        endpoint: &str,
        req: &Req,
    ) -> Result<ReplyStream<Resp>, Error>
    where
        Req: prost::Message,
        Resp: prost::Message + Default + 'static,
    {
        let call = self.call_of(service, endpoint, CONTENT_PROTO, req.encode_to_vec());
        let replies = self.call_raw(call).await?;
        let (service, endpoint) = (service.to_owned(), endpoint.to_owned());
        Ok(Box::pin(replies.map(move |reply| {
            let bytes = reply?;
            Resp::decode(bytes.as_slice()).map_err(|e| invalid_reply(&service, &endpoint, &e))
        })))
    }

    /// Sends `call` as it is (its namespace, content type and metadata included) and
    /// returns the encoded replies.
    pub async fn call_raw(&self, call: Call) -> Result<Replies, Error> {
        micro_proto::raw::call(self.channel.clone(), call, self.timeout).await
    }

    /// The store, through the proxy, in this client's namespace.
    pub fn store(&self) -> StoreClient {
        StoreClient::new(self.clone())
    }

    /// The registry, through the proxy, in this client's namespace.
    pub fn registry(&self) -> RegistryClient {
        RegistryClient::new(self.clone())
    }

    /// Ephemeral publish and subscribe in the client's namespace.
    pub fn broker(&self) -> crate::client::BrokerClient {
        crate::client::BrokerClient::new(self.clone())
    }

    /// Durable event streams in the client's namespace: publish, read, consume,
    /// subscribe.
    pub fn events(&self) -> crate::client::EventsClient {
        crate::client::EventsClient::new(self.clone())
    }

    /// The namespace's config, with typed getters.
    pub fn config(&self) -> crate::client::ConfigClient {
        crate::client::ConfigClient::new(self.clone())
    }

    /// The typed auth client (log in, inspect tokens, accounts and rules).
    pub fn auth(&self) -> crate::client::AuthClient {
        crate::client::AuthClient::new(self.clone())
    }

    /// The same client sending `session`'s (always fresh) token with every call.
    #[must_use]
    pub fn with_session(mut self, session: crate::session::Session) -> Self {
        self.session = Some(session);
        self
    }

    /// The same client without a session (an explicit `with_token` still applies).
    #[must_use]
    pub fn without_session(mut self) -> Self {
        self.session = None;
        self
    }

    /// The metadata a call carries: the client's, plus the session's token unless a
    /// token was set explicitly.
    fn call_metadata(&self) -> BTreeMap<String, String> {
        let mut metadata = self.metadata.clone();
        if let Some(session) = &self.session {
            metadata
                .entry(AUTHORIZATION_METADATA.to_owned())
                .or_insert_with(|| format!("Bearer {}", session.access_token()));
        }
        metadata
    }

    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The namespace calls are made in.
    pub(crate) fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// `message` as a request carrying this client's namespace, metadata and timeout.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        let metadata = request.metadata_mut();
        for (key, value) in &self.call_metadata() {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                value.parse(),
            ) {
                metadata.insert(key, value);
            }
        }
        if let Ok(namespace) = self.namespace.as_str().parse() {
            metadata.insert(NAMESPACE_HEADER, namespace);
        }
        request
    }

    fn call_of(&self, service: &str, endpoint: &str, content_type: &str, body: Vec<u8>) -> Call {
        Call {
            namespace: self.namespace.clone(),
            service: service.to_owned(),
            endpoint: endpoint.to_owned(),
            content_type: content_type.to_owned(),
            metadata: self.call_metadata(),
            body,
        }
    }

    async fn unary(
        &self,
        service: &str,
        endpoint: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        let call = self.call_of(service, endpoint, content_type, body);
        let first = async {
            let mut replies = self.call_raw(call).await?;
            let reply = replies.next().await.unwrap_or_else(|| {
                Err(error::internal(
                    service,
                    format!("{endpoint} ended without a reply"),
                ))
            })?;
            // Read on to the status trailers: a call dropped before them is reset, and
            // an HTTP/2 server answers many resets with GOAWAY for every call in flight.
            if let Some(extra) = replies.next().await {
                extra?;
            }
            Ok(reply)
        };
        tokio::time::timeout(self.timeout, first)
            .await
            .unwrap_or_else(|_| {
                Err(error::timeout(
                    service,
                    format!("{endpoint} did not answer within {:?}", self.timeout),
                ))
            })
    }
}

fn invalid_reply(service: &str, endpoint: &str, err: &dyn std::fmt::Display) -> Error {
    Error::new(
        service,
        micro_core::Code::BadGateway,
        format!("{endpoint} replied with a message that does not decode: {err}"),
    )
}
