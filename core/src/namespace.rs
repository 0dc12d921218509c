//! Namespaces isolate tenants: every request carries one and every durable key lives
//! under one.

use serde::{Deserialize, Serialize};

use crate::error::{Code, HasCode};

/// The longest namespace name accepted.
pub const NAMESPACE_LEN_MAX: usize = 63;

/// A validated namespace name: 1 to 63 ASCII letters, digits, `-`, `_` or `.`, starting
/// with a letter or digit.
///
/// ```
/// use micro_core::Namespace;
/// assert_eq!(Namespace::default().as_str(), "micro");
/// assert!(Namespace::new("team-a").is_ok());
/// assert!(Namespace::new("").is_err());
/// assert!(Namespace::new("a/b").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Namespace(String);

/// The default namespace, as in Micro v3.
pub const DEFAULT_NAMESPACE: &str = "micro";

impl Namespace {
    /// Validates `name` as a namespace.
    pub fn new(name: impl Into<String>) -> Result<Self, NamespaceError> {
        let name = name.into();
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        let starts_well = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if name.len() > NAMESPACE_LEN_MAX || !starts_well || !name.chars().all(valid_char) {
            return Err(NamespaceError(name));
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self(DEFAULT_NAMESPACE.to_owned())
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A namespace name that breaks the syntax rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid namespace {0:?}: use 1 to 63 letters, digits, '-', '_' or '.', starting with a \
     letter or digit"
)]
pub struct NamespaceError(pub String);

impl HasCode for NamespaceError {
    fn code(&self) -> Code {
        Code::BadRequest
    }
}
