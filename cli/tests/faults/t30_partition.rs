//! Partitions: three nodes, each in its own network namespace on a bridge (made and
//! removed by the test; it needs root, and is skipped with a message otherwise). The
//! leader is cut off from its peers (blackhole routes both ways; the test's own
//! address still reaches every node):
//! - the majority elects a new leader and serves writes;
//! - the old leader refuses writes and linearizable reads within its deadline, and
//!   never answers with the value the majority has since overwritten;
//! - once healed, the cluster converges on one leader and the old leader serves the
//!   majority's writes.

use std::process::Command;
use std::time::Duration;

use micro_checkers::history::{Outcome, ReadValue};
use micro_cli::client::Client;
use micro_core::Namespace;
use tokio::time::Instant;

use crate::harness::{Cluster, serial};
use crate::workload::{put, read};

/// Whether the tests run as root.
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A bridge and three namespaces, each with one veth on the bridge; removed on drop.
struct Net {
    bridge: String,
    namespaces: Vec<String>,
    subnet: String,
}

impl Net {
    fn make() -> Result<Self, String> {
        let pid = std::process::id() % 100_000;
        let mut net = Self {
            bridge: format!("mb{pid}"),
            namespaces: Vec::new(),
            subnet: format!("10.77.{}", 20 + pid % 200),
        };
        ip(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.254/24", net.subnet),
            "dev",
            &net.bridge,
        ])?;
        ip(&["link", "set", &net.bridge, "up"])?;
        for i in 1..=3 {
            let ns = format!("micro{pid}-{i}");
            ip(&["netns", "add", &ns])?;
            net.namespaces.push(ns.clone());
            let (host, inside) = (format!("vh{pid}{i}"), format!("vn{pid}{i}"));
            ip(&[
                "link", "add", &host, "type", "veth", "peer", "name", &inside,
            ])?;
            ip(&["link", "set", &inside, "netns", &ns])?;
            ip(&["link", "set", &host, "master", &net.bridge])?;
            ip(&["link", "set", &host, "up"])?;
            ip(&["-n", &ns, "link", "set", &inside, "name", "eth0"])?;
            let addr = format!("{}.{i}/24", net.subnet);
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn host(&self, index: usize) -> String {
        format!("{}.{}", self.subnet, index + 1)
    }

    /// Cuts (or, with `heal`, restores) every path between node `a` and node `b`.
    fn cut(&self, a: usize, b: usize, heal: bool) {
        let verb = if heal { "del" } else { "add" };
        for (from, to) in [(a, b), (b, a)] {
            let target = format!("{}/32", self.host(to));
            ip(&[
                "-n",
                &self.namespaces[from],
                "route",
                verb,
                "blackhole",
                &target,
            ])
            .unwrap();
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

async fn connect(proxy: &str, token: &str) -> Client {
    Client::connect(proxy, Namespace::default())
        .await
        .unwrap()
        .with_token(Some(token.to_owned()))
}

#[test]
fn an_isolated_leader_steps_aside_the_majority_serves_and_healing_converges() {
    let _turn = serial();
    if !is_root() {
        println!("skipped: network namespaces need root");
        return;
    }
    let net = match Net::make() {
        Ok(net) => net,
        Err(err) => {
            println!("skipped: cannot make network namespaces here: {err}");
            return;
        }
    };
    let hosts = (0..3)
        .map(|i| (net.host(i), Some(net.namespaces[i].clone())))
        .collect();
    let mut cluster = Cluster::on(
        tempfile::tempdir().unwrap(),
        hosts,
        Some([8081, 8080, 8085]),
    );
    cluster.start_all();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let token = cluster.admin_token().await;
        let old = cluster
            .wait_leader(&[0, 1, 2], Duration::from_secs(30))
            .await;
        let old_i = usize::try_from(old - 1).unwrap();
        let majority: Vec<usize> = (0..3).filter(|i| *i != old_i).collect();
        let on_old = connect(&cluster.nodes[old_i].proxy, &token).await;
        let on_major = connect(&cluster.nodes[majority[0]].proxy, &token).await;
        put(&on_old, "k", "before").await.unwrap();

        println!("isolating leader {old}");
        let cut_at = Instant::now();
        for i in &majority {
            net.cut(old_i, *i, false);
        }

        let new = cluster
            .wait_leader_not(&majority, old, Duration::from_secs(15))
            .await;
        let elected = cut_at.elapsed();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(err) = put(&on_major, "k", "during").await {
            assert!(
                Instant::now() < deadline,
                "the majority does not serve: {err}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("new leader {new} elected {elected:?} after the cut");

        let asked = Instant::now();
        let refused = put(&on_old, "k", "minority").await;
        let took = asked.elapsed();
        let err = refused.expect_err("the isolated node acknowledged a write");
        assert!(
            took < Duration::from_secs(8),
            "the minority took {took:?} to refuse"
        );
        println!("minority refused a write in {took:?}: {}", err.message());
        match read(&on_old, "k").await {
            Outcome::Unknown => {}
            Outcome::Ok(Some(ReadValue::Found { value, .. })) if value == "during" => {}
            seen @ Outcome::Ok(_) => panic!("the isolated node served a stale read: {seen:?}"),
        }

        heal(&cluster, &net, &on_old, old_i).await;
    });
    for node in &mut cluster.nodes {
        node.kill();
    }
    drop(net);
}

/// Heals the partition of node `old_i`: one leader again, and the old leader serves the
/// majority's write.
async fn heal(cluster: &Cluster, net: &Net, on_old: &Client, old_i: usize) {
    for i in (0..3).filter(|i| *i != old_i) {
        net.cut(old_i, i, true);
    }
    let healed = Instant::now();
    let leader = cluster
        .wait_leader(&[0, 1, 2], Duration::from_secs(30))
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match read(on_old, "k").await {
            Outcome::Ok(Some(ReadValue::Found { value, .. })) if value == "during" => break,
            Outcome::Ok(seen) => panic!("after healing the old leader reads {seen:?}"),
            Outcome::Unknown => {
                assert!(Instant::now() < deadline, "the old leader does not serve");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    put(on_old, "k", "after").await.unwrap();
    println!(
        "healed: one leader ({leader}) after {:?}; the old leader serves",
        healed.elapsed()
    );
}
