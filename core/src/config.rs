//! Config: one JSON tree per namespace, addressed by dot paths, stored as leaves.
//!
//! ```text
//! set app.db {"host":"x","port":5432}  ─flatten─>  app.db.host = "x", app.db.port = 5432
//! set app.db.user "u"                  ─────────>  app.db.user = "u"        (merged)
//! get app.db                           ─assemble─> {"host":"x","port":5432,"user":"u"}
//! ```
//!
//! A leaf is any JSON value but an object (arrays and `null` included); setting a leaf
//! replaces what was under its path, setting an object merges its leaves in. Secret
//! leaves hold ciphertext (encrypted before they are proposed) and read back as
//! `"[secret]"` unless the caller asks for secrets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Code, HasCode};

/// What a secret leaf reads as unless secrets are asked for.
pub const SECRET_MASK: &str = "[secret]";
/// The longest path accepted (bytes).
pub const PATH_LEN_MAX: usize = 1024;
/// The largest JSON value one set may carry (bytes).
pub const VALUE_LEN_MAX: usize = 1024 * 1024;
/// The most leaves one set may write.
pub const LEAVES_MAX: usize = 10_000;

/// One stored leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    /// The JSON text of the value, or for a secret the ciphertext.
    pub value: String,
    /// Whether `value` is encrypted.
    pub secret: bool,
}

/// A config request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Malformed path or value.
    #[error("{0}")]
    Invalid(String),
    /// Nothing at the path.
    #[error("{0}")]
    NotFound(String),
    /// The cluster could not do it now.
    #[error("{0}")]
    Unavailable(String),
}

impl HasCode for ConfigError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid(_) => Code::BadRequest,
            Self::NotFound(_) => Code::NotFound,
            Self::Unavailable(_) => Code::Unavailable,
        }
    }
}

/// Checks a path: empty (the root) or dot-separated non-empty segments without control
/// characters.
///
/// ```
/// use micro_core::config::validate_path;
/// assert!(validate_path("app.db.host").is_ok());
/// assert!(validate_path("").is_ok());
/// assert!(validate_path("app..db").is_err());
/// ```
pub fn validate_path(path: &str) -> Result<(), ConfigError> {
    let bad = path.len() > PATH_LEN_MAX
        || path.chars().any(char::is_control)
        || (!path.is_empty() && path.split('.').any(str::is_empty));
    if bad {
        return Err(ConfigError::Invalid(format!(
            "config path {path:?} must be dot-separated names (at most {PATH_LEN_MAX} bytes)"
        )));
    }
    Ok(())
}

/// Joins a path and a key (`""` + `a` is `a`).
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The leaves `value` set at `path` writes: an object is flattened (an empty one writes
/// nothing), anything else is one leaf. Keys holding dots or nothing are refused, since
/// the path could not name them.
pub fn flatten(
    path: &str,
    value: &serde_json::Value,
) -> Result<Vec<(String, String)>, ConfigError> {
    validate_path(path)?;
    let mut out = Vec::new();
    let mut stack = vec![(path.to_owned(), value)];
    while let Some((at, value)) = stack.pop() {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    if key.is_empty() || key.contains('.') {
                        return Err(ConfigError::Invalid(format!(
                            "config key {key:?} under {at:?} must be a non-empty name without dots"
                        )));
                    }
                    stack.push((join(&at, key), child));
                }
            }
            leaf => {
                if at.is_empty() {
                    return Err(ConfigError::Invalid(
                        "the config root must be an object".to_owned(),
                    ));
                }
                out.push((at, leaf.to_string()));
            }
        }
        if out.len() > LEAVES_MAX {
            return Err(ConfigError::Invalid(format!(
                "one set may write at most {LEAVES_MAX} values"
            )));
        }
    }
    validate_leaves(&out)?;
    out.sort();
    Ok(out)
}

fn validate_leaves(leaves: &[(String, String)]) -> Result<(), ConfigError> {
    for (path, _) in leaves {
        validate_path(path)?;
    }
    Ok(())
}

/// Builds the value at `path` from the leaves at and under it (paths relative to the
/// root); `reveal` turns a secret leaf into its JSON text (or the mask). `None` when
/// there is nothing.
pub fn assemble(
    path: &str,
    leaves: &[(String, Leaf)],
    reveal: &dyn Fn(&Leaf) -> String,
) -> Option<serde_json::Value> {
    let text = |leaf: &Leaf| {
        let json = if leaf.secret {
            reveal(leaf)
        } else {
            leaf.value.clone()
        };
        serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json))
    };
    if let Some((_, leaf)) = leaves.iter().find(|(p, _)| p == path) {
        return Some(text(leaf));
    }
    let mut root = serde_json::Map::new();
    let mut found = false;
    for (full, leaf) in leaves {
        let relative = if path.is_empty() {
            full.as_str()
        } else {
            match full.strip_prefix(path).and_then(|r| r.strip_prefix('.')) {
                Some(rest) => rest,
                None => continue,
            }
        };
        found = true;
        insert(&mut root, relative, text(leaf));
    }
    found.then_some(serde_json::Value::Object(root))
}

fn insert(
    root: &mut serde_json::Map<String, serde_json::Value>,
    path: &str,
    value: serde_json::Value,
) {
    match path.split_once('.') {
        None => {
            root.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let child = root
                .entry(head.to_owned())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !child.is_object() {
                *child = serde_json::Value::Object(serde_json::Map::new());
            }
            if let serde_json::Value::Object(map) = child {
                insert(map, rest, value);
            }
        }
    }
}

/// The ancestors of a path (`a.b.c` has `a` and `a.b`).
pub fn ancestors(path: &str) -> Vec<&str> {
    path.match_indices('.').map(|(i, _)| &path[..i]).collect()
}

/// Leaves by path, as one namespace's tree holds them.
pub type Tree = BTreeMap<String, Leaf>;

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(pairs: &[(&str, &str)]) -> Vec<(String, Leaf)> {
        pairs
            .iter()
            .map(|(p, v)| {
                let leaf = Leaf {
                    value: (*v).to_owned(),
                    secret: false,
                };
                ((*p).to_owned(), leaf)
            })
            .collect()
    }

    #[test]
    fn objects_flatten_into_leaves_and_assemble_back() {
        let value =
            serde_json::json!({"host": "x", "port": 5432, "tags": ["a"], "tls": {"on": true}});
        let flat = flatten("app.db", &value).unwrap();
        let paths: Vec<&str> = flat.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["app.db.host", "app.db.port", "app.db.tags", "app.db.tls.on"]
        );
        let stored: Vec<(String, Leaf)> = flat
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
        let reveal = |_: &Leaf| SECRET_MASK.to_owned();
        assert_eq!(assemble("app.db", &stored, &reveal), Some(value));
        assert_eq!(
            assemble("app.db.port", &stored, &reveal),
            Some(serde_json::json!(5432))
        );
        assert_eq!(assemble("app.nothing", &stored, &reveal), None);
        assert_eq!(
            assemble("", &leaves(&[("a.b", "1")]), &reveal),
            Some(serde_json::json!({"a": {"b": 1}}))
        );
        // `app.d` is not under `app.db`.
        assert_eq!(assemble("app.d", &stored, &reveal), None);
    }

    #[test]
    fn bad_paths_and_keys_are_refused() {
        assert!(flatten("a..b", &serde_json::json!(1)).is_err());
        assert!(flatten("", &serde_json::json!(1)).is_err());
        assert!(flatten("a", &serde_json::json!({"x.y": 1})).is_err());
        assert!(flatten("a", &serde_json::json!({"": 1})).is_err());
        assert_eq!(ancestors("a.b.c"), ["a", "a.b"]);
        assert!(ancestors("a").is_empty());
    }

    #[test]
    fn secrets_are_masked_by_the_reveal_function() {
        let stored = vec![(
            "db.password".to_owned(),
            Leaf {
                value: "ciphertext".to_owned(),
                secret: true,
            },
        )];
        let mask = |_: &Leaf| format!("\"{SECRET_MASK}\"");
        assert_eq!(
            assemble("db", &stored, &mask),
            Some(serde_json::json!({"password": "[secret]"}))
        );
    }
}
