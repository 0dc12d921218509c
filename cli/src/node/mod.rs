//! Node assembly: configuration, storage and [`start_node`], shared by `micro-node`,
//! `micro server` and the tests.

mod config;
pub mod core_services;
mod listen;
mod start;

pub use config::{
    FileConfig, KubeSettings, LogFormat, NO_KUBERNETES, NodeArgs, NodeConfig, RuntimeConfig,
    RuntimeKind, Secret, StorageKind, TlsPaths, micro_home,
};
pub use listen::{Accepted, ApiListener, Listen, Secured, TlsListener, incoming};
pub use micro_gateway::BODY_LIMIT_DEFAULT;
pub use start::{NodeDeps, RunningNode, TuneRaft, bind, open_storage, start_node};
