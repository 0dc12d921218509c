//! The logs a node keeps of the services it runs: their processes' output, the
//! runtime's own notes (started, exited, restarting) and build output, per service,
//! in a bounded ring with live followers.
//!
//! ```text
//! process stdout/stderr line ─> LogBook::push(key, record) ─> ring (LOG_LINES_MAX)
//!                                                       └──> broadcast ─> `micro logs -f`
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use micro_core::Namespace;
use tokio::sync::broadcast;

/// How many records a node keeps per service.
pub const LOG_LINES_MAX: usize = 5000;
/// The longest line kept whole; longer lines are cut (a service printing megabytes on
/// one line must not blow up the ring).
pub const LOG_LINE_LEN_MAX: usize = 16 * 1024;

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Unix seconds.
    pub timestamp: i64,
    /// `stream` (stdout, stderr, runtime, build), `instance`, `node`.
    pub metadata: BTreeMap<String, String>,
    /// The line.
    pub message: String,
}

impl LogRecord {
    /// A record of `message` from `stream` at `timestamp`.
    pub fn new(timestamp: i64, stream: &str, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if cut(&mut message, LOG_LINE_LEN_MAX) {
            message.push_str(" [cut]");
        }
        Self {
            timestamp,
            metadata: BTreeMap::from([("stream".to_owned(), stream.to_owned())]),
            message,
        }
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }
}

/// Shortens `text` to at most `max` bytes at a character boundary; whether it did.
pub(crate) fn cut(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut at = max;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
    true
}

/// Which service a log belongs to.
pub type LogKey = (Namespace, String, String);

#[derive(Debug)]
struct Log {
    lines: VecDeque<LogRecord>,
    live: broadcast::Sender<LogRecord>,
}

impl Log {
    fn new() -> Self {
        Self {
            lines: VecDeque::new(),
            live: broadcast::channel(1024).0,
        }
    }
}

/// Every service's log on this node.
#[derive(Debug, Clone, Default)]
pub struct LogBook {
    logs: Arc<Mutex<BTreeMap<LogKey, Log>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LogBook {
    /// Appends `record` to the log of `key` and hands it to live followers.
    pub fn push(&self, key: &LogKey, record: LogRecord) {
        let mut logs = lock(&self.logs);
        let log = logs.entry(key.clone()).or_insert_with(Log::new);
        if log.lines.len() >= LOG_LINES_MAX {
            log.lines.pop_front();
        }
        // No follower is not an error.
        let _ = log.live.send(record.clone());
        log.lines.push_back(record);
    }

    /// The records of `key` at or after `since` (Unix seconds), the last `count` of them
    /// (all when `count` is 0), and a receiver of what comes next.
    pub fn read(
        &self,
        key: &LogKey,
        since: i64,
        count: usize,
    ) -> (Vec<LogRecord>, broadcast::Receiver<LogRecord>) {
        let mut logs = lock(&self.logs);
        let log = logs.entry(key.clone()).or_insert_with(Log::new);
        let mut lines: Vec<LogRecord> = log
            .lines
            .iter()
            .filter(|r| r.timestamp >= since)
            .cloned()
            .collect();
        if count > 0 && lines.len() > count {
            lines.drain(..lines.len() - count);
        }
        (lines, log.live.subscribe())
    }

    /// Forgets the log of `key` (the service was killed).
    pub fn forget(&self, key: &LogKey) {
        lock(&self.logs).remove(key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key() -> LogKey {
        (Namespace::default(), "greeter".into(), "latest".into())
    }

    #[tokio::test]
    async fn the_ring_keeps_the_newest_and_followers_see_what_comes_next() {
        let book = LogBook::default();
        for i in 0..LOG_LINES_MAX + 10 {
            book.push(
                &key(),
                LogRecord::new(i as i64, "stdout", format!("line {i}")),
            );
        }
        let (all, mut live) = book.read(&key(), 0, 0);
        assert_eq!(all.len(), LOG_LINES_MAX);
        assert_eq!(all[0].message, "line 10");
        let (last, _) = book.read(&key(), 0, 2);
        assert_eq!(last.len(), 2);
        assert_eq!(last[1].message, format!("line {}", LOG_LINES_MAX + 9));
        let (since, _) = book.read(&key(), (LOG_LINES_MAX + 8) as i64, 0);
        assert_eq!(since.len(), 2);
        book.push(
            &key(),
            LogRecord::new(0, "stderr", "x".repeat(LOG_LINE_LEN_MAX * 2)),
        );
        let next = live.recv().await.unwrap();
        assert!(next.message.ends_with("[cut]"));
        assert_eq!(next.metadata["stream"], "stderr");
    }
}
