//! [`Record`], [`Field`] and [`TablePath`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::namespace::Namespace;
use crate::store::{
    DEFAULT_TABLE, EXPIRY_SECS_MAX, KEY_LEN_MAX, METADATA_FIELDS_MAX, METADATA_LEN_MAX,
    NAME_LEN_MAX, StoreError, VALUE_LEN_MAX,
};

/// A metadata value as Micro v3 serialized it: the Go type name and its `%v` rendering.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Field {
    /// The type name (`"string"`, `"int64"`, `"bool"`, `"float64"`).
    pub kind: String,
    /// The value, rendered as text.
    pub value: String,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Record {
    /// The key, unique in its table.
    pub key: String,
    /// The value: any bytes.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// Seconds to live: on a write, the time to live; on a read, what remains (rounded
    /// up). `None` means the record never expires.
    pub expiry_secs: Option<u64>,
    /// Free-form metadata.
    pub metadata: BTreeMap<String, Field>,
}

impl Record {
    /// Checks the record against the limits before it is written.
    ///
    /// ```
    /// use micro_core::store::Record;
    /// let ok = Record { key: "k".into(), value: b"v".to_vec(), ..Record::default() };
    /// assert!(ok.validate().is_ok());
    /// assert!(Record::default().validate().is_err()); // empty key
    /// ```
    pub fn validate(&self) -> Result<(), StoreError> {
        validate_key(&self.key)?;
        if self.value.len() > VALUE_LEN_MAX {
            return Err(StoreError::TooLarge(format!(
                "value of {} bytes is over the limit of {VALUE_LEN_MAX} bytes",
                self.value.len()
            )));
        }
        if self.expiry_secs.is_some_and(|s| s > EXPIRY_SECS_MAX) {
            return Err(StoreError::Invalid(format!(
                "expiry is over the limit of {EXPIRY_SECS_MAX} seconds"
            )));
        }
        let metadata_len: usize = self
            .metadata
            .iter()
            .map(|(k, f)| k.len() + f.kind.len() + f.value.len())
            .sum();
        if self.metadata.len() > METADATA_FIELDS_MAX || metadata_len > METADATA_LEN_MAX {
            return Err(StoreError::TooLarge(format!(
                "metadata is over the limit of {METADATA_FIELDS_MAX} fields or \
                 {METADATA_LEN_MAX} bytes"
            )));
        }
        Ok(())
    }
}

/// Checks a key: non-empty and at most [`KEY_LEN_MAX`] bytes.
pub(crate) fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::Invalid("key must not be empty".to_owned()));
    }
    if key.len() > KEY_LEN_MAX {
        return Err(StoreError::TooLarge(format!(
            "key of {} bytes is over the limit of {KEY_LEN_MAX} bytes",
            key.len()
        )));
    }
    Ok(())
}

/// Where records live: a table of a database, inside a namespace.
///
/// Every stored key starts with the whole path, so no scan crosses a namespace, whatever
/// database a caller names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TablePath {
    /// The tenant.
    pub namespace: Namespace,
    /// The database; defaults to the namespace.
    pub database: String,
    /// The table; defaults to `micro`.
    pub table: String,
}

impl TablePath {
    /// Resolves the defaults of Micro: an empty database is the namespace, an empty table
    /// is `micro`. Names are checked for length and control characters.
    ///
    /// ```
    /// use micro_core::{Namespace, store::TablePath};
    /// let p = TablePath::resolve(Namespace::new("a").unwrap(), "", "").unwrap();
    /// assert_eq!((p.database.as_str(), p.table.as_str()), ("a", "micro"));
    /// ```
    pub fn resolve(namespace: Namespace, database: &str, table: &str) -> Result<Self, StoreError> {
        let database = if database.is_empty() {
            namespace.as_str()
        } else {
            database
        };
        let table = if table.is_empty() {
            DEFAULT_TABLE
        } else {
            table
        };
        validate_name("database", database)?;
        validate_name("table", table)?;
        Ok(Self {
            database: database.to_owned(),
            table: table.to_owned(),
            namespace,
        })
    }
}

fn validate_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.len() > NAME_LEN_MAX || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "{what} name {name:?} must be at most {NAME_LEN_MAX} bytes without control characters"
        )));
    }
    Ok(())
}
