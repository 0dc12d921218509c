//! Calling services and the platform through a node's proxy.
//!
//! ```text
//! Client ──raw gRPC /helloworld.Helloworld/Call (x-content-type, micro-namespace)──> node proxy
//!        ──/store.Store/*, /registry.Registry/*, /auth.*/*, /events.*/*, ...─────────> node proxy
//! ```

mod auth;
mod broker;
mod config;
mod events;
mod registry;
mod service_client;
mod store;

pub use auth::AuthClient;
pub use auth::types as auth_types;
pub use broker::{BrokerClient, BrokerMessage, Messages};
pub use config::{ConfigClient, ConfigValue};
pub use events::{
    ConsumeOptions, Event, EventHandler, Events, EventsClient, SUBSCRIBE_ACK_WAIT, Subscription,
};
pub use registry::RegistryClient;
pub use service_client::{Client, DEFAULT_TIMEOUT};
pub use store::{LIST_KEYS_MAX, StoreClient};
