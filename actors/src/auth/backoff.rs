//! [`LoginBackoff`]: failed logins per account, and how long the next attempt must wait.
//!
//! ```text
//! failure 1..=5  no wait         (typos happen)
//! failure 6      wait 1 s, 7: 2 s, 8: 4 s, ... at most 5 minutes
//! a success      forgets the account's failures
//! ```
//!
//! Counted per (namespace, the id or name the caller gave) on this node, whether or not
//! the account exists, so the answers do not tell which accounts exist. A locked login
//! is refused before its secret is hashed, so guessing also stops costing the node CPU.
//! The counts are local to a node and are lost when it restarts: they slow an online
//! guesser by orders of magnitude, which is their purpose, without a Raft write per
//! failed login (which would let anonymous callers fill the log).

use std::collections::HashMap;
use std::sync::Mutex;

/// Failed logins allowed before the first wait.
pub const FAILURES_FREE: u32 = 5;
/// The longest wait after repeated failures (milliseconds).
pub const WAIT_MAX_MS: u64 = 5 * 60 * 1000;
/// Accounts tracked at once; beyond, accounts not waiting are forgotten first.
const TRACKED_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, Default)]
struct Failures {
    count: u32,
    /// Until when (clock ms) logins of the account are refused.
    until_ms: u64,
}

/// Failed logins per account.
#[derive(Debug, Default)]
pub struct LoginBackoff {
    failures: Mutex<HashMap<(String, String), Failures>>,
}

impl LoginBackoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Failures>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long (ms) a login of `id` in `namespace` must still wait at `now_ms`; 0: go.
    pub fn wait_ms(&self, namespace: &str, id: &str, now_ms: u64) -> u64 {
        self.lock()
            .get(&(namespace.to_owned(), id.to_owned()))
            .map_or(0, |f| f.until_ms.saturating_sub(now_ms))
    }

    /// Records a failed login at `now_ms`.
    pub fn failed(&self, namespace: &str, id: &str, now_ms: u64) {
        let mut failures = self.lock();
        if failures.len() >= TRACKED_MAX {
            failures.retain(|_, f| f.until_ms > now_ms);
            if failures.len() >= TRACKED_MAX {
                failures.clear();
            }
        }
        let entry = failures
            .entry((namespace.to_owned(), id.to_owned()))
            .or_default();
        entry.count = entry.count.saturating_add(1);
        if let Some(over) = entry.count.checked_sub(FAILURES_FREE + 1) {
            let wait = 1000_u64
                .checked_shl(over.min(20))
                .unwrap_or(WAIT_MAX_MS)
                .min(WAIT_MAX_MS);
            entry.until_ms = now_ms.saturating_add(wait);
        }
    }

    /// Forgets the failures of `id` after a successful login.
    pub fn succeeded(&self, namespace: &str, id: &str) {
        self.lock().remove(&(namespace.to_owned(), id.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_the_wait_doubles_up_to_five_minutes() {
        let backoff = LoginBackoff::default();
        for _ in 0..FAILURES_FREE {
            backoff.failed("micro", "admin", 0);
            assert_eq!(backoff.wait_ms("micro", "admin", 0), 0);
        }
        let mut waits = Vec::new();
        for _ in 0..12 {
            backoff.failed("micro", "admin", 0);
            waits.push(backoff.wait_ms("micro", "admin", 0));
        }
        assert_eq!(&waits[..4], &[1000, 2000, 4000, 8000]);
        assert_eq!(*waits.last().unwrap_or(&0), WAIT_MAX_MS);
        // Other accounts and namespaces are not affected; time heals; success forgets.
        assert_eq!(backoff.wait_ms("micro", "alice", 0), 0);
        assert_eq!(backoff.wait_ms("other", "admin", 0), 0);
        assert_eq!(backoff.wait_ms("micro", "admin", WAIT_MAX_MS), 0);
        backoff.succeeded("micro", "admin");
        backoff.failed("micro", "admin", 0);
        assert_eq!(backoff.wait_ms("micro", "admin", 0), 0);
    }

    #[test]
    fn a_flood_of_names_stays_bounded() {
        let backoff = LoginBackoff::default();
        for i in 0..(TRACKED_MAX + 10) {
            backoff.failed("micro", &i.to_string(), 0);
        }
        assert!(backoff.lock().len() <= TRACKED_MAX);
    }
}
