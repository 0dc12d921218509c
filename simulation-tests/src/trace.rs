//! [`Trace`]: a running hash of everything observable in a run, to prove that a seed
//! replays identically (and, with `SIM_TRACE=1`, the events themselves).

use std::fmt::Display;
use std::sync::{Arc, Mutex};

/// FNV-1a: stable across processes and platforms, unlike std's randomly keyed hashers.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

#[derive(Debug)]
struct Inner {
    hash: u64,
    events: u64,
    lines: Option<Vec<String>>,
}

/// A shared trace; clones add to the same one.
#[derive(Debug, Clone)]
pub struct Trace {
    inner: Arc<Mutex<Inner>>,
}

impl Trace {
    /// An empty trace that keeps its lines when `keep` is set.
    pub fn new(keep: bool) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                hash: FNV_OFFSET,
                events: 0,
                lines: keep.then(Vec::new),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an event at simulated time `at_ms`.
    pub fn event(&self, at_ms: u64, what: impl Display) {
        let line = format!("{at_ms:>6} {what}");
        let mut inner = self.lock();
        for byte in line.bytes().chain(std::iter::once(b'\n')) {
            inner.hash = (inner.hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
        inner.events += 1;
        if let Some(lines) = &mut inner.lines {
            lines.push(line);
        }
    }

    /// The hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.lock().hash
    }

    /// How many events were added.
    pub fn events(&self) -> u64 {
        self.lock().events
    }

    /// The events, if kept.
    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.clone().unwrap_or_default()
    }
}
