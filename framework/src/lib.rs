//! # micro
//!
//! The framework a Micro in Rust service is written with: describe the API in a
//! `.proto` file, implement the generated handler trait, hand it to a [`Service`], and
//! run it inside a node or as its own process. Callers cannot tell the difference.
//!
//! ```text
//! build.rs   micro::build::compile(["proto/helloworld.proto"])   (feature "build")
//!              └─> prost messages + trait Helloworld + helloworld_handler() + FILE_DESCRIPTOR_SET
//! lib.rs     Service::new("helloworld").handle(helloworld_handler(MyImpl))
//!              ├─ start_local() ─> RunningService: LocalService, hosted by a node
//!              └─ run() ─> gRPC server + Register through MICRO_PROXY, until SIGTERM
//!
//! a call:  Call{endpoint, content_type, body}
//!   ─> wrappers (wrap_handler) ─> dispatch: endpoint lookup (404), JSON ─> protobuf (400)
//!   ─> PoolHandle ─> worker actor (ractor, supervised): decode, handler, encode
//!        a panic fails the worker: the call gets 500, the supervisor restarts the worker
//!   ─> replies (protobuf, or JSON again)
//! ```
//!
//! - [`Service`]: the builder (name, version, metadata, TTLs, concurrency, handlers,
//!   wrappers, lifecycle hooks); [`RunningService`] once started.
//! - [`Handler`]: one proto service's endpoints, as generated code builds it.
//! - [`Context`]: namespace, endpoint and metadata of the call a handler serves.
//! - [`Client`]: typed and JSON calls to other services, the store and the registry,
//!   through a node's proxy.
//! - [`errors`]: [`Error`] (the micro error) and constructors per code.
//! - [`env`](mod@env): the environment a process service reads.
//!
//! A hand-written handler served in this process:
//!
//! ```
//! # #[derive(Clone, PartialEq, prost::Message)] struct Ping { #[prost(string, tag = "1")] msg: String }
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use futures::StreamExt;
//! use micro_core::service::{Call, LocalService, CONTENT_PROTO};
//! use prost::Message;
//!
//! let handler = micro::Handler::new("echo.Echo", &[])
//!     .unary("Echo.Ping", "echo.Ping", "echo.Ping", |_ctx, req: Ping| async move { Ok(req) });
//! let service = micro::Service::new("echo").handle(handler).start_local().await.unwrap();
//!
//! let ping = Ping { msg: "hi".into() };
//! let call = Call {
//!     endpoint: "Echo.Ping".into(),
//!     content_type: CONTENT_PROTO.into(),
//!     body: ping.encode_to_vec(),
//!     ..Call::default()
//! };
//! let reply = service.call(call).next().await.unwrap().unwrap();
//! assert_eq!(Ping::decode(reply.as_slice()).unwrap(), ping);
//! service.stop().await.unwrap();
//! # });
//! ```

#[cfg(feature = "build")]
pub mod build;
pub mod client;
mod context;
pub mod debug;
mod describe;
mod dispatch;
pub mod env;
mod error;
mod handler;
mod hooks;
pub mod options;
mod pool;
mod process;
mod running;
pub mod schema;
mod service;
pub mod session;
mod transcoder;
mod wrapper;

pub use client::Client;
pub use context::{AUTHORIZATION_METADATA, Context};
pub use error::Error;
pub use handler::{EndpointInfo, Handler, ReplyStream};
pub use micro_core::service::{Call, Replies};
pub use micro_core::{Code, Namespace};
pub use process::REGISTER_TIMEOUT;
pub use running::{RunningService, STOP_GRACE};
pub use service::Service;
pub use transcoder::Transcoder;
pub use wrapper::{HandlerWrapper, Next};

/// [`Error`] and a constructor per common code (`errors::not_found(id, detail)`).
pub mod errors {
    pub use crate::error::{
        Error, bad_request, conflict, forbidden, internal, not_found, not_implemented, timeout,
        unauthorized, unavailable,
    };
}

/// Includes the code `micro::build::compile` generated for the proto package
/// `$package`: its messages, handler traits, handler constructors and
/// `FILE_DESCRIPTOR_SET`.
///
/// ```ignore
/// pub mod pb {
///     micro::include_proto!("helloworld");
/// }
/// ```
#[macro_export]
macro_rules! include_proto {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}

/// The encoded `FileDescriptorSet` `micro::build::compile` wrote, as a
/// `&'static [u8]`.
///
/// ```ignore
/// const DESCRIPTOR: &[u8] = micro::include_descriptor!();
/// ```
#[macro_export]
macro_rules! include_descriptor {
    () => {
        include_bytes!(concat!(env!("OUT_DIR"), "/micro_descriptor.bin"))
    };
}
