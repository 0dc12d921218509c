//! Property: **no acknowledged write is lost** (a cheap oracle that scales to long runs).
//!
//! After healing, each client reads every key. Whatever a final read returns must be
//! explainable by an operation that could come after every acknowledged write and delete
//! of that key: the value of a write not known to have finished before an acknowledged
//! operation began, or — for "absent" — a delete or TTL write that could be that late.

use super::Violation;
use crate::history::{Op, OpKind, ReadValue};

/// Checks every final read against the acknowledged writes and deletes of its key.
pub fn check(ops: &[Op]) -> Vec<Violation> {
    let mut found = Vec::new();
    for last in ops.iter().filter(|op| op.final_read) {
        let Some(seen) = last.read() else { continue };
        let on_key: Vec<&Op> = ops
            .iter()
            .filter(|op| op.key == last.key && !matches!(op.kind, OpKind::Read))
            .collect();
        // Only what was acknowledged before the read began must be visible to it; an
        // operation still running may take effect after the read.
        let acked = on_key
            .iter()
            .filter(|op| op.is_ok() && op.complete_ms < last.invoke_ms);
        match seen {
            ReadValue::Found { value, .. } => {
                let Some(writer) = on_key.iter().find(|op| op.written() == Some(value)) else {
                    found.push(violation(last, &format!("phantom value {value:?}")));
                    continue;
                };
                let overwritten = acked
                    .filter(|w| w.written() != Some(value))
                    .find(|w| w.invoke_ms > writer.effective_deadline());
                if let Some(lost) = overwritten {
                    found.push(violation(
                        last,
                        &format!("read {value:?}, written before acknowledged {lost:?}"),
                    ));
                }
            }
            ReadValue::Absent => {
                let lost = acked
                    .filter(|w| matches!(w.kind, OpKind::Write { ttl_secs: 0, .. }))
                    .find(|w| !on_key.iter().any(|x| can_clear_after(x, w)));
                if let Some(lost) = lost {
                    found.push(violation(
                        last,
                        &format!("key absent, but nothing could remove acknowledged {lost:?}"),
                    ));
                }
            }
        }
    }
    found
}

/// Whether `x` (a delete, or a TTL write that may have expired) may take effect after `w`.
fn can_clear_after(x: &Op, w: &Op) -> bool {
    let clears = match &x.kind {
        OpKind::Delete => true,
        OpKind::Write { ttl_secs, .. } => *ttl_secs > 0,
        OpKind::Read => false,
    };
    clears && x.effective_deadline() > w.invoke_ms
}

fn violation(last: &Op, detail: &str) -> Violation {
    Violation {
        checker: "acked_durable",
        detail: format!(
            "final read of {} at {} ms: {detail}",
            last.key, last.invoke_ms
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;
    use crate::history::fixtures::{op, read};

    fn write(value: &str, at: (u64, u64)) -> Op {
        crate::history::fixtures::write(value, 0, at)
    }

    fn final_read(value: Option<&str>) -> Op {
        Op {
            final_read: true,
            ..read(value, 0, (100, 101))
        }
    }

    #[test]
    fn the_last_acknowledged_write_survives() {
        let ops = vec![
            write("a", (1, 2)),
            write("b", (3, 4)),
            final_read(Some("b")),
        ];
        assert!(check(&ops).is_empty());
    }

    #[test]
    fn an_overwritten_acknowledged_write_is_caught() {
        let ops = vec![
            write("a", (1, 2)),
            write("b", (3, 4)),
            final_read(Some("a")),
        ];
        assert_eq!(check(&ops).len(), 1);
    }

    #[test]
    fn concurrent_writes_may_land_in_either_order() {
        let ops = vec![
            write("a", (1, 5)),
            write("b", (3, 4)),
            final_read(Some("a")),
        ];
        assert!(check(&ops).is_empty());
    }

    #[test]
    fn a_vanished_write_is_caught_unless_something_could_remove_it() {
        let mut ops = vec![write("a", (1, 2)), final_read(None)];
        assert_eq!(check(&ops).len(), 1);
        ops.insert(1, op(OpKind::Delete, (3, 9), Outcome::Unknown));
        assert!(check(&ops).is_empty());
    }

    #[test]
    fn an_operation_still_running_when_the_read_began_may_come_after_it() {
        let late_delete = op(OpKind::Delete, (50, 150), Outcome::Ok(None));
        let ops = vec![write("a", (1, 2)), late_delete, final_read(Some("a"))];
        assert!(check(&ops).is_empty());
    }

    #[test]
    fn a_value_nobody_wrote_is_a_phantom() {
        let ops = vec![write("a", (1, 2)), final_read(Some("zz"))];
        assert_eq!(check(&ops).len(), 1);
    }
}
