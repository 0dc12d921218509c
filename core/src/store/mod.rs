//! The store service's domain: records, the table they live in, queries, limits and
//! errors. Validation happens here, before a command is proposed, so the replicated
//! `apply` never sees invalid input.

mod error;
mod query;
mod record;

pub use error::StoreError;
pub use query::{ListQuery, Order, ReadQuery};
pub use record::{Field, Record, TablePath};

/// The longest key accepted, in bytes.
pub const KEY_LEN_MAX: usize = 4096;
/// The largest value accepted, in bytes (1 MiB).
pub const VALUE_LEN_MAX: usize = 1024 * 1024;
/// The longest database or table name accepted, in bytes.
pub const NAME_LEN_MAX: usize = 255;
/// The most metadata fields a record may carry.
pub const METADATA_FIELDS_MAX: usize = 64;
/// The largest total size of a record's metadata (names and values), in bytes.
pub const METADATA_LEN_MAX: usize = 64 * 1024;
/// The longest expiry accepted (ten years, in seconds).
pub const EXPIRY_SECS_MAX: u64 = 10 * 365 * 24 * 3600;
/// The table (and database) used when a request leaves it empty, as in Micro v3.
pub const DEFAULT_TABLE: &str = "micro";
