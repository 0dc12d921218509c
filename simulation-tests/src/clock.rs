//! [`SimClock`]: a node's wall clock in the simulation, with a skew the faults change.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use micro_core::Clock;

/// Simulated time since the Unix epoch plus this node's skew (which may be negative).
#[derive(Debug, Clone, Default)]
pub struct SimClock {
    skew_ms: Arc<AtomicI64>,
}

impl SimClock {
    /// A clock without skew.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the skew: the clock then reads `skew_ms` ahead of (or behind) true time.
    pub fn set_skew(&self, skew_ms: i64) {
        self.skew_ms.store(skew_ms, Ordering::Relaxed);
    }

    /// The current skew.
    pub fn skew(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        // Outside a host (never on a node's paths) there is no simulated time: 0.
        let true_ms = turmoil::since_epoch().map_or(0, |d| d.as_millis());
        let true_ms = i64::try_from(true_ms).unwrap_or(i64::MAX);
        u64::try_from(true_ms.saturating_add(self.skew())).unwrap_or(0)
    }
}

/// Simulated milliseconds since the simulation began (0 outside a host).
pub fn sim_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
