//! Registry and runtime state: their keys, their part of `apply`, and their reads.
//!
//! Space `Registry`:
//! ```text
//! 0x00 ns name version node_id   -> StoredNode   (one registration)
//! 0x01 expires_at(be64) <node key> -> ()          (expiry index, oldest first)
//! ```
//! Space `Runtime`:
//! ```text
//! 0x00 ns name version            -> RuntimeService
//! ```
//! Names are length-prefixed (be16) as in the store, so one namespace's or service's
//! prefix never matches another's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kv::{KeyRange, KvBackend, KvError, ScanOrder, Space, WriteBatch};
use crate::namespace::Namespace;
use crate::registry::{Node, Registration, Service};
use crate::runtime::{Change, RuntimeService};
use crate::state::Response;
use crate::state::keys::{decode, encode};

const NODE_TAG: u8 = 0;
const EXPIRY_TAG: u8 = 1;

/// One registration as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredNode {
    service: Service,
    node: Node,
    expires_at_ms: Option<u64>,
}

pub(crate) fn key(tag: u8, names: &[&str]) -> Vec<u8> {
    let mut out = vec![tag];
    for name in names {
        // Names are validated to at most 255 bytes before they are proposed.
        let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    out
}

/// The names a [`key`] was built from (after its tag); `None` if it is not one.
pub(crate) fn split_key(key: &[u8]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut rest = key.get(1..)?;
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
        let name = rest.get(2..2 + len)?;
        names.push(String::from_utf8(name.to_vec()).ok()?);
        rest = rest.get(2 + len..)?;
    }
    Some(names)
}

fn expiry_key(at_ms: u64, node_key: &[u8]) -> Vec<u8> {
    let mut out = vec![EXPIRY_TAG];
    out.extend_from_slice(&at_ms.to_be_bytes());
    out.extend_from_slice(node_key);
    out
}

fn load_node(kv: &dyn KvBackend, key: &[u8]) -> Result<Option<StoredNode>, KvError> {
    crate::state::keys::load(kv, Space::Registry, key, "registry entry")
}

/// Applies a registration: (re)writes the node with its new expiry.
pub(crate) fn register(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    registration: &Registration,
    now: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let service = &registration.service;
    let node_key = key(
        NODE_TAG,
        &[
            namespace.as_str(),
            &service.name,
            &service.version,
            &registration.node.id,
        ],
    );
    if let Some(old) = load_node(kv, &node_key)?
        && let Some(at) = old.expires_at_ms
    {
        batch.delete(Space::Registry, expiry_key(at, &node_key));
    }
    let expires_at_ms = registration
        .ttl_secs
        .map(|s| now.saturating_add(s.saturating_mul(1000)));
    if let Some(at) = expires_at_ms {
        batch.put(Space::Registry, expiry_key(at, &node_key), Vec::new());
    }
    let mut stored_service = service.clone();
    stored_service.nodes.clear();
    let stored = StoredNode {
        service: stored_service,
        node: registration.node.clone(),
        expires_at_ms,
    };
    batch.put(Space::Registry, node_key, encode(&stored));
    Ok(Response::Done)
}

/// Applies a deregistration of some nodes (all nodes when `node_ids` is empty).
pub(crate) fn deregister(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    name: &str,
    version: &str,
    node_ids: &[String],
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let prefix = key(NODE_TAG, &[namespace.as_str(), name, version]);
    let mut existed = false;
    let mut found = Vec::new();
    kv.scan(
        Space::Registry,
        &KeyRange::prefix(&prefix),
        ScanOrder::Asc,
        &mut |k, v| {
            found.push((k.to_vec(), v.to_vec()));
            true
        },
    )?;
    for (k, v) in found {
        let Some(stored) = decode::<StoredNode>(&v) else {
            continue;
        };
        if !node_ids.is_empty() && !node_ids.contains(&stored.node.id) {
            continue;
        }
        if let Some(at) = stored.expires_at_ms {
            batch.delete(Space::Registry, expiry_key(at, &k));
        }
        batch.delete(Space::Registry, k);
        existed = true;
    }
    Ok(Response::Deleted { existed })
}

/// Purges registrations whose TTL ran out by `now` (at most `max`), returning how many.
pub(crate) fn purge_expired(
    kv: &dyn KvBackend,
    now: u64,
    max: usize,
    batch: &mut WriteBatch,
) -> Result<u64, KvError> {
    let due = crate::state::keys::due_expiries(kv, Space::Registry, EXPIRY_TAG, now, max)?;
    let mut purged = 0;
    for index_key in due {
        batch.delete(Space::Registry, index_key.clone());
        let Some(node_key) = index_key.get(9..) else {
            continue;
        };
        let at = index_key
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes);
        if let Some(old) = load_node(kv, node_key)?
            && old.expires_at_ms == at
        {
            batch.delete(Space::Registry, node_key.to_vec());
            purged += 1;
        }
    }
    Ok(purged)
}

/// Applies a runtime command (upsert, delete or change).
pub(crate) fn runtime_apply(
    kv: &dyn KvBackend,
    command: &crate::state::Command,
    now: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    use crate::state::Command;
    match command {
        Command::RuntimeUpsert { namespace, service } => {
            Ok(runtime_upsert(namespace, service, now, batch))
        }
        Command::RuntimeDelete {
            namespace,
            name,
            version,
        } => runtime_delete(kv, namespace, name, version, batch),
        Command::RuntimeChange {
            namespace,
            name,
            version,
            change,
        } => runtime_change(kv, namespace, [name, version], change, now, batch),
        _ => Ok(Response::Refused {
            reason: "not a runtime command".to_owned(),
        }),
    }
}

/// Applies a runtime upsert.
fn runtime_upsert(
    namespace: &Namespace,
    service: &RuntimeService,
    now: u64,
    batch: &mut WriteBatch,
) -> Response {
    let mut stored = service.clone();
    stored.updated_ms = now;
    batch.put(
        Space::Runtime,
        key(
            NODE_TAG,
            &[namespace.as_str(), &service.name, &service.version],
        ),
        encode(&(namespace.clone(), stored)),
    );
    Response::Done
}

/// Applies a runtime delete.
fn runtime_delete(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    name: &str,
    version: &str,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let k = key(NODE_TAG, &[namespace.as_str(), name, version]);
    let existed = kv.get(Space::Runtime, &k)?.is_some();
    batch.delete(Space::Runtime, k);
    Ok(Response::Deleted { existed })
}

/// Applies a runtime change to service `name_version` if it exists and the change's
/// condition holds.
fn runtime_change(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    [name, version]: [&String; 2],
    change: &Change,
    now: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let k = key(NODE_TAG, &[namespace.as_str(), name, version]);
    let Some(bytes) = kv.get(Space::Runtime, &k)? else {
        return Ok(Response::Refused {
            reason: format!("service {name}:{version} is not in the runtime"),
        });
    };
    let Some((_, mut service)) = decode::<(Namespace, RuntimeService)>(&bytes) else {
        return Err(KvError("corrupt runtime entry".to_owned()));
    };
    if let Err(reason) = service.apply(change) {
        return Ok(Response::Refused { reason });
    }
    service.updated_ms = now;
    batch.put(Space::Runtime, k, encode(&(namespace.clone(), service)));
    Ok(Response::Done)
}

/// The live services of `namespace` (optionally only `name`), each the union of its
/// nodes' registrations, sorted by name then version. A node whose expiry has passed
/// by log time `now` is left out even before a tick purges it.
pub(crate) fn services(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    name: Option<&str>,
    now: u64,
) -> Result<Vec<Service>, KvError> {
    let prefix = match name {
        Some(name) => key(NODE_TAG, &[namespace.as_str(), name]),
        None => key(NODE_TAG, &[namespace.as_str()]),
    };
    let mut merged: BTreeMap<(String, String), Service> = BTreeMap::new();
    let mut bad = false;
    kv.scan(
        Space::Registry,
        &KeyRange::prefix(&prefix),
        ScanOrder::Asc,
        &mut |_, v| {
            let Some(stored) = decode::<StoredNode>(v) else {
                bad = true;
                return false;
            };
            if stored.expires_at_ms.is_some_and(|at| at <= now) {
                return true;
            }
            let entry = merged
                .entry((stored.service.name.clone(), stored.service.version.clone()))
                .or_insert_with(|| stored.service.clone());
            entry.nodes.push(stored.node);
            true
        },
    )?;
    if bad {
        return Err(KvError("corrupt registry entry".to_owned()));
    }
    Ok(merged.into_values().collect())
}

/// The namespaces that have at least one registration (live or not yet purged).
pub(crate) fn registry_namespaces(kv: &dyn KvBackend) -> Result<Vec<Namespace>, KvError> {
    let mut out: Vec<Namespace> = Vec::new();
    let mut cursor = vec![NODE_TAG];
    loop {
        let range = KeyRange {
            start: cursor.clone(),
            end: Some(vec![EXPIRY_TAG]),
        };
        let mut next = None;
        kv.scan(Space::Registry, &range, ScanOrder::Asc, &mut |k, _| {
            next = Some(k.to_vec());
            false
        })?;
        let Some(k) = next else { break };
        let len = k
            .get(1..3)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b: [u8; 2]| usize::from(u16::from_be_bytes(b)));
        let Some(name) = k.get(3..3 + len) else { break };
        let name = String::from_utf8_lossy(name).into_owned();
        if let Ok(ns) = Namespace::new(name.clone()) {
            out.push(ns);
        }
        // Skip past every key of this namespace: its prefix with the largest byte after.
        cursor = key(NODE_TAG, &[&name]);
        cursor.push(0xff);
        cursor.push(0xff);
        cursor.push(0xff);
    }
    Ok(out)
}

/// Every desired runtime service (of one namespace, or of all), sorted by namespace,
/// name and version.
pub(crate) fn runtime_services(
    kv: &dyn KvBackend,
    namespace: Option<&Namespace>,
) -> Result<Vec<(Namespace, RuntimeService)>, KvError> {
    let prefix = match namespace {
        Some(ns) => key(NODE_TAG, &[ns.as_str()]),
        None => vec![NODE_TAG],
    };
    let mut out = Vec::new();
    let mut bad = false;
    kv.scan(
        Space::Runtime,
        &KeyRange::prefix(&prefix),
        ScanOrder::Asc,
        &mut |_, v| {
            match decode::<(Namespace, RuntimeService)>(v) {
                Some(entry) => out.push(entry),
                None => bad = true,
            }
            !bad
        },
    )?;
    if bad {
        return Err(KvError("corrupt runtime entry".to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::kv::MemKvBackend;
    use crate::namespace::Namespace;
    use crate::registry::{Node, Registration, Service};
    use crate::state::{Command, StateReader};

    fn run(kv: &Arc<MemKvBackend>, at_ms: u64, command: Command) {
        crate::state::apply_now(kv.as_ref(), at_ms, command);
    }

    fn registration(node: &str, ttl: Option<u64>) -> Command {
        Command::RegistryRegister {
            namespace: Namespace::default(),
            registration: Registration {
                service: Service {
                    name: "hello".into(),
                    version: "latest".into(),
                    ..Service::default()
                },
                node: Node {
                    id: node.into(),
                    address: "a:1".into(),
                    ..Node::default()
                },
                ttl_secs: ttl,
            },
        }
    }

    #[test]
    fn nodes_merge_expire_by_log_time_and_deregister() {
        let kv = Arc::new(MemKvBackend::new());
        let reader = StateReader::new(kv.clone());
        let ns = Namespace::default();
        run(&kv, 1_000, registration("n1", Some(10)));
        run(&kv, 1_000, registration("n2", None));
        let found = reader.registry_services(&ns, Some("hello")).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].nodes.len(), 2);
        // Renewal moves the expiry: at 10.5 s n1 is still alive.
        run(&kv, 5_000, registration("n1", Some(10)));
        run(&kv, 11_500, Command::Tick);
        assert_eq!(
            reader.registry_services(&ns, None).unwrap()[0].nodes.len(),
            2
        );
        // Past the renewed expiry it is gone, and the tick purged it.
        run(&kv, 15_001, Command::Tick);
        let found = reader.registry_services(&ns, None).unwrap();
        assert_eq!(found[0].nodes.len(), 1);
        assert_eq!(found[0].nodes[0].id, "n2");
        assert_eq!(reader.registry_namespaces().unwrap(), vec![ns.clone()]);
        run(
            &kv,
            16_000,
            Command::RegistryDeregister {
                namespace: ns.clone(),
                name: "hello".into(),
                version: "latest".into(),
                node_ids: vec![],
            },
        );
        assert!(reader.registry_services(&ns, None).unwrap().is_empty());
        // Other namespaces never see it.
        run(&kv, 17_000, registration("n3", None));
        let other = Namespace::new("other").unwrap();
        assert!(reader.registry_services(&other, None).unwrap().is_empty());
    }
}
