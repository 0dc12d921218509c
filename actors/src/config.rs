//! Config for a node: sets and deletes through Raft, linearizable gets, secrets sealed
//! with AES-256-GCM before they are proposed.
//!
//! ```text
//! set(ns, path, JSON) ─parse─ flatten ─(secret: seal each leaf)─> ConfigSet ─Raft─> leaves
//! get(ns, path)       ─read barrier─ leaves ─ assemble (secrets masked or opened)─> JSON
//! ```
//!
//! The sealing key is derived from the cluster's signing key (SHA-256 of a label and the
//! private key), so it exists wherever auth is bootstrapped, is the same on every node,
//! and is never stored or sent on its own.

use std::sync::{Arc, OnceLock};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use micro_core::config::{
    ConfigError, Leaf, SECRET_MASK, VALUE_LEN_MAX, assemble, flatten, validate_path,
};
use micro_core::replicator::Replicator;
use micro_core::state::{Command, Response};
use micro_core::{HasCode, Namespace};
use sha2::Digest;

/// A domain label, so the sealing key is not the signing key's hash used elsewhere.
const KEY_LABEL: &[u8] = b"micro config sealing key v1";

/// The config engine of a node; cheap to clone.
#[derive(Clone)]
pub struct ConfigHandle {
    replicator: Arc<dyn Replicator>,
    cipher: Arc<OnceLock<Aes256Gcm>>,
}

impl std::fmt::Debug for ConfigHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigHandle").finish_non_exhaustive()
    }
}

fn unavailable(err: &dyn std::fmt::Display) -> ConfigError {
    ConfigError::Unavailable(err.to_string())
}

impl ConfigHandle {
    /// Config over `replicator`'s state.
    pub fn new(replicator: Arc<dyn Replicator>) -> Self {
        Self {
            replicator,
            cipher: Arc::default(),
        }
    }

    fn cipher(&self) -> Result<&Aes256Gcm, ConfigError> {
        if let Some(cipher) = self.cipher.get() {
            return Ok(cipher);
        }
        let keys = self
            .replicator
            .reader()
            .auth_keys()
            .map_err(|e| unavailable(&e.0))?;
        let keys = keys.ok_or_else(|| {
            ConfigError::Unavailable("secrets need auth to be bootstrapped; retry".to_owned())
        })?;
        let mut hasher = sha2::Sha256::new();
        hasher.update(KEY_LABEL);
        hasher.update(&keys.private_der);
        let key = hasher.finalize();
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
        Ok(self.cipher.get_or_init(|| cipher))
    }

    fn seal(&self, json: &str) -> Result<String, ConfigError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| unavailable(&e))?;
        let sealed = self
            .cipher()?
            .encrypt(Nonce::from_slice(&nonce), json.as_bytes())
            .map_err(|e| unavailable(&e))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    fn open(&self, sealed: &str) -> Result<String, ConfigError> {
        let bytes = STANDARD.decode(sealed).map_err(|e| unavailable(&e))?;
        let (nonce, body) = bytes
            .split_at_checked(12)
            .ok_or_else(|| ConfigError::Unavailable("a sealed value is too short".to_owned()))?;
        let plain = self
            .cipher()?
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| ConfigError::Unavailable("a secret does not open".to_owned()))?;
        String::from_utf8(plain).map_err(|e| unavailable(&e))
    }

    /// Sets the JSON `value` at `path` of `namespace`: an object merges into what is
    /// there, anything else replaces it; `secret` seals every leaf.
    pub async fn set(
        &self,
        namespace: &Namespace,
        path: &str,
        value: &str,
        secret: bool,
    ) -> Result<(), ConfigError> {
        if value.len() > VALUE_LEN_MAX {
            return Err(ConfigError::Invalid(format!(
                "a config value is at most {VALUE_LEN_MAX} bytes"
            )));
        }
        let json: serde_json::Value = serde_json::from_str(value).map_err(|e| {
            ConfigError::Invalid(format!("the config value is not valid JSON: {e}"))
        })?;
        let mut leaves = Vec::new();
        for (leaf_path, text) in flatten(path, &json)? {
            let leaf = if secret {
                Leaf {
                    value: self.seal(&text)?,
                    secret: true,
                }
            } else {
                Leaf {
                    value: text,
                    secret: false,
                }
            };
            leaves.push((leaf_path, leaf));
        }
        let command = Command::ConfigSet {
            namespace: namespace.clone(),
            leaves,
        };
        self.replicator
            .propose(command)
            .await
            .map_err(|e| replica(&e))?;
        Ok(())
    }

    /// The value at `path` of `namespace` (the whole tree for `""`); secret leaves read
    /// as `"[secret]"` unless `secrets`.
    pub async fn get(
        &self,
        namespace: &Namespace,
        path: &str,
        secrets: bool,
    ) -> Result<serde_json::Value, ConfigError> {
        validate_path(path)?;
        self.replicator
            .read_barrier()
            .await
            .map_err(|e| replica(&e))?;
        let leaves = self
            .replicator
            .reader()
            .config_leaves(namespace, path)
            .map_err(|e| unavailable(&e.0))?;
        // Open every secret first: one that does not open is an error, never the mask
        // passed off as the value.
        let mut opened = std::collections::HashMap::new();
        if secrets {
            for (leaf_path, leaf) in leaves.iter().filter(|(_, l)| l.secret) {
                opened.insert(leaf_path.clone(), self.open(&leaf.value)?);
            }
        }
        let masked = serde_json::Value::String(SECRET_MASK.to_owned()).to_string();
        let by_value: std::collections::HashMap<&str, &str> = leaves
            .iter()
            .filter_map(|(p, l)| opened.get(p).map(|o| (l.value.as_str(), o.as_str())))
            .collect();
        let reveal = |leaf: &Leaf| {
            by_value
                .get(leaf.value.as_str())
                .map_or_else(|| masked.clone(), |o| (*o).to_owned())
        };
        assemble(path, &leaves, &reveal).ok_or_else(|| {
            ConfigError::NotFound(format!("no config at {path:?} in namespace {namespace}"))
        })
    }

    /// Deletes the value at `path` of `namespace`.
    pub async fn delete(&self, namespace: &Namespace, path: &str) -> Result<(), ConfigError> {
        validate_path(path)?;
        let command = Command::ConfigDelete {
            namespace: namespace.clone(),
            path: path.to_owned(),
        };
        match self
            .replicator
            .propose(command)
            .await
            .map_err(|e| replica(&e))?
        {
            Response::Deleted { existed: false } => Err(ConfigError::NotFound(format!(
                "no config at {path:?} in namespace {namespace}"
            ))),
            _ => Ok(()),
        }
    }
}

fn replica(err: &micro_core::replicator::ReplicaError) -> ConfigError {
    match err.code() {
        micro_core::Code::BadRequest => ConfigError::Invalid(err.to_string()),
        _ => ConfigError::Unavailable(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use micro_core::replicator::MemReplicator;

    #[tokio::test]
    async fn values_merge_and_secrets_are_sealed_masked_and_opened() {
        let clock = Arc::new(micro_core::ManualClock::new(1_000));
        let replicator: Arc<dyn Replicator> = Arc::new(MemReplicator::new(clock.clone()));
        let auth = crate::AuthHandle::new(replicator.clone(), clock);
        let config = ConfigHandle::new(replicator.clone());
        let ns = Namespace::default();
        // Secrets need the cluster key, which comes with auth's bootstrap.
        let early = config.set(&ns, "db.password", r#""hunter2""#, true).await;
        assert!(matches!(early, Err(ConfigError::Unavailable(_))));
        auth.bootstrap("micro").await.unwrap();

        config
            .set(&ns, "app.db", r#"{"host":"x","port":5432}"#, false)
            .await
            .unwrap();
        config
            .set(&ns, "app.db.user", r#""u""#, false)
            .await
            .unwrap();
        config
            .set(&ns, "app.db.password", r#""hunter2""#, true)
            .await
            .unwrap();
        let masked = config.get(&ns, "app.db", false).await.unwrap();
        assert_eq!(
            masked,
            serde_json::json!({"host":"x","port":5432,"user":"u","password":"[secret]"})
        );
        let opened = config.get(&ns, "app.db.password", true).await.unwrap();
        assert_eq!(opened, serde_json::json!("hunter2"));
        let stored = replicator
            .reader()
            .config_leaves(&ns, "app.db.password")
            .unwrap();
        assert!(stored[0].1.secret && !stored[0].1.value.contains("hunter2"));

        let bad = config.set(&ns, "app", "{not json", false).await;
        assert!(matches!(bad, Err(ConfigError::Invalid(_))));
        config.delete(&ns, "app.db").await.unwrap();
        assert!(matches!(
            config.get(&ns, "app.db", false).await,
            Err(ConfigError::NotFound(_))
        ));
        assert!(matches!(
            config.delete(&ns, "app.db").await,
            Err(ConfigError::NotFound(_))
        ));
    }
}
