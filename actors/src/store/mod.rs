//! The store service: key-value records per namespace, database and table.
//!
//! ```text
//! StoreHandle::write ─> StoreMsg::Write ─> StoreActor::on_write
//!     logic::put_command (validate, resolve defaults) ─> spawn: replicator.propose ─> reply
//! StoreHandle::read  ─> StoreMsg::Read  ─> StoreActor::on_read
//!     spawn: replicator.read_barrier ─> reader.store_read ─> reply
//! ```

mod actor;
mod handle;
pub mod logic;
mod message;

pub use actor::{IN_FLIGHT_MAX, StoreActor, StoreArgs, StoreState};
pub use handle::StoreHandle;
pub use message::{Reply, StoreMsg, TableRef};
