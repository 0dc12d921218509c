//! **Is each key's history linearizable** against a register with TTLs?
//!
//! A Wing-Gong search with Lowe's memoization (the algorithm of Porcupine and Knossos),
//! one key at a time (linearizability is compositional over keys). The model:
//! - a write sets the value; a delete clears it;
//! - a read returns the value, or "absent";
//! - a value written with a TTL may expire at any moment, after which reads see "absent"
//!   until the next write (the expiry checker bounds *when*).
//!
//! Operations with an unknown outcome may take effect at any time after they began, or
//! never: they return at "infinity". An unknown write without a TTL whose value nobody
//! read is left out, since it can always be placed after everything (one with a TTL
//! stays: its expiry can explain a later "absent"). Unknown reads say nothing.

use std::collections::{BTreeMap, HashSet};

use crate::history::{Op, OpKind, ReadValue};

/// How many search steps one key may take before the search gives up (inconclusive,
/// reported in the log, never as a pass or a violation).
const STEPS_MAX: u64 = 20_000_000;

/// The register's state: absent, or a value (by index) that may or may not expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum State {
    Absent,
    Value { id: u32, ttl: bool },
}

/// An operation as the search sees it.
#[derive(Debug, Clone, Copy)]
enum Step {
    Write { id: u32, ttl: bool },
    Delete,
    ReadAbsent,
    ReadValue { id: u32 },
}

fn apply(state: State, step: Step) -> Option<State> {
    match (step, state) {
        (Step::Write { id, ttl }, _) => Some(State::Value { id, ttl }),
        (Step::Delete, _) => Some(State::Absent),
        (Step::ReadAbsent, State::Absent | State::Value { ttl: true, .. }) => Some(State::Absent),
        (Step::ReadValue { id }, State::Value { id: held, .. }) if id == held => Some(state),
        _ => None,
    }
}

/// What the search concluded for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// None exists; the operation that could not be placed.
    Violated(String),
    /// The search ran out of steps.
    Inconclusive,
}

/// Checks each key's operations on its own (linearizability is compositional over
/// keys); returns the keys whose history has no linearization, with the search's
/// explanation, and counts the keys whose search gave up in `inconclusive`.
pub fn check_all(ops: &[Op], inconclusive: &mut usize) -> Vec<(String, String)> {
    let mut keys: Vec<&str> = ops.iter().map(|op| op.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut found = Vec::new();
    for key in keys {
        let on_key: Vec<&Op> = ops.iter().filter(|op| op.key == key).collect();
        match check_key(&on_key) {
            Verdict::Linearizable => {}
            Verdict::Inconclusive => *inconclusive += 1,
            Verdict::Violated(detail) => found.push((key.to_owned(), detail)),
        }
    }
    found
}

/// The operations of one key worth searching, with their steps and their return times.
fn prepare<'a>(ops: &[&'a Op]) -> Vec<(&'a Op, Step, u64)> {
    let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
    let mut id_of = |value: &'a str| {
        let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        *ids.entry(value).or_insert(next)
    };
    let read_values: HashSet<&str> = ops
        .iter()
        .filter_map(|op| match op.read()? {
            ReadValue::Found { value, .. } => Some(value.as_str()),
            ReadValue::Absent => None,
        })
        .collect();
    let mut prepared = Vec::new();
    for op in ops {
        let ret = op.effective_deadline();
        let step = match (&op.kind, op.read()) {
            // Without a TTL an unread write changes nothing anyone saw; with one, its
            // expiry may be what a later "absent" saw, so it stays.
            (OpKind::Write { value, ttl_secs: 0 }, _)
                if !op.is_ok() && !read_values.contains(&**value) =>
            {
                continue;
            }
            (OpKind::Write { value, ttl_secs }, _) => Step::Write {
                id: id_of(value),
                ttl: *ttl_secs > 0,
            },
            (OpKind::Delete, _) => Step::Delete,
            (OpKind::Read, Some(ReadValue::Absent)) => Step::ReadAbsent,
            (OpKind::Read, Some(ReadValue::Found { value, .. })) => {
                Step::ReadValue { id: id_of(value) }
            }
            (OpKind::Read, None) => continue,
        };
        prepared.push((*op, step, ret));
    }
    prepared
}

/// The call and return events of the operations in time order, as a doubly linked list
/// the search unlinks operations from and relinks them into.
struct Events {
    /// `(op, is_call)`, sorted by time (calls before returns at the same time: ops that
    /// touch at a millisecond may have overlapped).
    kind: Vec<(usize, bool)>,
    /// For each op, the index of its return event.
    ret_of: Vec<usize>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

/// The list's sentinel (head) lives at index `len`.
impl Events {
    fn new(times: &[(u64, u64)]) -> Self {
        let mut order: Vec<(u64, bool, usize)> = Vec::new();
        for (op, (call, ret)) in times.iter().enumerate() {
            order.push((*call, false, op));
            order.push((*ret, true, op));
        }
        order.sort_unstable();
        let len = order.len();
        let mut ret_of = vec![0; times.len()];
        let kind = order
            .iter()
            .enumerate()
            .map(|(i, (_, is_ret, op))| {
                if *is_ret {
                    ret_of[*op] = i;
                }
                (*op, !is_ret)
            })
            .collect();
        let next = (0..=len)
            .map(|i| if i == len { 0 } else { i + 1 })
            .collect();
        let prev = (0..=len)
            .map(|i| if i == 0 { len } else { i - 1 })
            .collect();
        Self {
            kind,
            ret_of,
            next,
            prev,
        }
    }

    fn head(&self) -> usize {
        self.kind.len()
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        self.next[p] = i;
        self.prev[n] = i;
    }

    /// Takes call `i` and its return out of the list.
    fn lift(&mut self, i: usize) {
        self.unlink(i);
        self.unlink(self.ret_of[self.kind[i].0]);
    }

    /// Undoes [`Events::lift`] (in reverse order, as dancing links require).
    fn unlift(&mut self, i: usize) {
        self.relink(self.ret_of[self.kind[i].0]);
        self.relink(i);
    }
}

/// Searches for a linearization of one key's operations.
pub fn check_key(ops: &[&Op]) -> Verdict {
    let prepared = prepare(ops);
    let times: Vec<(u64, u64)> = prepared
        .iter()
        .map(|(op, _, ret)| (op.invoke_ms, *ret))
        .collect();
    let mut events = Events::new(&times);
    let head = events.head();
    let words = prepared.len().div_ceil(64).max(1);
    let mut linearized = vec![0_u64; words];
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = State::Absent;
    let mut entry = events.next[head];
    let mut steps = 0_u64;
    // The deepest point the search reached, and the operation it got stuck on there.
    let mut deepest = (0, 0);
    while events.next[head] != head {
        steps += 1;
        if steps > STEPS_MAX {
            return Verdict::Inconclusive;
        }
        let (op, is_call) = events.kind[entry];
        if is_call {
            if let Some(after) = apply(state, prepared[op].1) {
                linearized[op / 64] |= 1 << (op % 64);
                if seen.insert((linearized.clone(), after)) {
                    stack.push((entry, state));
                    state = after;
                    events.lift(entry);
                    entry = events.next[head];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            entry = events.next[entry];
        } else {
            if stack.len() >= deepest.0 {
                deepest = (stack.len(), op);
            }
            let Some((call, before)) = stack.pop() else {
                let (depth, stuck) = deepest;
                return Verdict::Violated(format!(
                    "at best {depth} of {} operations linearize; then nothing explains {:?}",
                    prepared.len(),
                    prepared[stuck].0
                ));
            };
            let undone = events.kind[call].0;
            linearized[undone / 64] &= !(1 << (undone % 64));
            state = before;
            events.unlift(call);
            entry = events.next[call];
        }
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;
    use crate::history::fixtures::op;

    fn write(value: &str, at: (u64, u64)) -> Op {
        crate::history::fixtures::write(value, 0, at)
    }

    fn read(value: Option<&str>, at: (u64, u64)) -> Op {
        crate::history::fixtures::read(value, 0, at)
    }

    fn verdict(ops: &[Op]) -> Verdict {
        check_key(&ops.iter().collect::<Vec<_>>())
    }

    #[test]
    fn sequential_histories_follow_the_register() {
        let ops = [
            write("a", (0, 1)),
            read(Some("a"), (2, 3)),
            write("b", (4, 5)),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        let stale = [
            write("a", (0, 1)),
            write("b", (2, 3)),
            read(Some("a"), (4, 5)),
        ];
        assert!(matches!(verdict(&stale), Verdict::Violated(_)));
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let ops = [
            write("a", (0, 10)),
            read(Some("a"), (1, 2)),
            read(None, (3, 4)),
        ];
        // The read of "a" needs the write first, then "absent" cannot follow.
        assert!(matches!(verdict(&ops), Verdict::Violated(_)));
        let ops = [
            write("a", (0, 10)),
            read(None, (1, 2)),
            read(Some("a"), (3, 4)),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn a_value_read_back_after_a_newer_value_is_not_linearizable() {
        let ops = [
            write("a", (0, 1)),
            write("b", (2, 20)),
            read(Some("b"), (3, 4)),
            read(Some("a"), (5, 6)),
        ];
        assert!(matches!(verdict(&ops), Verdict::Violated(_)));
    }

    #[test]
    fn unknown_writes_may_apply_late_or_never() {
        let unknown = op(
            OpKind::Write {
                value: "x".to_owned(),
                ttl_secs: 0,
            },
            (0, 1),
            Outcome::Unknown,
        );
        let ops = [
            unknown.clone(),
            read(None, (2, 3)),
            read(Some("x"), (50, 51)),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        let never = [unknown, read(None, (2, 3))];
        assert_eq!(verdict(&never), Verdict::Linearizable);
    }

    #[test]
    fn an_unknown_ttl_write_nobody_read_may_explain_an_absent_key() {
        let ttl = op(
            OpKind::Write {
                value: "t".to_owned(),
                ttl_secs: 1,
            },
            (2, 3),
            Outcome::Unknown,
        );
        let ops = [write("a", (0, 1)), ttl, read(None, (50, 51))];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        let without = [write("a", (0, 1)), read(None, (50, 51))];
        assert!(matches!(verdict(&without), Verdict::Violated(_)));
    }

    #[test]
    fn ttl_values_may_expire_but_do_not_come_back() {
        let ttl = op(
            OpKind::Write {
                value: "t".to_owned(),
                ttl_secs: 1,
            },
            (0, 1),
            Outcome::Ok(None),
        );
        let ops = [ttl.clone(), read(Some("t"), (2, 3)), read(None, (4, 5))];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        let back = [ttl, read(None, (2, 3)), read(Some("t"), (4, 5))];
        assert!(matches!(verdict(&back), Verdict::Violated(_)));
    }
}
