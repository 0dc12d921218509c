//! Conformance suites: every implementation of a port calls the suite of its trait from
//! its own tests, so all implementations behave the same.

mod kv_suite;

pub use kv_suite::{kv_backend_crash_suite, kv_backend_suite};
