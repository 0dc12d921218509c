//! Property: **events are durable, ordered, and delivered.** Over the events workload:
//! - no acknowledged publish is lost: every final read of a topic holds every payload
//!   whose publish was acknowledged;
//! - no phantom or duplicate: a topic's log holds only payloads published to it, each
//!   once;
//! - per-topic order: of two acknowledged publishes where one completed before the other
//!   began, the first comes first in the log;
//! - every node agrees: the final reads of a topic return the same log on every node;
//! - every event reaches the group: each payload in a topic's final log was delivered to
//!   and acked by a member of the consumer group, through crashes, partitions,
//!   reconnects, and the members' own nacks and unacked deliveries (which must come
//!   back).

use std::collections::{BTreeMap, BTreeSet};

use super::Violation;
use crate::eventer::{EventsObserved, FinalRead, PublishOp};

fn violation(detail: String) -> Violation {
    Violation {
        checker: "events",
        detail,
    }
}

/// Checks the events workload's observations.
pub fn check(observed: &EventsObserved) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut logs: BTreeMap<&str, Vec<&FinalRead>> = BTreeMap::new();
    for read in &observed.finals {
        logs.entry(read.topic.as_str()).or_default().push(read);
        found.extend(check_log(read, &observed.publishes));
    }
    for (topic, reads) in &logs {
        let first = reads[0];
        for other in &reads[1..] {
            if other.payloads != first.payloads {
                found.push(violation(format!(
                    "topic {topic}: node {} has {:?}, node {} has {:?}",
                    first.node, first.payloads, other.node, other.payloads
                )));
            }
        }
        let delivered = observed.delivered.get(*topic);
        let missing: Vec<&String> = first
            .payloads
            .iter()
            .filter(|p| !delivered.is_some_and(|d| d.contains(*p)))
            .collect();
        if !missing.is_empty() {
            found.push(violation(format!(
                "topic {topic}: {missing:?} never reached a member of the group"
            )));
        }
    }
    found
}

/// One final read against the publishes.
fn check_log(read: &FinalRead, publishes: &[PublishOp]) -> Vec<Violation> {
    let mut found = Vec::new();
    let topic = &read.topic;
    let position: BTreeMap<&str, usize> = read
        .payloads
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    if position.len() != read.payloads.len() {
        found.push(violation(format!(
            "topic {topic} on node {} holds a payload twice: {:?}",
            read.node, read.payloads
        )));
    }
    let sent: BTreeSet<&str> = publishes
        .iter()
        .filter(|p| &p.topic == topic && p.invoke_ms <= read.complete_ms)
        .map(|p| p.payload.as_str())
        .collect();
    for payload in &read.payloads {
        if !sent.contains(payload.as_str()) {
            found.push(violation(format!(
                "topic {topic} on node {} holds {payload}, never published to it",
                read.node
            )));
        }
    }
    let acked: Vec<&PublishOp> = publishes
        .iter()
        .filter(|p| &p.topic == topic && p.ok)
        .collect();
    for op in &acked {
        if !position.contains_key(op.payload.as_str()) {
            found.push(violation(format!(
                "topic {topic} on node {} lost {} (acknowledged at {} ms)",
                read.node, op.payload, op.complete_ms
            )));
        }
    }
    for a in &acked {
        for b in &acked {
            let (Some(pa), Some(pb)) = (
                position.get(a.payload.as_str()),
                position.get(b.payload.as_str()),
            ) else {
                continue;
            };
            if a.complete_ms < b.invoke_ms && pa > pb {
                found.push(violation(format!(
                    "topic {topic} on node {}: {} (done at {} ms) comes after {} (begun at {} ms)",
                    read.node, a.payload, a.complete_ms, b.payload, b.invoke_ms
                )));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(payload: &str, invoke_ms: u64, complete_ms: u64, ok: bool) -> PublishOp {
        PublishOp {
            topic: "t".into(),
            payload: payload.into(),
            invoke_ms,
            complete_ms,
            ok,
        }
    }

    fn observed(logs: &[(u64, &[&str])], delivered: &[&str]) -> EventsObserved {
        EventsObserved {
            publishes: vec![
                publish("a", 0, 10, true),
                publish("b", 20, 30, true),
                publish("c", 40, 50, false),
            ],
            delivered: BTreeMap::from([(
                "t".to_owned(),
                delivered.iter().map(|s| (*s).to_owned()).collect(),
            )]),
            finals: logs
                .iter()
                .map(|(node, payloads)| FinalRead {
                    node: *node,
                    topic: "t".into(),
                    payloads: payloads.iter().map(|s| (*s).to_owned()).collect(),
                    complete_ms: 100,
                })
                .collect(),
            finals_done: true,
        }
    }

    #[test]
    fn a_good_run_passes_and_an_unknown_publish_may_be_missing() {
        assert!(
            check(&observed(
                &[(1, &["a", "b", "c"]), (2, &["a", "b", "c"])],
                &["a", "b", "c"]
            ))
            .is_empty()
        );
        assert!(check(&observed(&[(1, &["a", "b"])], &["a", "b"])).is_empty());
    }

    #[test]
    fn loss_reordering_phantoms_disagreement_and_undelivered_events_are_caught() {
        let lost = check(&observed(&[(1, &["a"])], &["a"]));
        assert!(lost[0].detail.contains("lost b"), "{lost:?}");
        let reordered = check(&observed(&[(1, &["b", "a"])], &["a", "b"]));
        assert!(reordered[0].detail.contains("comes after"), "{reordered:?}");
        let phantom = check(&observed(&[(1, &["a", "b", "z"])], &["a", "b", "z"]));
        assert!(phantom[0].detail.contains("never published"), "{phantom:?}");
        let twice = check(&observed(&[(1, &["a", "b", "a"])], &["a", "b"]));
        assert!(twice[0].detail.contains("twice"), "{twice:?}");
        let split = check(&observed(
            &[(1, &["a", "b"]), (2, &["a", "b", "c"])],
            &["a", "b", "c"],
        ));
        assert!(split[0].detail.contains("node 1 has"), "{split:?}");
        let undelivered = check(&observed(&[(1, &["a", "b"])], &["a"]));
        assert!(
            undelivered[0].detail.contains("never reached"),
            "{undelivered:?}"
        );
    }
}
