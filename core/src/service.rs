//! The [`LocalService`] port: a service whose handlers run in this process, called with
//! raw request bytes.
//!
//! ```text
//! proxy / router ──Call { endpoint, content_type, body }──> LocalService (framework)
//!                <── stream of reply bodies (one for unary) or a MicroError ──┘
//! ```
//!
//! The node's router calls in-node services through it; the framework implements it, and
//! a process service serves the same implementation over gRPC, so callers cannot tell an
//! in-node service from a process.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;

use crate::error::MicroError;
use crate::namespace::Namespace;
use crate::registry::Service;

/// Content type of protobuf bodies.
pub const CONTENT_PROTO: &str = "application/grpc+proto";
/// Content type of JSON bodies (as Micro v3 accepted them over gRPC).
pub const CONTENT_JSON: &str = "application/grpc+json";

/// Whether a content type carries JSON bodies (`application/grpc+json`, `application/json`).
pub fn is_json(content_type: &str) -> bool {
    content_type.ends_with("json")
}

/// One call to an endpoint.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// The caller's namespace.
    pub namespace: Namespace,
    /// Registry name of the service (`helloworld`).
    pub service: String,
    /// `Handler.Method` (`Helloworld.Call`).
    pub endpoint: String,
    /// How `body` and the replies are encoded ([`CONTENT_PROTO`] or [`CONTENT_JSON`]).
    pub content_type: String,
    /// Request metadata (lower-case keys): caller, token, anything the client sent.
    pub metadata: BTreeMap<String, String>,
    /// The encoded request message.
    pub body: Vec<u8>,
}

/// The encoded replies of a call: one item for a unary endpoint, any number for a
/// server-streaming one. An `Err` item ends the stream.
pub type Replies = Pin<Box<dyn Stream<Item = Result<Vec<u8>, MicroError>> + Send>>;

/// A service running in this process.
pub trait LocalService: Send + Sync + Debug + 'static {
    /// What it registers: name, version, metadata (descriptor included) and endpoints.
    /// `nodes` is empty: the host adds the node it serves on.
    fn describe(&self) -> Service;

    /// Calls an endpoint. Unknown endpoints and undecodable bodies come back as an `Err`
    /// item (`NotFound` / `BadRequest`), never a panic.
    fn call(&self, call: Call) -> Replies;

    /// Stops its handlers (after which calls fail); the default has nothing to stop.
    fn stop(&self) -> crate::replicator::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Anything that answers calls: a local service, or the router that finds one.
pub trait ServiceCaller: Send + Sync + 'static {
    /// Dispatches a call; errors come back as an `Err` item.
    fn dispatch(&self, call: Call) -> Replies;
}

impl<T: LocalService + ?Sized> ServiceCaller for T {
    fn dispatch(&self, call: Call) -> Replies {
        self.call(call)
    }
}

/// How the router reaches a service on another node or in another process.
pub trait RemoteCaller: Send + Sync + Debug + 'static {
    /// Calls `call` on the server at `address` (`host:port`) within `timeout`. A server
    /// that cannot be reached is an `Unavailable` error before anything was sent.
    fn call(
        &self,
        address: &str,
        call: Call,
        timeout: std::time::Duration,
    ) -> crate::replicator::BoxFuture<'static, Result<Replies, MicroError>>;
}

/// A service compiled into the node binary, started in-node by `micro run NAME`.
pub trait Builtin: Send + Sync + Debug + 'static {
    /// Starts a fresh instance (its handler actors) and returns it.
    fn start(
        &self,
    ) -> crate::replicator::BoxFuture<'static, Result<Arc<dyn LocalService>, MicroError>>;
}

/// The services compiled into a node, by name.
pub type Builtins = BTreeMap<String, Arc<dyn Builtin>>;
