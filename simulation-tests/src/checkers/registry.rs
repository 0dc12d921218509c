//! Property: **the registry returns what was registered and nothing that is gone.**
//! Over the registrar's operations on service `sim`:
//! - no phantom: a read returns only nodes some registration was sent for before the
//!   read completed;
//! - deregistered stays gone: a node whose acknowledged deregistration completed before
//!   a read began, with no registration of it that could still apply after that
//!   deregistration began, is not returned;
//! - expired is never returned: a final read (sent after the registrar stopped, with the
//!   cluster healed) never returns a node whose registrations were all acknowledged and
//!   whose last one completed at least [`EXPIRY_WAIT_MS`] before. The bound: the last
//!   registration applied at a log time of at most its completion + 3 s (the largest
//!   clock skew), so it expires by completion + 3 s + TTL 2 s; a healed leader's ticks
//!   keep log time within skew 3 s plus a tick and a margin (2 s) of true time;
//! - every node agrees: the final reads of all nodes return the same nodes.

use std::collections::BTreeSet;

use super::Violation;
use crate::registrar::{EXPIRY_WAIT_MS, RegKind, RegOp};

fn violation(detail: String) -> Violation {
    Violation {
        checker: "registry",
        detail,
    }
}

/// The registrations of `node`.
fn registers<'a>(ops: &'a [RegOp], node: &'a str) -> impl Iterator<Item = &'a RegOp> + 'a {
    ops.iter()
        .filter(move |op| matches!(&op.kind, RegKind::Register(n) if n == node))
}

/// Checks the registrar's operations.
pub fn check(ops: &[RegOp]) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut finals: Vec<(u64, &BTreeSet<String>)> = Vec::new();
    for read in ops.iter().filter(|op| op.ok) {
        let RegKind::Read { nodes, final_on } = &read.kind else {
            continue;
        };
        if let Some(on) = final_on {
            finals.push((*on, nodes));
        }
        for node in nodes {
            if !registers(ops, node).any(|r| r.invoke_ms <= read.complete_ms) {
                found.push(violation(format!(
                    "read at {} ms returned {node}, which was never registered before",
                    read.invoke_ms
                )));
            }
            let gone = ops.iter().any(|d| {
                matches!(&d.kind, RegKind::Deregister(n) if n == node)
                    && d.ok
                    && d.complete_ms < read.invoke_ms
                    && registers(ops, node).all(|r| r.ok && r.complete_ms < d.invoke_ms)
            });
            if gone {
                found.push(violation(format!(
                    "read at {} ms returned {node} after its deregistration was acknowledged",
                    read.invoke_ms
                )));
            }
            let all_acked = registers(ops, node).all(|r| r.ok);
            let last = registers(ops, node)
                .map(|r| r.complete_ms)
                .max()
                .unwrap_or(0);
            if final_on.is_some() && all_acked && read.invoke_ms >= last + EXPIRY_WAIT_MS {
                found.push(violation(format!(
                    "final read at {} ms returned {node}, last registered at {last} ms (expired)",
                    read.invoke_ms
                )));
            }
        }
    }
    if let Some((first_on, first)) = finals.first() {
        for (on, nodes) in &finals[1..] {
            if nodes != first {
                found.push(violation(format!(
                    "final reads disagree: node {first_on} returned {first:?}, node {on} {nodes:?}"
                )));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: RegKind, at: (u64, u64), ok: bool) -> RegOp {
        RegOp {
            kind,
            invoke_ms: at.0,
            complete_ms: at.1,
            ok,
        }
    }

    fn read(nodes: &[&str], at: (u64, u64), final_on: Option<u64>) -> RegOp {
        op(
            RegKind::Read {
                nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
                final_on,
            },
            at,
            true,
        )
    }

    #[test]
    fn accepts_a_correct_history() {
        let ops = vec![
            op(RegKind::Register("a".into()), (10, 20), true),
            read(&["a"], (30, 40), None),
            op(RegKind::Deregister("a".into()), (50, 60), true),
            read(&[], (70, 80), None),
            read(&[], (20_000, 20_010), Some(1)),
            read(&[], (20_020, 20_030), Some(2)),
        ];
        assert!(check(&ops).is_empty());
    }

    #[test]
    fn finds_phantoms_resurrections_expired_nodes_and_disagreement() {
        let ops = vec![
            read(&["ghost"], (5, 6), None),
            op(RegKind::Register("a".into()), (10, 20), true),
            op(RegKind::Deregister("a".into()), (50, 60), true),
            read(&["a"], (70, 80), None),
            op(RegKind::Register("b".into()), (100, 200), true),
            read(&["b"], (20_000, 20_010), Some(1)),
            read(&[], (20_020, 20_030), Some(2)),
        ];
        let found: Vec<String> = check(&ops).iter().map(|v| v.detail.clone()).collect();
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].contains("never registered"));
        assert!(found[1].contains("deregistration"));
        assert!(found[2].contains("expired"));
        assert!(found[3].contains("disagree"));
    }

    #[test]
    fn a_registration_that_may_apply_late_excuses_a_read() {
        let ops = vec![
            op(RegKind::Register("a".into()), (10, 20), true),
            // Unknown outcome, concurrent with the deregistration: may apply after it.
            op(RegKind::Register("a".into()), (40, 6_040), false),
            op(RegKind::Deregister("a".into()), (50, 60), true),
            read(&["a"], (70, 80), None),
        ];
        assert!(check(&ops).is_empty());
    }
}
