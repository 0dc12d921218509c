//! Config state: each namespace's leaves, their part of `apply`, and their reads.
//!
//! Space `Config`:
//! ```text
//! 0x00 ns path  -> Leaf     (path bytes last, so a subtree `path.` is a key range)
//! ```

use crate::config::{Leaf, ancestors};
use crate::kv::{KeyRange, KvBackend, KvError, ScanOrder, Space, WriteBatch};
use crate::namespace::Namespace;
use crate::state::Response;
use crate::state::keys::{decode, encode};
use crate::state::services::key;

const LEAF_TAG: u8 = 0;

fn leaf_key(namespace: &Namespace, path: &str) -> Vec<u8> {
    let mut out = key(LEAF_TAG, &[namespace.as_str()]);
    out.extend_from_slice(path.as_bytes());
    out
}

/// The keys under `path.` (everything of the namespace for the root).
fn subtree(namespace: &Namespace, path: &str) -> KeyRange {
    if path.is_empty() {
        return KeyRange::prefix(&key(LEAF_TAG, &[namespace.as_str()]));
    }
    // '/' is the byte after '.': the range is exactly the keys starting `path.`.
    KeyRange {
        start: leaf_key(namespace, &format!("{path}.")),
        end: Some(leaf_key(namespace, &format!("{path}/"))),
    }
}

/// The leaves at and under `path` (paths from the root).
pub(crate) fn leaves(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    path: &str,
) -> Result<Vec<(String, Leaf)>, KvError> {
    let skip = key(LEAF_TAG, &[namespace.as_str()]).len();
    let mut out = Vec::new();
    if !path.is_empty()
        && let Some(leaf) = kv
            .get(Space::Config, &leaf_key(namespace, path))?
            .and_then(|b| decode::<Leaf>(&b))
    {
        out.push((path.to_owned(), leaf));
    }
    kv.scan(
        Space::Config,
        &subtree(namespace, path),
        ScanOrder::Asc,
        &mut |k, v| {
            let path = k.get(skip..).map(String::from_utf8_lossy);
            if let (Some(path), Some(leaf)) = (path, decode::<Leaf>(v)) {
                out.push((path.into_owned(), leaf));
            }
            true
        },
    )?;
    Ok(out)
}

/// Writes leaves: each replaces what was at and under its path, and a leaf above it
/// (which becomes an object); siblings stay (objects merge).
pub(crate) fn set(
    namespace: &Namespace,
    leaves: &[(String, Leaf)],
    batch: &mut WriteBatch,
) -> Response {
    for (path, leaf) in leaves {
        for ancestor in ancestors(path) {
            batch.delete(Space::Config, leaf_key(namespace, ancestor));
        }
        let range = subtree(namespace, path);
        if let Some(end) = range.end {
            batch.delete_range(Space::Config, range.start, end);
        }
        batch.put(Space::Config, leaf_key(namespace, path), encode(leaf));
    }
    Response::Done
}

/// Deletes the value at `path` (the whole tree for the root).
pub(crate) fn delete(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    path: &str,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let existed = !leaves(kv, namespace, path)?.is_empty();
    if !path.is_empty() {
        batch.delete(Space::Config, leaf_key(namespace, path));
    }
    let range = subtree(namespace, path);
    let end = range.end.unwrap_or_else(|| {
        let mut end = key(LEAF_TAG, &[namespace.as_str()]);
        end.push(0xff);
        end
    });
    batch.delete_range(Space::Config, range.start, end);
    Ok(Response::Deleted { existed })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::kv::MemKvBackend;
    use crate::state::{Command, StateReader};

    fn run(kv: &MemKvBackend, command: Command) -> Response {
        crate::state::apply_now(kv, 1, command)
    }

    fn set_json(ns: &Namespace, path: &str, json: &serde_json::Value) -> Command {
        let leaves = crate::config::flatten(path, json)
            .unwrap()
            .into_iter()
            .map(|(p, v)| {
                (
                    p,
                    Leaf {
                        value: v,
                        secret: false,
                    },
                )
            })
            .collect();
        Command::ConfigSet {
            namespace: ns.clone(),
            leaves,
        }
    }

    #[test]
    fn objects_merge_leaves_replace_and_deletes_take_subtrees() {
        let kv = Arc::new(MemKvBackend::new());
        let reader = StateReader::new(kv.clone());
        let ns = Namespace::default();
        let other = Namespace::new("other").unwrap();
        let get = |ns: &Namespace, path: &str| {
            let leaves = reader.config_leaves(ns, path).unwrap();
            crate::config::assemble(path, &leaves, &|l: &Leaf| l.value.clone())
        };
        run(
            &kv,
            set_json(
                &ns,
                "app.db",
                &serde_json::json!({"host": "x", "port": 5432}),
            ),
        );
        run(&kv, set_json(&ns, "app.db.user", &serde_json::json!("u")));
        run(&kv, set_json(&ns, "app.dbx", &serde_json::json!(1)));
        assert_eq!(
            get(&ns, "app.db"),
            Some(serde_json::json!({"host": "x", "port": 5432, "user": "u"}))
        );
        assert_eq!(get(&other, "app.db"), None);
        // A leaf replaces the object under it; an object replaces a leaf above it.
        run(&kv, set_json(&ns, "app.db", &serde_json::json!("flat")));
        assert_eq!(get(&ns, "app.db"), Some(serde_json::json!("flat")));
        run(&kv, set_json(&ns, "app.db.host", &serde_json::json!("y")));
        assert_eq!(get(&ns, "app.db"), Some(serde_json::json!({"host": "y"})));
        let delete = |path: &str| Command::ConfigDelete {
            namespace: ns.clone(),
            path: path.to_owned(),
        };
        assert_eq!(
            run(&kv, delete("app.db")),
            Response::Deleted { existed: true }
        );
        assert_eq!(get(&ns, "app"), Some(serde_json::json!({"dbx": 1})));
        assert_eq!(
            run(&kv, delete("app.db")),
            Response::Deleted { existed: false }
        );
        assert_eq!(run(&kv, delete("")), Response::Deleted { existed: true });
        assert_eq!(get(&ns, ""), None);
    }
}
