//! # micro-cli
//!
//! The composition root of Micro in Rust: node assembly ([`node`]), used by the
//! binaries and by tests, and the commands of the `micro` CLI ([`commands`]).
//!
//! ```text
//! micro-node / micro server ─> NodeConfig (file -> env -> flags) ─> open storage
//!     ─> start_node: RaftNode (recover or initialize) ─> NodeSupervisor (actors)
//!        ─> proxy (gRPC, :8081) and api (HTTP, :8080) on the bound listeners
//! micro store|cluster ... ─> Client (gRPC to the proxy) ─> output / exit code
//! ```

pub mod builtins;
pub mod client;
pub mod commands;
pub mod duration;
pub mod environments;
pub mod exit;
mod flags;
pub mod node;
pub mod session;
pub mod size;
pub mod source;

/// The decoders of the CLI that take arbitrary input, reachable here for the fuzz
/// targets (`fuzz/`) and property tests only: not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::flags::{parse_dynamic, request_from_flags};
}

pub use builtins::builtins;
pub use commands::{cli_main, node_main};
