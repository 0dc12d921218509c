//! The broker across a three-node cluster through the CLI: fan-out to subscribers on
//! other nodes, and queue groups that give each message to exactly one member.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::harness::{drain, fails, ok};
use crate::t50_services::start_cluster;

#[test]
fn a_publish_on_one_node_reaches_every_node_and_queues_share_the_work() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = start_cluster(&dirs);
    let (_s1, news1) = nodes[0].spawn_micro(&["broker", "subscribe", "news"]);
    let (_s3, news3) = nodes[2].spawn_micro(&["broker", "subscribe", "news"]);
    let (_q1, jobs1) = nodes[0].spawn_micro(&["broker", "subscribe", "jobs", "--queue", "w"]);
    let (_q3, jobs3) = nodes[2].spawn_micro(&["broker", "subscribe", "jobs", "--queue", "w"]);
    let publish =
        |topic: &str, data: &str| ok(&nodes[1].micro(&["broker", "publish", topic, data]));

    // Subscriptions take a moment to open: probe until both fan-out subscribers hear.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut heard1, mut heard3) = (false, false);
    while !(heard1 && heard3) {
        assert!(
            Instant::now() < deadline,
            "the subscribers never heard a probe"
        );
        publish("news", "probe");
        heard1 |= !drain(&news1, Duration::from_millis(200)).is_empty();
        heard3 |= !drain(&news3, Duration::from_millis(200)).is_empty();
    }
    publish("news", "hello");
    assert!(drain(&news1, Duration::from_secs(2)).contains(&"hello".to_owned()));
    assert!(drain(&news3, Duration::from_secs(2)).contains(&"hello".to_owned()));

    // Queue probes until both members have one (each probe goes to one of them), then
    // each job goes to exactly one member, and both get some.
    let (mut member1, mut member3) = (false, false);
    while !(member1 && member3) {
        assert!(
            Instant::now() < deadline,
            "a queue member never got a probe"
        );
        publish("jobs", "probe");
        member1 |= !drain(&jobs1, Duration::from_millis(200)).is_empty();
        member3 |= !drain(&jobs3, Duration::from_millis(200)).is_empty();
    }
    drain(&jobs1, Duration::from_millis(300));
    drain(&jobs3, Duration::from_millis(300));
    for i in 0..20 {
        publish("jobs", &format!("job-{i}"));
    }
    let got1 = drain(&jobs1, Duration::from_secs(2));
    let got3 = drain(&jobs3, Duration::from_secs(1));
    let all: Vec<&String> = got1.iter().chain(&got3).collect();
    let unique: BTreeSet<&String> = all.iter().copied().collect();
    let expected: BTreeSet<String> = (0..20).map(|i| format!("job-{i}")).collect();
    assert_eq!(all.len(), 20, "duplicated or lost: {got1:?} {got3:?}");
    assert_eq!(unique, expected.iter().collect());
    assert!(!got1.is_empty() && !got3.is_empty(), "{got1:?} {got3:?}");

    // Bad input and no account: clear errors.
    let err = fails(&nodes[1].micro(&["broker", "publish", "", "x"]), 127);
    assert!(err.contains("topic"), "{err}");
    let anonymous = tempfile::tempdir().unwrap();
    let global = ["--proxy", nodes[1].proxy.as_str()];
    let err = fails(
        &crate::harness::micro_in(
            anonymous.path(),
            &global,
            &["broker", "publish", "news", "x"],
        ),
        2,
    );
    assert!(err.contains("micro login"), "{err}");
}
