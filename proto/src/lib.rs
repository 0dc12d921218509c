//! # micro-proto
//!
//! The wire contract of Micro in Rust: the `.proto` files of Micro v3 (packages `store`,
//! `debug`, `errors`) and ours (`cluster`), the prost/tonic code generated from them at
//! build time by protox (no system `protoc`), the encoded descriptor set for reflection,
//! and the conversions between wire and domain types, errors included.
//!
//! ```text
//!  client ──/store.Store/Write──> proxy: pb::store::WriteRequest ─convert─> core::store::Record
//!  client <──tonic::Status───────  proxy: core StoreError ─status_from_error─> Status + errors.Error
//! ```
//!
//! ```
//! use micro_core::{Code, MicroError};
//! let status = micro_proto::status_from_micro(&MicroError::new("store", Code::NotFound, "no foo"));
//! assert_eq!(status.code(), tonic::Code::NotFound);
//! assert_eq!(micro_proto::micro_from_status("store", &status).detail, "no foo");
//! ```

pub mod consume;
mod convert;
pub mod raw;
mod registry_convert;
mod status;
pub mod tls;
pub mod transcode;

pub use convert::{
    cluster_status_to_wire, list_options, read_options, record_from_wire, record_to_wire,
};
pub use registry_convert::{
    registrations_from_wire, service_from_wire, service_to_wire, value_from_wire, value_to_wire,
    watch_event_to_wire,
};
pub use status::{
    bad_protobuf_is_invalid_argument, micro_from_status, status_from_error, status_from_micro,
};

/// The encoded `FileDescriptorSet` of every `.proto` file of this crate, for reflection
/// and JSON transcoding.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// Declares the module of a generated package; generated code is exempt from our lints.
macro_rules! package {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        #[allow(
            missing_docs,
            unreachable_pub,
            clippy::all,
            clippy::pedantic,
            clippy::nursery,
            missing_debug_implementations
        )]
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", stringify!($name), ".rs"));
        }
    };
}

package!(
    /// Package `auth`: `/auth.Auth/*`, `/auth.Accounts/*`, `/auth.Rules/*`.
    auth
);
package!(
    /// Package `broker`: `/broker.Broker/{Publish,Subscribe}`.
    broker
);
package!(
    /// Package `config`: `/config.Config/{Get,Set,Delete,Read}`.
    config
);
package!(
    /// Package `events`: `/events.Stream/{Publish,Consume}`, `/events.Store/{Read,Write}`.
    events
);
package!(
    /// Package `store`: `/store.Store/*` and `/store.BlobStore/*`.
    store
);
package!(
    /// Package `debug`: `/<service>.Debug/{Health,Stats,Log,Trace}`.
    debug
);
package!(
    /// Package `errors`: the micro error carried as a gRPC status detail.
    errors
);
package!(
    /// Package `cluster` (ours): `/cluster.Cluster/Status`.
    cluster
);
package!(
    /// Package `peer` (ours): node-to-node Raft RPCs and forwarded calls on the peer address.
    peer
);
package!(
    /// Package `registry`: `/registry.Registry/*`.
    registry
);
package!(
    /// Package `router`: the `Route` message of the network service.
    router
);
package!(
    /// Package `network`: `/network.Network/{Nodes,Routes,Services,Graph,Status,Connect}`.
    network
);
package!(
    /// Package `runtime`: `/runtime.Runtime/*` (Create, Read, Delete for in-node services).
    runtime
);
