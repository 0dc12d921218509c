//! The example node configs of deploy/systemd load as `micro-node --config` loads them,
//! and describe one cluster: ids 1 to 3, the same peers, each its own peer address,
//! TLS on. (scripts/check-deploy.sh checks the rest of deploy/.)

use std::path::Path;

use micro_cli::node::{NodeArgs, NodeConfig};

#[test]
fn the_three_vm_configs_describe_one_tls_cluster() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    let mut peer_lists = Vec::new();
    for id in 1..=3u64 {
        let args = NodeArgs {
            config: Some(dir.join(format!("node{id}.toml"))),
            ..NodeArgs::default()
        };
        let config = NodeConfig::resolve(args).unwrap();
        assert_eq!(config.node_id, id);
        assert_eq!(config.peers.get(&id), Some(&config.peer_addr));
        assert_eq!(config.data_dir, Path::new("/var/lib/micro/data"));
        assert!(config.tls.is_some(), "node{id}.toml turns TLS on");
        peer_lists.push(config.peers);
    }
    assert_eq!(peer_lists[0].len(), 3);
    assert!(peer_lists.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn the_version_names_the_formats_an_upgrade_must_match() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_micro-node"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let wanted = format!(
        "(data format {}, peer wire format {})",
        micro_core::kv::format::DATA_FORMAT,
        micro_cluster::WIRE_FORMAT
    );
    assert!(output.status.success() && text.contains(&wanted), "{text}");
}
