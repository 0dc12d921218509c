//! Read and list queries.

use serde::{Deserialize, Serialize};

use crate::store::StoreError;
use crate::store::record::validate_key;

/// Key order of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Order {
    /// Ascending (the default).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

impl Order {
    /// Parses the wire form: `""` or `"asc"` is ascending, `"desc"` descending.
    ///
    /// ```
    /// use micro_core::store::Order;
    /// assert_eq!(Order::parse("").unwrap(), Order::Asc);
    /// assert_eq!(Order::parse("DESC").unwrap(), Order::Desc);
    /// assert!(Order::parse("up").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text.to_ascii_lowercase().as_str() {
            "" | "asc" => Ok(Self::Asc),
            "desc" => Ok(Self::Desc),
            other => Err(StoreError::Invalid(format!(
                "order must be asc or desc, not {other:?}"
            ))),
        }
    }
}

/// A read: one key exactly, or every key that starts and/or ends with `key`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadQuery {
    /// The key, or the prefix/suffix to match.
    pub key: String,
    /// Match keys starting with `key`.
    pub prefix: bool,
    /// Match keys ending with `key`.
    pub suffix: bool,
    /// At most this many records (0 = no limit).
    pub limit: u64,
    /// Skip this many matching records first.
    pub offset: u64,
    /// Key order.
    pub order: Order,
}

impl ReadQuery {
    /// Whether this read matches many keys rather than one.
    pub fn is_scan(&self) -> bool {
        self.prefix || self.suffix
    }

    /// Checks the query: an exact read needs a valid key.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.is_scan() {
            Ok(())
        } else {
            validate_key(&self.key)
        }
    }
}

/// A listing of keys.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Only keys ending with this.
    pub suffix: String,
    /// At most this many keys (0 = no limit).
    pub limit: u64,
    /// Skip this many matching keys first.
    pub offset: u64,
    /// Key order.
    pub order: Order,
}
