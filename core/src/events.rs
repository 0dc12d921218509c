//! Events: durable, per-topic ordered logs with replay and consumer groups.
//!
//! ```text
//! publish(topic, event) ─EventsAppend─> Raft ─> topic log: seq 1, 2, 3 ...  (retention: expiry index)
//! consume, no group    ─> tail the local log from `offset` or the head (nothing replicated)
//! consume, group G     ─EventsClaim─>  Raft ─> G's leases: the next events for this member
//!                      ─EventsAck──>   Raft ─> lease removed (ack) or due now (nack)
//! ```
//!
//! A group's state is replicated, so its members may sit on any node and a member's
//! crash (or the leader's) loses no event: a lease not acked within `ack_wait` falls due
//! and the next claim of any member takes it again, until the retry limit. The lease
//! arithmetic ([`Group`]) is pure and shared by replicated groups and the local
//! bookkeeping of a consumer without a group.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Code, HasCode};

/// The longest topic or group name, in bytes.
pub const NAME_LEN_MAX: usize = 255;
/// The largest event payload, in bytes.
pub const PAYLOAD_LEN_MAX: usize = 1024 * 1024;
/// The most metadata entries on one event.
pub const METADATA_ENTRIES_MAX: usize = 64;
/// How long events are kept unless a node is told otherwise (24 hours, as Micro v3).
pub const RETENTION_DEFAULT_MS: u64 = 24 * 60 * 60 * 1000;
/// The most events one claim hands out.
pub const CLAIM_MAX: usize = 256;
/// The most unacked events a group holds at once; past it, claims wait for acks.
pub const PENDING_MAX: usize = 10_000;
/// The most events one read returns (the default is [`READ_DEFAULT`]).
pub const READ_MAX: usize = 10_000;
/// Events a read returns when it names no limit (as Micro v3's events store).
pub const READ_DEFAULT: usize = 250;

/// One event, as published and delivered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Event {
    /// A unique id (a UUID), given at publish.
    pub id: String,
    /// The topic it was published on.
    pub topic: String,
    /// Free-form headers.
    pub metadata: BTreeMap<String, String>,
    /// The body, opaque to the platform.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// When it was published (Unix seconds): the publisher's, else the log time.
    pub timestamp: i64,
}

/// An event in its topic's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Its position in the topic, from 1, gapless at append.
    pub seq: u64,
    /// The log time it was appended at (Unix ms): what `offset` replay compares.
    pub appended_ms: u64,
    /// The event.
    pub event: Event,
}

/// An event handed to a consumer, with how many times it has been handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event.
    pub stored: StoredEvent,
    /// 1 for the first delivery, 2 for the first redelivery, ...
    pub attempt: u32,
}

/// Where a topic's log starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicHead {
    /// The oldest event still kept (older ones expired).
    pub first_seq: u64,
    /// The seq the next event gets.
    pub next_seq: u64,
}

impl Default for TopicHead {
    fn default() -> Self {
        Self {
            first_seq: 1,
            next_seq: 1,
        }
    }
}

/// How a consumer takes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimOptions {
    /// The most events to take now.
    pub max: u32,
    /// How long a delivered event may stay unacked before it is due again (ms); 0 acks
    /// every event as it is handed out.
    pub ack_wait_ms: u64,
    /// Redeliveries allowed after the first delivery; negative for no limit.
    pub retry_limit: i64,
}

impl ClaimOptions {
    /// Whether events are acked as they are handed out.
    pub fn auto_ack(&self) -> bool {
        self.ack_wait_ms == 0
    }
}

/// An event handed out and not yet acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// When it falls due for redelivery (log time, ms).
    pub deadline_ms: u64,
    /// How many times it has been handed out.
    pub deliveries: u32,
    /// The number of the member holding it (see [`Member::no`]).
    pub holder: u32,
}

/// How long a member counts as present after its last claim: while it does, others
/// leave it its share of new events.
pub const MEMBER_TTL_MS: u64 = 2_000;

/// A member of a consumer group, for sharing new events fairly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Member {
    /// New events it has been handed (relative: a member joins level with the others).
    pub taken: u64,
    /// Its last claim (log time, ms).
    pub seen_ms: u64,
    /// Its number in the group, which its leases carry (shorter than its id).
    pub no: u32,
    /// Its last claim asked for less than its share (its client is slow): it does not
    /// hold the others back.
    pub limited: bool,
}

/// A consumer group's position in a topic: what it has been handed and not acked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Group {
    /// Every event below it has been handed out (and is acked, or leased).
    pub next_seq: u64,
    /// Unacked events by seq.
    pub pending: BTreeMap<u64, Lease>,
    /// The members by id, with what they took.
    pub members: BTreeMap<String, Member>,
    /// The number the next new member gets.
    pub next_no: u32,
}

impl Group {
    /// A group that starts with the event at `seq`.
    pub fn starting_at(seq: u64) -> Self {
        Self {
            next_seq: seq,
            ..Self::default()
        }
    }

    /// Hands member `member` up to `options.max` events of a topic whose log is `head`
    /// at time `now_ms`: due leases first (oldest first), then new events. Leases past
    /// the retry limit and events that expired are dropped. Returns `(seq, attempt)`.
    ///
    /// New events are shared: a member that took more than the least served present
    /// member gets none (the others claim theirs), and no member takes more than an even
    /// share of what is waiting. Without it, the member beside the leader, which learns
    /// of each event first, would take them all.
    pub fn claim(
        &mut self,
        member: &str,
        head: TopicHead,
        now_ms: u64,
        options: ClaimOptions,
    ) -> Vec<(u64, u32)> {
        self.forget_expired(head);
        let share = self.share(member, head, now_ms);
        let max = usize::try_from(options.max)
            .unwrap_or(CLAIM_MAX)
            .min(CLAIM_MAX);
        let holder = self.members.get(member).map_or(0, |m| m.no);
        let lease = |deliveries| Lease {
            deadline_ms: now_ms.saturating_add(options.ack_wait_ms),
            deliveries,
            holder,
        };
        let mut out = Vec::new();
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, lease)| lease.deadline_ms <= now_ms)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in due {
            if out.len() >= max {
                break;
            }
            let Some(old) = self.pending.remove(&seq) else {
                continue;
            };
            let exhausted = u64::try_from(options.retry_limit)
                .is_ok_and(|limit| u64::from(old.deliveries) > limit);
            if exhausted {
                continue;
            }
            let attempt = old.deliveries.saturating_add(1);
            if !options.auto_ack() {
                self.pending.insert(seq, lease(attempt));
            }
            out.push((seq, attempt));
        }
        let mut new = 0;
        while out.len() < max && new < share && self.next_seq < head.next_seq {
            if !options.auto_ack() {
                if self.pending.len() >= PENDING_MAX {
                    break;
                }
                self.pending.insert(self.next_seq, lease(1));
            }
            out.push((self.next_seq, 1));
            self.next_seq += 1;
            new += 1;
        }
        if let Some(me) = self.members.get_mut(member) {
            me.taken += new as u64;
            me.limited = new < share && self.next_seq < head.next_seq;
        }
        out
    }

    /// Records `member`'s claim at `now_ms` and returns how many new events it may
    /// take: none while it is ahead of the least served present member that keeps up,
    /// else an even share of what is waiting (rounded up). Members gone for long are
    /// forgotten.
    fn share(&mut self, member: &str, head: TopicHead, now_ms: u64) -> usize {
        self.members
            .retain(|_, m| m.seen_ms.saturating_add(MEMBER_TTL_MS * 10) >= now_ms);
        let present = |m: &Member| m.seen_ms.saturating_add(MEMBER_TTL_MS) >= now_ms;
        let least = self
            .members
            .iter()
            .filter(|(id, m)| id.as_str() != member && present(m) && !m.limited)
            .map(|(_, m)| m.taken)
            .min();
        let joining = self.members.get(member).is_none_or(|m| !present(m));
        if !self.members.contains_key(member) {
            let no = self.next_no;
            self.next_no = self.next_no.wrapping_add(1);
            self.members.insert(
                member.to_owned(),
                Member {
                    no,
                    ..Member::default()
                },
            );
        }
        let Some(me) = self.members.get_mut(member) else {
            return 0;
        };
        if joining && let Some(least) = least {
            // Joining (or back after a pause): level with the others, not owed a backlog.
            me.taken = least;
        }
        me.seen_ms = now_ms;
        if least.is_some_and(|least| me.taken > least) {
            return 0;
        }
        let members = self.members.values().filter(|m| present(m)).count();
        let waiting = head.next_seq.saturating_sub(self.next_seq);
        usize::try_from(waiting.div_ceil(members.max(1) as u64)).unwrap_or(usize::MAX)
    }

    /// Removes `member` (it left), making the leases it held due at once: the others
    /// no longer leave it a share, and get its events without waiting out `ack_wait`.
    pub fn leave(&mut self, member: &str) {
        let Some(gone) = self.members.remove(member) else {
            return;
        };
        for lease in self.pending.values_mut() {
            if lease.holder == gone.no {
                lease.deadline_ms = 0;
            }
        }
    }

    /// Settles the lease of `seq` for `member`: an ack removes it, a nack makes it due
    /// at once. A nack from a member that no longer holds it (the lease ran out and went
    /// to another) is ignored, as are unknown seqs.
    pub fn settle(&mut self, seq: u64, success: bool, member: &str) {
        if success {
            self.pending.remove(&seq);
            return;
        }
        let holder = self.members.get(member).map(|m| m.no);
        if let Some(lease) = self.pending.get_mut(&seq)
            && holder.is_none_or(|no| no == lease.holder)
        {
            lease.deadline_ms = 0;
        }
    }

    /// The earliest time a lease falls due, if any is held.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.pending.values().map(|lease| lease.deadline_ms).min()
    }

    /// Whether a claim by `member` at `now_ms` would hand something out.
    pub fn has_work(&self, member: &str, head: TopicHead, now_ms: u64) -> bool {
        let mut probe = self.clone();
        probe.forget_expired(head);
        if probe.next_deadline_ms().is_some_and(|at| at <= now_ms) {
            return true;
        }
        probe.next_seq < head.next_seq
            && probe.pending.len() < PENDING_MAX
            && probe.share(member, head, now_ms) > 0
    }

    fn forget_expired(&mut self, head: TopicHead) {
        self.next_seq = self.next_seq.max(head.first_seq);
        self.pending = self.pending.split_off(&head.first_seq);
    }
}

/// Why an events request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// The request is malformed (empty topic, oversized payload, ...).
    #[error("{0}")]
    Invalid(String),
    /// The cluster cannot serve it now; retry.
    #[error("{0}")]
    Unavailable(String),
}

impl HasCode for EventsError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid(_) => Code::BadRequest,
            Self::Unavailable(_) => Code::Unavailable,
        }
    }
}

/// Checks a topic or group name: 1 to [`NAME_LEN_MAX`] bytes, no control characters.
pub fn validate_name(what: &str, name: &str) -> Result<(), EventsError> {
    if name.is_empty() || name.len() > NAME_LEN_MAX || name.chars().any(char::is_control) {
        return Err(EventsError::Invalid(format!(
            "a {what} must be 1 to {NAME_LEN_MAX} bytes without control characters"
        )));
    }
    Ok(())
}

/// Checks an event before it is published.
pub fn validate_event(event: &Event) -> Result<(), EventsError> {
    validate_name("topic", &event.topic)?;
    if event.payload.len() > PAYLOAD_LEN_MAX {
        return Err(EventsError::Invalid(format!(
            "an event payload is at most {PAYLOAD_LEN_MAX} bytes (this one is {})",
            event.payload.len()
        )));
    }
    if event.metadata.len() > METADATA_ENTRIES_MAX {
        return Err(EventsError::Invalid(format!(
            "an event has at most {METADATA_ENTRIES_MAX} metadata entries"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANUAL: ClaimOptions = ClaimOptions {
        max: 10,
        ack_wait_ms: 100,
        retry_limit: 1,
    };

    fn head(first: u64, next: u64) -> TopicHead {
        TopicHead {
            first_seq: first,
            next_seq: next,
        }
    }

    #[test]
    fn auto_ack_hands_each_event_out_once() {
        let mut group = Group::starting_at(1);
        let auto = ClaimOptions {
            ack_wait_ms: 0,
            ..MANUAL
        };
        assert_eq!(
            group.claim("m", head(1, 4), 0, auto),
            vec![(1, 1), (2, 1), (3, 1)]
        );
        assert!(group.claim("m", head(1, 4), 1_000_000, auto).is_empty());
        assert!(group.pending.is_empty());
    }

    #[test]
    fn unacked_events_come_back_after_ack_wait_until_the_retry_limit() {
        let mut group = Group::starting_at(1);
        assert_eq!(
            group.claim("m", head(1, 3), 0, MANUAL),
            vec![(1, 1), (2, 1)]
        );
        group.settle(2, true, "m");
        assert!(
            group.claim("m", head(1, 3), 99, MANUAL).is_empty(),
            "not due yet"
        );
        assert_eq!(group.claim("m", head(1, 3), 100, MANUAL), vec![(1, 2)]);
        assert_eq!(group.next_deadline_ms(), Some(200));
        assert!(
            group.claim("m", head(1, 3), 200, MANUAL).is_empty(),
            "one retry only"
        );
        assert!(group.pending.is_empty());
    }

    #[test]
    fn a_nack_makes_an_event_due_at_once_and_no_limit_means_forever() {
        let mut group = Group::starting_at(5);
        let forever = ClaimOptions {
            retry_limit: -1,
            ..MANUAL
        };
        assert_eq!(group.claim("m", head(1, 6), 0, forever), vec![(5, 1)]);
        for attempt in 2..20 {
            group.settle(5, false, "m");
            assert!(group.has_work("m", head(1, 6), 1));
            assert_eq!(group.claim("m", head(1, 6), 1, forever), vec![(5, attempt)]);
        }
    }

    #[test]
    fn expired_events_are_skipped_and_their_leases_dropped() {
        let mut group = Group::starting_at(1);
        group.claim("m", head(1, 3), 0, MANUAL);
        assert_eq!(
            group.claim("m", head(3, 5), 1_000, MANUAL),
            vec![(3, 1), (4, 1)]
        );
        assert_eq!(
            group.pending.keys().copied().collect::<Vec<_>>(),
            vec![3, 4]
        );
    }

    #[test]
    fn present_members_share_new_events_and_a_leaver_stops_holding_others_back() {
        let mut group = Group::starting_at(1);
        let auto = ClaimOptions {
            ack_wait_ms: 0,
            ..MANUAL
        };
        // One event at a time: the member that claims first cannot take them all.
        assert_eq!(group.claim("a", head(1, 2), 0, auto), vec![(1, 1)]);
        assert!(group.claim("b", head(1, 2), 0, auto).is_empty());
        assert_eq!(group.claim("b", head(1, 3), 1, auto), vec![(2, 1)]);
        assert!(!group.has_work("b", head(1, 4), 2), "b is ahead of a");
        assert!(group.has_work("a", head(1, 4), 2));
        assert_eq!(group.claim("a", head(1, 4), 2, auto), vec![(3, 1)]);
        // A backlog is split evenly.
        assert_eq!(group.claim("a", head(1, 8), 3, auto).len(), 2);
        assert_eq!(group.claim("b", head(1, 8), 3, auto).len(), 1);
        assert!(group.claim("a", head(1, 8), 3, auto).is_empty());
        assert_eq!(group.claim("b", head(1, 8), 3, auto).len(), 1);
        // A member that left, or stopped claiming, holds nobody back.
        group.leave("b");
        assert_eq!(group.claim("a", head(1, 10), 4, auto).len(), 2);
        group.claim("b", head(1, 10), 5, auto);
        assert_eq!(
            group
                .claim("a", head(1, 12), 5 + MEMBER_TTL_MS + 1, auto)
                .len(),
            2
        );
    }

    #[test]
    fn a_slow_member_does_not_hold_back_a_fast_one() {
        let mut group = Group::starting_at(1);
        let slow = ClaimOptions { max: 1, ..MANUAL };
        let fast = ClaimOptions { max: 100, ..MANUAL };
        assert_eq!(group.claim("fast", head(1, 1), 0, fast).len(), 0);
        assert_eq!(group.claim("slow", head(1, 41), 0, slow).len(), 1);
        // The slow member asked for less than its share: the fast one takes the rest.
        assert_eq!(group.claim("fast", head(1, 41), 1, fast).len(), 20);
        assert_eq!(
            group.claim("fast", head(1, 41), 2, fast).len(),
            10,
            "half of what waits"
        );
    }

    #[test]
    fn a_late_nack_from_a_former_holder_does_not_take_the_event_back() {
        let mut group = Group::starting_at(1);
        let forever = ClaimOptions {
            retry_limit: -1,
            ..MANUAL
        };
        assert_eq!(group.claim("a", head(1, 2), 0, forever), vec![(1, 1)]);
        // a's lease runs out; b gets the event.
        assert_eq!(group.claim("b", head(1, 2), 100, forever), vec![(1, 2)]);
        group.settle(1, false, "a");
        let again = group.claim("a", head(1, 2), 101, forever);
        assert!(again.is_empty(), "a's nack was b's: {again:?}");
        // b leaves: what it held is due at once.
        group.leave("b");
        assert_eq!(group.claim("a", head(1, 2), 102, forever), vec![(1, 3)]);
    }

    #[test]
    fn names_and_payloads_are_checked() {
        assert!(validate_name("topic", "").is_err());
        assert!(validate_name("topic", &"x".repeat(256)).is_err());
        assert!(validate_name("topic", "orders\n").is_err());
        let big = Event {
            topic: "t".into(),
            payload: vec![0; PAYLOAD_LEN_MAX + 1],
            ..Event::default()
        };
        assert_eq!(validate_event(&big).unwrap_err().code(), Code::BadRequest);
    }
}
