//! # micro-actors
//!
//! The core services of a Micro node as supervised ractor actors. Each service has the
//! same shape: `XActor` (dispatch only), `XMsg`, `XState`, `XArgs`, a typed `XHandle`,
//! and pure `logic`.
//!
//! ```text
//!                 NodeSupervisor            restarts a failed child (at most
//!                       │                   RESTARTS_MAX within RESTART_WINDOW)
//!                 ┌─────┴─────┐
//!             StoreActor    (later: registry, config, auth, events, ...)
//!                 │
//!                 └─ per request: a task that awaits the Replicator and answers
//!                    through the reply port, so `handle` never waits on Raft or disk
//! ```
//!
//! Callers hold [`NodeHandles`]; a handle keeps working across restarts of its actor.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use micro_actors::NodeSupervisor;
//! use micro_core::{Namespace, replicator::MemReplicator, store::{ReadQuery, Record}};
//!
//! let replicator = Arc::new(MemReplicator::new(Arc::new(micro_core::SystemClock)));
//! let (supervisor, handles) = NodeSupervisor::start(replicator).await.unwrap();
//! let table = micro_actors::store::TableRef::new(Namespace::default(), "", "");
//! let record = Record { key: "foo".into(), value: b"bar".to_vec(), ..Record::default() };
//! handles.store.write(table.clone(), record).await.unwrap();
//! let query = ReadQuery { key: "foo".into(), ..ReadQuery::default() };
//! let read = handles.store.read(table, query, Default::default());
//! assert_eq!(read.await.unwrap()[0].value, b"bar");
//! supervisor.stop(None);
//! # });
//! ```

pub mod auth;
pub mod blobs;
pub mod broker;
pub mod config;
pub mod events;
pub mod registry;
pub mod router;
pub mod runtime;
pub mod store;
pub mod supervisor;

pub use auth::AuthHandle;
pub use blobs::BlobHandle;
pub use broker::BrokerHub;
pub use config::ConfigHandle;
pub use events::EventsHandle;
pub use registry::RegistryHandle;
pub use router::Router;
pub use runtime::RuntimeHandle;
pub use supervisor::{NodeHandles, NodeSupervisor};
