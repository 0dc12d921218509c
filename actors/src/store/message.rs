//! [`StoreMsg`]: the requests the store actor serves.

use micro_core::Namespace;
use micro_core::replicator::Consistency;
use micro_core::store::{ListQuery, ReadQuery, Record, StoreError, TablePath};
use ractor::RpcReplyPort;

/// A table as a request names it: database and table may be empty (defaults apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// The caller's namespace.
    pub namespace: Namespace,
    /// The database, or empty for the namespace.
    pub database: String,
    /// The table, or empty for `micro`.
    pub table: String,
}

impl TableRef {
    /// A table reference.
    pub fn new(
        namespace: Namespace,
        database: impl Into<String>,
        table: impl Into<String>,
    ) -> Self {
        Self {
            namespace,
            database: database.into(),
            table: table.into(),
        }
    }
}

/// The reply port of a store request.
pub type Reply<T> = RpcReplyPort<Result<T, StoreError>>;

/// One store request.
#[derive(Debug)]
pub enum StoreMsg {
    /// Read one record or a prefix/suffix match.
    Read {
        /// Where.
        table: TableRef,
        /// What.
        query: ReadQuery,
        /// How fresh.
        consistency: Consistency,
        /// The answer.
        reply: Reply<Vec<Record>>,
    },
    /// Write a record.
    Write {
        /// Where.
        table: TableRef,
        /// The record.
        record: Record,
        /// Done once durable on a majority.
        reply: Reply<()>,
    },
    /// Delete a record.
    Delete {
        /// Where.
        table: TableRef,
        /// The key.
        key: String,
        /// Done once durable on a majority.
        reply: Reply<()>,
    },
    /// List keys.
    List {
        /// Where.
        table: TableRef,
        /// Which keys.
        query: ListQuery,
        /// How fresh.
        consistency: Consistency,
        /// The keys.
        reply: Reply<Vec<String>>,
    },
    /// The databases of a namespace.
    Databases {
        /// The namespace.
        namespace: Namespace,
        /// The names.
        reply: Reply<Vec<String>>,
    },
    /// The tables of a database.
    Tables {
        /// Where: the table part is ignored.
        table: TableRef,
        /// The names.
        reply: Reply<Vec<String>>,
    },
    /// Every live record of a namespace (or one database), as of one moment.
    Snapshot {
        /// The namespace.
        namespace: Namespace,
        /// Only this database (`None`: every database).
        database: Option<String>,
        /// The records with their tables, in key order.
        reply: Reply<Vec<(TablePath, Record)>>,
    },
}
