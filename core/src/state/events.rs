//! Events state: each namespace's topic logs, consumer groups and retention, their part
//! of `apply`, and their reads.
//!
//! Space `Events`:
//! ```text
//! 0x00 ns topic seq(be64)           -> StoredEvent  (a topic's log, in order)
//! 0x01 ns topic                     -> TopicHead    (first kept and next seq)
//! 0x02 ns topic group               -> Group        (a consumer group's leases)
//! 0x03 expires_at(be64) ns topic seq -> ()          (retention index, oldest first)
//! ```

use std::collections::BTreeSet;

use crate::events::{ClaimOptions, Event, Group, StoredEvent, TopicHead};
use crate::kv::{KeyRange, KvBackend, KvError, ScanOrder, Space, WriteBatch};
use crate::namespace::Namespace;
use crate::state::keys::{decode, encode};
use crate::state::services::key;
use crate::state::{Command, Response};

const EVENT_TAG: u8 = 0;
const HEAD_TAG: u8 = 1;
const GROUP_TAG: u8 = 2;
const EXPIRY_TAG: u8 = 3;

fn log_prefix(namespace: &Namespace, topic: &str) -> Vec<u8> {
    key(EVENT_TAG, &[namespace.as_str(), topic])
}

fn event_key(namespace: &Namespace, topic: &str, seq: u64) -> Vec<u8> {
    let mut out = log_prefix(namespace, topic);
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

fn head_key(namespace: &Namespace, topic: &str) -> Vec<u8> {
    key(HEAD_TAG, &[namespace.as_str(), topic])
}

fn group_key(namespace: &Namespace, topic: &str, group: &str) -> Vec<u8> {
    key(GROUP_TAG, &[namespace.as_str(), topic, group])
}

fn expiry_key(at_ms: u64, event_key: &[u8]) -> Vec<u8> {
    let mut out = vec![EXPIRY_TAG];
    out.extend_from_slice(&at_ms.to_be_bytes());
    out.extend_from_slice(event_key);
    out
}

fn corrupt(what: &str) -> KvError {
    KvError(format!("corrupt events state: {what}"))
}

fn load<T: serde::de::DeserializeOwned>(
    kv: &dyn KvBackend,
    key: &[u8],
    what: &str,
) -> Result<Option<T>, KvError> {
    crate::state::keys::load(kv, Space::Events, key, what)
}

/// Where `topic`'s log starts and ends (an empty log at 1 if nothing was published).
pub(crate) fn head(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    topic: &str,
) -> Result<TopicHead, KvError> {
    Ok(load(kv, &head_key(namespace, topic), "topic head")?.unwrap_or_default())
}

/// The consumer group `group` of `topic`, if it has ever claimed.
pub(crate) fn group(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    topic: &str,
    group: &str,
) -> Result<Option<Group>, KvError> {
    load(kv, &group_key(namespace, topic, group), "consumer group")
}

/// Up to `max` events of `topic` from `from_seq` on, in order.
/// Every consumer group: namespace, topic, group name and its state.
pub(crate) fn groups(
    kv: &dyn KvBackend,
) -> Result<Vec<(Namespace, String, String, Group)>, KvError> {
    let mut out = Vec::new();
    let mut bad = false;
    kv.scan(
        Space::Events,
        &KeyRange::prefix(&[GROUP_TAG]),
        ScanOrder::Asc,
        &mut |k, v| {
            let names = crate::state::services::split_key(k);
            match (names.as_deref(), decode::<Group>(v)) {
                (Some([ns, topic, group]), Some(state)) => match Namespace::new(ns.clone()) {
                    Ok(ns) => out.push((ns, topic.clone(), group.clone(), state)),
                    Err(_) => bad = true,
                },
                _ => bad = true,
            }
            !bad
        },
    )?;
    if bad {
        return Err(corrupt("consumer group"));
    }
    Ok(out)
}

pub(crate) fn range(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    topic: &str,
    from_seq: u64,
    max: usize,
) -> Result<Vec<StoredEvent>, KvError> {
    let range = KeyRange {
        start: event_key(namespace, topic, from_seq),
        end: KeyRange::prefix(&log_prefix(namespace, topic)).end,
    };
    let mut out = Vec::new();
    let mut bad = false;
    kv.scan(Space::Events, &range, ScanOrder::Asc, &mut |_, v| {
        match decode::<StoredEvent>(v) {
            Some(stored) => out.push(stored),
            None => bad = true,
        }
        !bad && out.len() < max
    })?;
    if bad {
        return Err(corrupt("event"));
    }
    Ok(out)
}

/// The seq of the first event of `topic` appended at or after `at_ms` (the head's next
/// seq if none was). Append times only grow along a topic, so this is a binary search;
/// a probe that lands on a purged seq looks at the next event kept.
pub(crate) fn seq_at(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    topic: &str,
    at_ms: u64,
) -> Result<u64, KvError> {
    let head = head(kv, namespace, topic)?;
    let (mut lo, mut hi) = (head.first_seq, head.next_seq);
    let mut found = head.next_seq;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match range(kv, namespace, topic, mid, 1)?.into_iter().next() {
            Some(event) if event.seq < hi && event.appended_ms >= at_ms => {
                found = event.seq;
                hi = mid;
            }
            Some(event) if event.seq < hi => lo = event.seq + 1,
            _ => hi = mid,
        }
    }
    Ok(found)
}

/// Applies an events command (the others are not this module's).
pub(crate) fn apply(
    kv: &dyn KvBackend,
    command: &Command,
    now: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    Ok(match command {
        Command::EventsAppend {
            namespace,
            topic,
            events: list,
            retention_ms,
        } => append(kv, namespace, topic, list, *retention_ms, now, batch)?,
        Command::EventsClaim {
            namespace,
            topic,
            group,
            member,
            options,
            start_ms,
        } => claim(
            kv,
            namespace,
            topic,
            (group, member),
            *options,
            *start_ms,
            now,
            batch,
        )?,
        Command::EventsAck {
            namespace,
            topic,
            group,
            member,
            acks,
        } => settle(kv, namespace, topic, group, batch, |state| {
            for (seq, success) in acks {
                state.settle(*seq, *success, member);
            }
        })?,
        Command::EventsLeave {
            namespace,
            topic,
            group,
            member,
        } => settle(kv, namespace, topic, group, batch, |state| {
            state.leave(member);
        })?,
        _ => return Err(KvError("not an events command".to_owned())),
    })
}

/// Appends `events` to `topic`, each kept for `retention_ms` from now.
pub(crate) fn append(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    topic: &str,
    events: &[Event],
    retention_ms: u64,
    now: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let mut head = head(kv, namespace, topic)?;
    let first = head.next_seq;
    for event in events {
        let mut event = event.clone();
        if event.timestamp <= 0 {
            event.timestamp = i64::try_from(now / 1000).unwrap_or(i64::MAX);
        }
        let stored = StoredEvent {
            seq: head.next_seq,
            appended_ms: now,
            event,
        };
        let key = event_key(namespace, topic, stored.seq);
        batch.put(
            Space::Events,
            expiry_key(now.saturating_add(retention_ms), &key),
            Vec::new(),
        );
        batch.put(Space::Events, key, encode(&stored));
        head.next_seq += 1;
    }
    batch.put(Space::Events, head_key(namespace, topic), encode(&head));
    Ok(Response::Appended { seq: first })
}

/// Hands the next events of `topic` to a member of `group`; a group's first claim starts
/// at `start_ms` (replay) or at the head (new events only).
#[allow(clippy::too_many_arguments)]
pub(crate) fn claim(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    topic: &str,
    (name, member): (&str, &str),
    options: ClaimOptions,
    start_ms: Option<u64>,
    now: u64,
    batch: &mut WriteBatch,
) -> Result<Response, KvError> {
    let head = head(kv, namespace, topic)?;
    let mut state = match group(kv, namespace, topic, name)? {
        Some(state) => state,
        None => Group::starting_at(match start_ms {
            Some(at) => seq_at(kv, namespace, topic, at)?,
            None => head.next_seq,
        }),
    };
    let claimed = state.claim(member, head, now, options);
    let next_deadline_ms = state.next_deadline_ms();
    batch.put(
        Space::Events,
        group_key(namespace, topic, name),
        encode(&state),
    );
    Ok(Response::Claimed {
        claimed,
        next_deadline_ms,
    })
}

/// Changes group `name` of `topic` with `change` (nothing if it never claimed).
fn settle(
    kv: &dyn KvBackend,
    namespace: &Namespace,
    topic: &str,
    name: &str,
    batch: &mut WriteBatch,
    change: impl FnOnce(&mut Group),
) -> Result<Response, KvError> {
    let Some(mut state) = group(kv, namespace, topic, name)? else {
        return Ok(Response::Done);
    };
    change(&mut state);
    batch.put(
        Space::Events,
        group_key(namespace, topic, name),
        encode(&state),
    );
    Ok(Response::Done)
}

/// Removes up to `max` events whose retention ran out by `now`; returns how many.
pub(crate) fn purge_expired(
    kv: &dyn KvBackend,
    now: u64,
    max: usize,
    batch: &mut WriteBatch,
) -> Result<u64, KvError> {
    let due = crate::state::keys::due_expiries(kv, Space::Events, EXPIRY_TAG, now, max)?;
    // Each topic's head moves once, to its oldest event left (retention is the
    // proposing node's setting, so expiry need not follow seq order).
    let mut purged = std::collections::BTreeMap::<Vec<u8>, BTreeSet<u64>>::new();
    for index_key in &due {
        batch.delete(Space::Events, index_key.clone());
        let Some(event_key) = index_key.get(9..) else {
            continue;
        };
        batch.delete(Space::Events, event_key.to_vec());
        let Some((prefix, seq)) = event_key.split_at_checked(event_key.len().saturating_sub(8))
        else {
            continue;
        };
        let seq = seq.try_into().map_or(0, u64::from_be_bytes);
        purged.entry(prefix.to_vec()).or_default().insert(seq);
    }
    for (prefix, seqs) in purged {
        let mut head_key = prefix.clone();
        let Some(tag) = head_key.first_mut() else {
            continue;
        };
        *tag = HEAD_TAG;
        let mut head: TopicHead = match kv.get(Space::Events, &head_key)? {
            Some(bytes) => decode(&bytes).ok_or_else(|| corrupt("topic head"))?,
            None => continue,
        };
        let mut start = prefix.clone();
        start.extend_from_slice(&head.first_seq.to_be_bytes());
        let range = KeyRange {
            start,
            end: KeyRange::prefix(&prefix).end,
        };
        let mut oldest_left = head.next_seq;
        kv.scan(Space::Events, &range, ScanOrder::Asc, &mut |k, _| {
            let seq = k
                .get(prefix.len()..)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes);
            if seqs.contains(&seq) {
                return true;
            }
            oldest_left = seq;
            false
        })?;
        head.first_seq = head.first_seq.max(oldest_left);
        batch.put(Space::Events, head_key, encode(&head));
    }
    Ok(due.len() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::kv::MemKvBackend;
    use crate::state::apply_now;

    fn ns() -> Namespace {
        Namespace::new("acme").unwrap()
    }

    fn publish(kv: &MemKvBackend, at: u64, topic: &str, body: &str) -> Response {
        publish_kept(kv, at, topic, body, 1_000)
    }

    fn publish_kept(kv: &MemKvBackend, at: u64, topic: &str, body: &str, kept: u64) -> Response {
        let event = Event {
            id: format!("id-{body}"),
            topic: topic.into(),
            payload: body.as_bytes().to_vec(),
            ..Event::default()
        };
        apply_now(
            kv,
            at,
            Command::EventsAppend {
                namespace: ns(),
                topic: topic.into(),
                events: vec![event],
                retention_ms: kept,
            },
        )
    }

    fn claim(kv: &MemKvBackend, at: u64, group: &str, start_ms: Option<u64>) -> Vec<u64> {
        let command = Command::EventsClaim {
            namespace: ns(),
            topic: "orders".into(),
            group: group.into(),
            member: "m".into(),
            options: ClaimOptions {
                max: 10,
                ack_wait_ms: 0,
                retry_limit: -1,
            },
            start_ms,
        };
        match apply_now(kv, at, command) {
            Response::Claimed { claimed, .. } => claimed.iter().map(|(seq, _)| *seq).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn topics_are_ordered_logs_per_namespace_and_topic() {
        let kv = MemKvBackend::new();
        assert_eq!(
            publish(&kv, 10, "orders", "a"),
            Response::Appended { seq: 1 }
        );
        assert_eq!(
            publish(&kv, 20, "orders", "b"),
            Response::Appended { seq: 2 }
        );
        assert_eq!(
            publish(&kv, 30, "other", "c"),
            Response::Appended { seq: 1 }
        );
        let log = range(&kv, &ns(), "orders", 1, 10).unwrap();
        let bodies: Vec<_> = log.iter().map(|s| s.event.payload.clone()).collect();
        assert_eq!(bodies, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(log[1].event.timestamp, 0, "log time 20 ms is second 0");
        let other = Namespace::new("other").unwrap();
        assert!(range(&kv, &other, "orders", 1, 10).unwrap().is_empty());
    }

    #[test]
    fn a_new_group_starts_at_the_head_or_replays_from_a_time() {
        let kv = MemKvBackend::new();
        publish(&kv, 10, "orders", "a");
        publish(&kv, 20, "orders", "b");
        assert!(claim(&kv, 25, "live", None).is_empty());
        assert_eq!(claim(&kv, 25, "replay", Some(15)), vec![2]);
        publish(&kv, 30, "orders", "c");
        assert_eq!(claim(&kv, 35, "live", None), vec![3]);
        assert_eq!(
            claim(&kv, 35, "replay", Some(0)),
            vec![3],
            "the group's place is kept"
        );
    }

    #[test]
    fn retention_purges_old_events_and_moves_the_head() {
        let kv = MemKvBackend::new();
        publish(&kv, 10, "orders", "a");
        publish(&kv, 500, "orders", "b");
        assert_eq!(
            apply_now(&kv, 1_200, Command::Tick),
            Response::Ticked { purged: 1 }
        );
        assert_eq!(head(&kv, &ns(), "orders").unwrap().first_seq, 2);
        assert_eq!(claim(&kv, 1_200, "late", Some(0)), vec![2]);
        apply_now(&kv, 1_600, Command::Tick);
        assert!(range(&kv, &ns(), "orders", 1, 10).unwrap().is_empty());
        assert_eq!(
            publish(&kv, 1_700, "orders", "c"),
            Response::Appended { seq: 3 }
        );
    }

    #[test]
    fn a_shorter_retention_later_does_not_hide_older_events_still_kept() {
        let kv = MemKvBackend::new();
        publish_kept(&kv, 10, "orders", "long", 10_000);
        publish_kept(&kv, 20, "orders", "short", 100);
        apply_now(&kv, 500, Command::Tick);
        assert_eq!(head(&kv, &ns(), "orders").unwrap().first_seq, 1);
        let left: Vec<u64> = range(&kv, &ns(), "orders", 1, 10)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(left, vec![1]);
        apply_now(&kv, 20_000, Command::Tick);
        assert_eq!(head(&kv, &ns(), "orders").unwrap().first_seq, 3);
    }

    #[test]
    fn replay_finds_the_first_event_at_or_after_a_time() {
        let kv = MemKvBackend::new();
        for (i, at) in [10, 20, 20, 30, 40, 50, 60].iter().enumerate() {
            publish_kept(&kv, *at, "orders", &format!("e{i}"), 100_000);
        }
        let at = |ms| seq_at(&kv, &ns(), "orders", ms).unwrap();
        assert_eq!(
            [at(0), at(10), at(15), at(20), at(45), at(60), at(61)],
            [1, 1, 2, 2, 6, 7, 8]
        );
    }
}
