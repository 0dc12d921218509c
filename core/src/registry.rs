//! The registry's domain: services, their endpoints (with request/response schemas) and
//! the nodes that serve them, per namespace.
//!
//! A registration is one node of one service version; it lives until it is deregistered
//! or its TTL (judged by log time) runs out. A [`Service`] as callers see it is the
//! union of the live nodes of one `(name, version)`.
//!
//! ```
//! use micro_core::registry::{Registration, Service, Node};
//! let service = Service { name: "helloworld".into(), version: "latest".into(), ..Service::default() };
//! let node = Node { id: "helloworld-1".into(), address: "127.0.0.1:9000".into(), ..Node::default() };
//! let registration = Registration { service, node, ttl_secs: Some(30) };
//! assert!(registration.validate().is_ok());
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Code, HasCode};

/// The longest service name, version or node id accepted.
pub const NAME_LEN_MAX: usize = 255;
/// The largest encoded registration accepted (endpoint schemas and the descriptor set
/// included), so one service cannot bloat every replica's state.
pub const REGISTRATION_BYTES_MAX: usize = 512 * 1024;
/// The longest registration TTL (a day): longer ones are clamped.
pub const TTL_SECS_MAX: u64 = 86_400;
/// Service metadata key holding the base64 of the service's encoded
/// `FileDescriptorSet`, for the gateway and CLI to transcode JSON.
pub const DESCRIPTOR_METADATA: &str = "descriptor";
/// Service metadata key naming the fully qualified proto service (`helloworld.Helloworld`).
pub const PROTO_SERVICE_METADATA: &str = "proto_service";

/// A service as registered: its identity, endpoints and serving nodes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Service {
    /// Registry name (`helloworld`, `store`).
    pub name: String,
    /// Version (`latest` when unset).
    pub version: String,
    /// Free-form metadata.
    pub metadata: BTreeMap<String, String>,
    /// The endpoints (`Helloworld.Call`).
    pub endpoints: Vec<Endpoint>,
    /// The live nodes serving it.
    pub nodes: Vec<Node>,
}

/// One endpoint with the schema of its request and response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Endpoint {
    /// `Handler.Method`.
    pub name: String,
    /// Schema of the request message.
    pub request: Option<Value>,
    /// Schema of the response message.
    pub response: Option<Value>,
    /// Metadata (`stream=true` for streaming endpoints).
    pub metadata: BTreeMap<String, String>,
}

/// A recursive schema: a field (or message) name, its type, and its fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Value {
    /// Field name (the message name at the top).
    pub name: String,
    /// Type name (`string`, `int64`, `bool`, a message name; `[]T` for repeated).
    pub r#type: String,
    /// Fields, for messages.
    pub values: Vec<Self>,
}

/// One serving instance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Node {
    /// Unique id (`<name>-<uuid>` by convention).
    pub id: String,
    /// Where it serves gRPC (`host:port`).
    pub address: String,
    /// Free-form metadata.
    pub metadata: BTreeMap<String, String>,
}

/// One node's registration of one service version.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Registration {
    /// The service (its `nodes` are ignored: `node` is the one registered).
    pub service: Service,
    /// The node being registered.
    pub node: Node,
    /// Time to live from the registration's log time; `None` lives until deregistered.
    pub ttl_secs: Option<u64>,
}

/// A registry request that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// No such service.
    #[error("service {0} not found")]
    NotFound(String),
}

impl HasCode for RegistryError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid(_) => Code::BadRequest,
            Self::NotFound(_) => Code::NotFound,
        }
    }
}

/// Checks a name, version or node id: non-empty (unless `optional`), at most
/// [`NAME_LEN_MAX`] bytes, no control characters.
pub fn check_name(what: &str, name: &str, optional: bool) -> Result<(), RegistryError> {
    if name.is_empty() && !optional {
        return Err(RegistryError::Invalid(format!("{what} is required")));
    }
    if name.len() > NAME_LEN_MAX || name.chars().any(char::is_control) {
        return Err(RegistryError::Invalid(format!(
            "{what} must be at most {NAME_LEN_MAX} bytes without control characters"
        )));
    }
    Ok(())
}

impl Registration {
    /// Validates the registration and fills defaults (version `latest`).
    pub fn validate(mut self) -> Result<Self, RegistryError> {
        check_name("service name", &self.service.name, false)?;
        if self.service.version.is_empty() {
            "latest".clone_into(&mut self.service.version);
        }
        check_name("service version", &self.service.version, false)?;
        check_name("node id", &self.node.id, false)?;
        check_name("node address", &self.node.address, true)?;
        self.service.nodes.clear();
        self.ttl_secs = self.ttl_secs.map(|t| t.min(TTL_SECS_MAX));
        let size = serde_json::to_vec(&self).map_or(usize::MAX, |b| b.len());
        if size > REGISTRATION_BYTES_MAX {
            return Err(RegistryError::Invalid(format!(
                "registration of {size} bytes exceeds the {REGISTRATION_BYTES_MAX}-byte limit"
            )));
        }
        Ok(self)
    }
}

/// A change the registry's Watch reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// `create`, `update` or `delete`.
    pub action: String,
    /// The service after the change (for `delete`, the node(s) removed).
    pub service: Service,
    /// Log time of the change (Unix seconds).
    pub timestamp: i64,
}

/// The changes between two views of a namespace's registry: nodes that appeared
/// (`create`), whose registration changed (`update`) or disappeared (`delete`), one event
/// per service version, `create` and `update` listing the service's current nodes.
pub fn diff(before: &[Service], after: &[Service], timestamp: i64) -> Vec<WatchEvent> {
    let key = |s: &Service| (s.name.clone(), s.version.clone());
    let old: BTreeMap<_, _> = before.iter().map(|s| (key(s), s)).collect();
    let new: BTreeMap<_, _> = after.iter().map(|s| (key(s), s)).collect();
    let mut events = Vec::new();
    for (k, service) in &new {
        let action = match old.get(k) {
            None => "create",
            Some(prev) => {
                let added = service
                    .nodes
                    .iter()
                    .any(|n| !prev.nodes.iter().any(|p| p.id == n.id));
                if added {
                    "create"
                } else if *prev != *service && service.nodes.len() >= prev.nodes.len() {
                    "update"
                } else {
                    // Fewer nodes: reported below as a delete of the removed ones.
                    ""
                }
            }
        };
        if !action.is_empty() {
            events.push(WatchEvent {
                action: action.to_owned(),
                service: (*service).clone(),
                timestamp,
            });
        }
    }
    for (k, prev) in &old {
        let remaining = new.get(k).map_or(&[][..], |s| s.nodes.as_slice());
        let gone: Vec<Node> = prev
            .nodes
            .iter()
            .filter(|n| !remaining.iter().any(|r| r.id == n.id))
            .cloned()
            .collect();
        if !gone.is_empty() {
            let mut service = (*prev).clone();
            service.nodes = gone;
            events.push(WatchEvent {
                action: "delete".to_owned(),
                service,
                timestamp,
            });
        }
    }
    events
}

/// The services every node serves for every namespace, registered in `micro` only.
pub const CORE_SERVICE_NAMES: [&str; 9] = [
    "auth", "broker", "cluster", "config", "events", "network", "registry", "runtime", "store",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn service(nodes: &[&str]) -> Service {
        Service {
            name: "a".into(),
            version: "latest".into(),
            nodes: nodes
                .iter()
                .map(|id| Node {
                    id: (*id).to_owned(),
                    ..Node::default()
                })
                .collect(),
            ..Service::default()
        }
    }

    #[test]
    fn diff_reports_creates_and_deletes_per_node() {
        let events = diff(&[], &[service(&["n1"])], 1);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, "create");
        let events = diff(&[service(&["n1", "n2"])], &[service(&["n1"])], 2);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, "delete");
        assert_eq!(events[0].service.nodes[0].id, "n2");
        let events = diff(&[service(&["n1"])], &[], 3);
        assert_eq!(events[0].action, "delete");
        assert!(diff(&[service(&["n1"])], &[service(&["n1"])], 4).is_empty());
    }

    #[test]
    fn validation_fills_the_version_and_refuses_bad_names() {
        let ok = Registration {
            service: Service {
                name: "a".into(),
                ..Service::default()
            },
            node: Node {
                id: "n".into(),
                ..Node::default()
            },
            ttl_secs: Some(u64::MAX),
        }
        .validate()
        .unwrap();
        assert_eq!(ok.service.version, "latest");
        assert_eq!(ok.ttl_secs, Some(TTL_SECS_MAX));
        let mut bad = ok.clone();
        bad.service.name = String::new();
        assert!(bad.validate().is_err());
        let mut bad = ok;
        bad.node.id = "x\n".into();
        assert!(bad.validate().is_err());
    }
}
