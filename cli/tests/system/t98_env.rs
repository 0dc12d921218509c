//! Environments: `micro env add/set/get/del`, `--env` for one command, logins that
//! follow the proxy address, and the current namespace per environment.

use crate::harness::{Node, fails, micro_in, ok};

/// Logs in through `global`, retrying while the node bootstraps auth.
fn login(cli: &dyn Fn(&[&str], &[&str]) -> std::process::Output, global: &[&str]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = cli(
            global,
            &["login", "--email", "admin", "--password", "micro"],
        );
        if out.status.success() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cannot log in: {}",
            crate::harness::stderr(&out)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn environments_switch_proxies_and_logins_follow_the_address() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = Node::start(dirs[0].path());
    let b = Node::start(dirs[1].path());
    let home = tempfile::tempdir().unwrap();
    let cli = |global: &[&str], args: &[&str]| micro_in(home.path(), global, args);
    ok(&cli(&[], &["env", "add", "a", &a.proxy]));
    ok(&cli(
        &[],
        &["env", "add", "b", &b.proxy, "--description", "the other"],
    ));
    let listed = ok(&cli(&[], &["env"]));
    assert_eq!(listed, "* local\n  a\n  b\n");
    ok(&cli(&[], &["env", "set", "a"]));
    assert_eq!(ok(&cli(&[], &["env", "get"])), "a\n");

    // Every command goes to the current environment's proxy.
    login(&cli, &[]);
    ok(&cli(&[], &["store", "write", "where", "a"]));
    assert_eq!(ok(&cli(&[], &["store", "read", "where"])), "a\n");
    // --proxy at the same address shares the login.
    assert_eq!(
        ok(&cli(&["--proxy", &a.proxy], &["store", "read", "where"])),
        "a\n"
    );
    // Another environment, another address: another login.
    let err = fails(&cli(&["--env", "b"], &["store", "read", "where"]), 2);
    assert!(err.contains("micro login"), "{err}");
    login(&cli, &["--env", "b"]);
    let err = fails(&cli(&["--env", "b"], &["store", "read", "where"]), 127);
    assert!(err.contains("not found"), "node b has its own store: {err}");
    assert_eq!(
        ok(&cli(&[], &["store", "read", "where"])),
        "a\n",
        "--env was for one command"
    );

    // The current namespace is per environment.
    ok(&cli(&[], &["user", "namespace", "set", "team"]));
    assert_eq!(ok(&cli(&[], &["user", "namespace"])), "team\n");
    assert_eq!(ok(&cli(&["--env", "b"], &["user", "namespace"])), "micro\n");

    let err = fails(&cli(&[], &["env", "set", "nosuch"]), 64);
    assert!(err.contains("micro env add nosuch"), "{err}");
    fails(&cli(&[], &["env", "del", "local"]), 64);
    ok(&cli(&[], &["env", "del", "a"]));
    assert_eq!(ok(&cli(&[], &["env", "get"])), "local\n");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&cli(&[], &["env", "list", "--output", "json"]))).unwrap();
    assert_eq!(listed[1]["name"], "b");
    assert_eq!(listed[1]["proxy"], b.proxy.as_str());
    assert_eq!(listed[1]["description"], "the other");
}

#[test]
fn a_misspelled_command_gets_a_suggestion_and_shells_get_completions() {
    let home = tempfile::tempdir().unwrap();
    // No node: the suggestion does not need one.
    let nowhere = ["--proxy", "127.0.0.1:1"];
    let err = fails(&micro_in(home.path(), &nowhere, &["statuss"]), 64);
    assert!(err.contains("did you mean `micro status`"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let err = fails(&node.micro(&["strore", "list"]), 64);
    assert!(err.contains("did you mean `micro store`"), "{err}");
    // Registered services are candidates too.
    let err = fails(&node.micro(&["regstry", "listServices"]), 64);
    assert!(err.contains("did you mean `micro registry`"), "{err}");
    for (shell, marker) in [
        ("bash", "complete -F _micro"),
        ("zsh", "#compdef micro"),
        ("fish", "complete -c micro"),
    ] {
        let script = ok(&micro_in(home.path(), &[], &["completion", shell]));
        assert!(script.contains(marker), "{shell}: {}", &script[..200]);
        assert!(script.contains("env"), "{shell} completes the commands");
    }
    fails(&micro_in(home.path(), &[], &["completion", "nosh"]), 64);
}
