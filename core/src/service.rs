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
}
