//! The node supervisor: starts every service actor and restarts a failed one.

mod actor;

pub use actor::{
    NodeHandles, NodeSupervisor, REQUEST_TIMEOUT, RESTART_WINDOW, RESTARTS_MAX, SupervisorArgs,
    SupervisorMsg, SupervisorState,
};
