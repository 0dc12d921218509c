//! The `KvBackend` port: ordered key-value spaces with batched writes and an explicit
//! durability point.
//!
//! ```text
//!  write(batch)   visible to readers at once, not yet durable
//!  sync()         everything written before is durable (one fsync for many batches)
//! ```
//!
//! Writes become durable in order (a prefix of the batches survives a crash), which is
//! what RocksDB's write-ahead log gives and what [`MemKvBackend`] simulates. Group commit
//! is built on this: many batches are written, then one `sync` makes them all durable.

mod backend;
mod batch;
pub mod format;
mod mem;

pub use backend::{KeyRange, KvBackend, KvError, ScanOrder, Space};
pub use batch::{Op, WriteBatch};
pub use mem::MemKvBackend;
