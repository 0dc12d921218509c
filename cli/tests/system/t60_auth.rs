//! Auth through every door: the CLI (login, tokens under MICRO_HOME, auth commands),
//! the HTTP api (bearer tokens, 401/403), and gRPC clients of the proxy; and the
//! namespace isolation matrix (store, registry, a service, config, broker, events).

use std::time::{Duration, Instant};

use micro_proto::registry as reg;
use micro_proto::runtime as rt;
use micro_proto::store as st;
use tonic::transport::Channel;

use crate::harness::{Node, fails, http, micro_in, ok, stderr, stdout};

const SECRET: &str = "Sup3r-s3cret-xyz";

/// The words of a command line (no quoting: for arguments without spaces).
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Waits until `check` holds (a registration to show, say).
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn lock_down_then_open_one_service_while_the_store_still_demands_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    let node = Node::start_logging(&dir.path().join("data"), &log);
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| micro_in(home.path(), &["--proxy", &node.proxy], args);

    // Before logging in, the CLI says how to.
    let err = fails(&cli(&["store", "read", "k"]), 2);
    assert!(err.contains("micro login"), "{err}");
    let err = fails(&cli(&["user", "token"]), 2);
    assert!(err.contains("micro login"), "{err}");

    // Login: the default-password warning goes to stderr, never stdout.
    node.login();
    let login = cli(&["login", "--email", "admin", "--password", "micro"]);
    let out = ok(&login);
    assert!(out.contains("Logged in as admin"), "{out}");
    assert!(!out.contains("warning"), "{out}");
    assert!(stderr(&login).contains("default password"));
    let token = ok(&cli(&["user", "token"])).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    ok(&cli(&["store", "write", "k", "v"]));

    ok(&cli(&["run", "helloworld"]));
    let call = |headers: &[(&str, &str)]| {
        http(
            &node.api,
            "POST",
            "/helloworld/call",
            headers,
            br#"{"name":"John"}"#,
        )
    };
    until("helloworld to answer", || call(&[]).0 == 200);

    // Lock down: an account is needed for everything, at once.
    ok(&cli(&words(
        "auth create rule onlyloggedin --scope * --resource *:*:*",
    )));
    ok(&cli(&words("auth delete rule default")));
    let (status, body) = call(&[]);
    assert_eq!(status, 401, "{body}");
    let bearer = format!("Bearer {token}");
    let admin = [("authorization", bearer.as_str())];
    assert_eq!(call(&admin), (200, r#"{"msg":"Hello John"}"#.to_owned()));
    let cookie = format!("micro-token={token}");
    assert_eq!(call(&[("cookie", cookie.as_str())]).0, 200);
    assert_eq!(call(&[("authorization", "Basic YWRtaW46bWljcm8=")]).0, 401);

    // A public rule for helloworld: it opens; the store still wants an account.
    let public = [
        "auth",
        "create",
        "rule",
        "hw",
        "--scope",
        "",
        "--resource",
        "service:helloworld:*",
    ];
    ok(&cli(&public));
    assert_eq!(call(&[]).0, 200);
    let store_read = |headers: &[(&str, &str)]| {
        http(&node.api, "POST", "/store/read", headers, br#"{"key":"k"}"#).0
    };
    assert_eq!(store_read(&[]), 401);
    assert_eq!(store_read(&admin), 200);
    let rules = ok(&cli(&["auth", "list", "rules"]));
    assert!(
        rules.contains("onlyloggedin") && rules.contains("<public>") && !rules.contains("default"),
        "{rules}"
    );

    secrets_stay_secret(&cli, dir.path(), &token);
}

/// A new account's secret is shown once, then never: not in lists, logs or files; and a
/// logout forgets the token.
fn secrets_stay_secret(
    cli: &dyn Fn(&[&str]) -> std::process::Output,
    dir: &std::path::Path,
    token: &str,
) {
    // A new account's secret is shown once, then never: not in lists, logs or files.
    let created = ok(&cli(&[
        "auth", "create", "account", "carol", "--secret", SECRET,
    ]));
    assert!(created.contains(SECRET));
    let accounts = ok(&cli(&["auth", "list", "accounts", "--output", "json"]));
    assert!(
        accounts.contains("carol") && !accounts.contains(SECRET),
        "{accounts}"
    );
    node_files_never_hold(dir, SECRET);
    node_files_never_hold(dir, token);

    // Logout forgets the token; the CLI then fails clearly again.
    ok(&cli(&["logout"]));
    let err = fails(&cli(&["store", "read", "k"]), 2);
    assert!(err.contains("micro login"), "{err}");
}

/// Fails if any file under `dir` (data files and the node's log) holds `needle`.
pub(crate) fn node_files_never_hold(dir: &std::path::Path, needle: &str) {
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!found, "{} holds a secret in clear", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_refresh_token_dies_with_a_secret_change_and_a_deleted_account_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    node.login();
    ok(&node.micro(&[
        "auth", "create", "account", "dave", "--secret", "first", "--scopes", "admin",
    ]));
    let home = tempfile::tempdir().unwrap();
    let dave = |args: &[&str]| micro_in(home.path(), &["--proxy", &node.proxy], args);
    ok(&dave(&["login", "--email", "dave", "--password", "first"]));
    let token = ok(&dave(&["user", "token"])).trim().to_owned();
    let tokens = std::fs::read_to_string(home.path().join("tokens.json")).unwrap();
    let refresh: serde_json::Value = serde_json::from_str(&tokens).unwrap();
    let refresh = refresh[format!("{}/micro", node.proxy)]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&dave(&[
        "user",
        "set",
        "password",
        "--old-password",
        "first",
        "--new-password",
        "second",
    ]));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let channel = channel(&node.proxy).await;
        let mut auth = micro_proto::auth::auth_client::AuthClient::new(channel.clone());
        let refreshed = auth
            .token(micro_proto::auth::TokenRequest {
                refresh_token: refresh,
                ..Default::default()
            })
            .await;
        assert_eq!(refreshed.unwrap_err().code(), tonic::Code::Unauthenticated);
        // The access token stays good until the account goes.
        let mut store = st::store_client::StoreClient::new(channel);
        let read = st::ReadRequest {
            key: "x".into(),
            options: None,
        };
        let err = store
            .read(authed(Some(&token), "micro", read.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
        ok(&node.micro(&["auth", "delete", "account", "dave"]));
        let err = store
            .read(authed(Some(&token), "micro", read))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    });
}

pub(crate) async fn channel(proxy: &str) -> Channel {
    Channel::from_shared(format!("http://{proxy}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// `message` as a request of namespace `ns`, with `token` if any.
pub(crate) fn authed<T>(token: Option<&str>, ns: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("micro-namespace", ns.parse().unwrap());
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The expected outcome of one matrix cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Allowed,
    Unauthenticated,
    Denied,
}

fn outcome<T>(result: &Result<T, tonic::Status>) -> Want {
    match result {
        Ok(_) => Want::Allowed,
        Err(s) if s.code() == tonic::Code::Unauthenticated => Want::Unauthenticated,
        Err(s) if s.code() == tonic::Code::PermissionDenied => Want::Denied,
        // A refusal for any other reason would hide what is being tested.
        Err(s) => panic!("unexpected status {s:?}"),
    }
}

/// One caller: a name for messages and its token (none: anonymous).
struct Caller {
    name: &'static str,
    token: Option<String>,
}

#[test]
fn namespaces_isolate_store_registry_and_services_unless_a_rule_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    node.login();
    let callers = matrix_callers(&node);
    use Want::{Allowed as A, Denied as D, Unauthenticated as U};
    // Rows: [store read, store write, registry read, registry write, service call,
    // service run, config read, config write, broker subscribe, broker publish, events
    // read, events publish], per caller in the order above.
    let expected_a = [[A; 12], [D; 12], [U; 12], [D; 12]];
    let expected_b = [
        [D, D, D, D, A, D, D, D, D, D, D, D],
        [A; 12],
        [U, U, U, U, A, U, U, U, U, U, U, U],
        [A; 12],
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (ns, expected) in [("a", expected_a), ("b", expected_b)] {
        for (caller, want) in callers.iter().zip(expected) {
            let got = runtime.block_on(matrix_row(&node, ns, caller.token.as_deref()));
            assert_eq!(got, want, "{} in namespace {ns}", caller.name);
        }
    }
}

/// The matrix's callers, after setting up: alice administers namespace a, bob
/// namespace b; a is locked down to its own accounts; helloworld runs in both.
fn matrix_callers(node: &Node) -> [Caller; 4] {
    let create = |ns: &str, id: &str, secret: &str| {
        let account = format!("auth create account {id} --secret {secret} --scopes admin");
        ok(&node.micro_with(&["--namespace", ns], &words(&account)));
    };
    create("a", "alice", "pa");
    create("b", "bob", "pb");
    let login = |ns: &str, id: &str, secret: &str| {
        let home = tempfile::tempdir().unwrap();
        let global = ["--proxy", node.proxy.as_str(), "--namespace", ns];
        ok(&micro_in(
            home.path(),
            &global,
            &["login", "--email", id, "--password", secret],
        ));
        let token = ok(&micro_in(home.path(), &global, &["user", "token"]));
        (home, token.trim().to_owned())
    };
    let (a_home, alice) = login("a", "alice", "pa");
    let (_b_home, bob) = login("b", "bob", "pb");
    let as_alice = |line: &str| {
        let global = ["--proxy", node.proxy.as_str(), "--namespace", "a"];
        ok(&micro_in(a_home.path(), &global, &words(line)));
    };
    as_alice("auth create rule members --scope * --resource *:*:*");
    as_alice("auth delete rule default");
    as_alice("run helloworld");
    ok(&node.micro_with(&["--namespace", "b"], &["run", "helloworld"]));
    // The rules of a are a's alone: b's still has its default.
    let b_rules = ok(&node.micro_with(&["--namespace", "b"], &["auth", "list", "rules"]));
    assert!(b_rules.contains("default"), "{b_rules}");
    [
        Caller {
            name: "alice (a)",
            token: Some(alice),
        },
        Caller {
            name: "bob (b)",
            token: Some(bob),
        },
        Caller {
            name: "anonymous",
            token: None,
        },
        Caller {
            name: "admin (micro)",
            token: Some(node.token()),
        },
    ]
}

/// What one caller may do in namespace `ns`: store read and write, registry read and
/// write, a service call (over HTTP), a service run (runtime Create), config get and
/// set, broker subscribe and publish, events read and publish.
async fn matrix_row(node: &Node, ns: &str, token: Option<&str>) -> [Want; 12] {
    let channel = channel(&node.proxy).await;
    let [read, write] = store_row(&channel, ns, token).await;
    let [list, register] = registry_row(&channel, ns, token).await;
    let run = run_cell(&channel, ns, token).await;
    let [get, set] = config_row(&channel, ns, token).await;
    let [subscribe, publish] = broker_row(&channel, ns, token).await;
    let [events_read, events_publish] = events_row(&channel, ns, token).await;
    let call = call_over_http(node, ns, token);
    [
        read,
        write,
        list,
        register,
        call,
        run,
        get,
        set,
        subscribe,
        publish,
        events_read,
        events_publish,
    ]
}

async fn events_row(channel: &Channel, ns: &str, token: Option<&str>) -> [Want; 2] {
    use micro_proto::events as ev;
    let publish = ev::PublishRequest {
        topic: "matrix".into(),
        ..Default::default()
    };
    let publish = ev::stream_client::StreamClient::new(channel.clone())
        .publish(authed(token, ns, publish))
        .await;
    let read = ev::ReadRequest {
        topic: "matrix".into(),
        ..Default::default()
    };
    let read = ev::store_client::StoreClient::new(channel.clone())
        .read(authed(token, ns, read))
        .await;
    [outcome(&read), outcome(&publish)]
}

async fn broker_row(channel: &Channel, ns: &str, token: Option<&str>) -> [Want; 2] {
    use micro_proto::broker as br;
    let mut broker = br::broker_client::BrokerClient::new(channel.clone());
    let subscribe = br::SubscribeRequest {
        topic: "matrix".into(),
        queue: String::new(),
    };
    let subscribe = broker.subscribe(authed(token, ns, subscribe)).await;
    let publish = br::PublishRequest {
        topic: "matrix".into(),
        message: Some(br::Message::default()),
    };
    let publish = broker.publish(authed(token, ns, publish)).await;
    [outcome(&subscribe), outcome(&publish)]
}

async fn config_row(channel: &Channel, ns: &str, token: Option<&str>) -> [Want; 2] {
    use micro_proto::config as cf;
    let mut config = cf::config_client::ConfigClient::new(channel.clone());
    let value = cf::Value {
        data: r#"{"k":1}"#.into(),
        format: "json".into(),
    };
    let set = cf::SetRequest {
        namespace: ns.into(),
        path: "matrix".into(),
        value: Some(value),
        options: None,
    };
    let set = config.set(authed(token, ns, set)).await;
    let get = cf::GetRequest {
        namespace: ns.into(),
        path: "matrix".into(),
        options: None,
    };
    let get = match config.get(authed(token, ns, get)).await {
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        other => other.map(|_| ()),
    };
    [outcome(&get), outcome(&set)]
}

async fn store_row(channel: &Channel, ns: &str, token: Option<&str>) -> [Want; 2] {
    let mut store = st::store_client::StoreClient::new(channel.clone());
    let record = st::Record {
        key: "k".into(),
        value: b"v".to_vec(),
        ..Default::default()
    };
    let write = store
        .write(authed(
            token,
            ns,
            st::WriteRequest {
                record: Some(record),
                options: None,
            },
        ))
        .await;
    // Writes go first so the reads find something (a missing key would be 404).
    let read = store
        .read(authed(
            token,
            ns,
            st::ReadRequest {
                key: "k".into(),
                options: None,
            },
        ))
        .await;
    let read = match read {
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        other => other.map(|_| ()),
    };
    [outcome(&read), outcome(&write)]
}

async fn registry_row(channel: &Channel, ns: &str, token: Option<&str>) -> [Want; 2] {
    let mut registry = reg::registry_client::RegistryClient::new(channel.clone());
    let probe = reg::Service {
        name: "probe".into(),
        version: "1".into(),
        nodes: vec![reg::Node {
            id: "probe-1".into(),
            address: "127.0.0.1:1".into(),
            ..Default::default()
        }],
        options: Some(reg::Options {
            ttl: 60,
            domain: ns.into(),
        }),
        ..Default::default()
    };
    let register = registry.register(authed(token, ns, probe)).await;
    let list = reg::ListRequest {
        options: Some(reg::Options {
            ttl: 0,
            domain: ns.into(),
        }),
    };
    let list = registry.list_services(authed(token, ns, list)).await;
    [outcome(&list), outcome(&register)]
}

async fn run_cell(channel: &Channel, ns: &str, token: Option<&str>) -> Want {
    let mut runtime = rt::runtime_client::RuntimeClient::new(channel.clone());
    let service = rt::Service {
        name: "helloworld".into(),
        ..Default::default()
    };
    let create = rt::CreateRequest {
        resource: Some(rt::Resource {
            service: Some(service),
            ..Default::default()
        }),
        options: Some(rt::CreateOptions {
            namespace: ns.into(),
            ..Default::default()
        }),
    };
    // Already running (started before the matrix) means the checks let it through.
    let run = match runtime.create(authed(token, ns, create)).await {
        Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
        other => other.map(|_| ()),
    };
    outcome(&run)
}

/// Calls helloworld in `ns` over HTTP, waiting for it to be running there (someone
/// allowed to has started it by now, or it never will be: then 404 would be a bug).
fn call_over_http(node: &Node, ns: &str, token: Option<&str>) -> Want {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("micro-namespace", ns)];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer.as_str()));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http(
            &node.api,
            "POST",
            "/helloworld/call",
            &headers,
            br#"{"name":"x"}"#,
        );
        match status {
            200 => return Want::Allowed,
            401 => return Want::Unauthenticated,
            403 => return Want::Denied,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => panic!("helloworld in {ns}: {status} {body}"),
        }
    }
}

#[test]
fn a_wrong_password_and_a_forged_token_are_refused_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    node.login();
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| micro_in(home.path(), &["--proxy", &node.proxy], args);
    let err = fails(
        &cli(&["login", "--email", "admin", "--password", "nope"]),
        2,
    );
    assert!(err.contains("wrong account or secret"), "{err}");
    // The password can come on stdin when it is not a terminal.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_micro"))
        .args(["--proxy", &node.proxy, "login", "--email", "admin"])
        .env("MICRO_HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"micro\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        stdout(&output).contains("Logged in as admin"),
        "{}",
        stderr(&output)
    );
    let token = ok(&cli(&["user", "token"])).trim().to_owned();
    let mut forged = token.into_bytes();
    let last = forged.len() - 3;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let bearer = format!("Bearer {forged}");
    let (status, body) = http(
        &node.api,
        "POST",
        "/helloworld/call",
        &[("authorization", bearer.as_str())],
        b"{}",
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not valid"), "{body}");
}

#[test]
fn the_cli_refreshes_an_expiring_login_and_keeps_the_current_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    node.login();
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| micro_in(home.path(), &["--proxy", &node.proxy], args);
    ok(&cli(&words("login --email admin --password micro")));
    let path = home.path().join("tokens.json");
    let key = format!("{}/micro", node.proxy);
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    // Make the stored login look about to expire: the next command refreshes it first.
    // (Had it not been refreshed, the write would go anonymously and fail with 401.)
    let mut tokens = read();
    tokens[&key]["expiry"] = serde_json::json!(0);
    std::fs::write(&path, tokens.to_string()).unwrap();
    ok(&cli(&words("store write k v")));
    assert!(read()[&key]["expiry"].as_i64().unwrap() > 0);

    // The current namespace sticks until changed; a micro admin's login serves it.
    assert_eq!(ok(&cli(&words("user namespace"))), "micro\n");
    ok(&cli(&words("user namespace set team-a")));
    assert_eq!(ok(&cli(&words("user namespace"))), "team-a\n");
    assert!(ok(&cli(&["user"])).contains("namespace: team-a"));
    ok(&cli(&words("store write only-in-a x")));
    assert_eq!(ok(&cli(&words("store read only-in-a"))), "x\n");
    fails(&cli(&words("--namespace micro store read only-in-a")), 127);
}

#[test]
fn core_names_other_namespaces_options_and_stale_tokens_do_not_get_around_the_checks() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    node.login();
    let [_alice, bob, _anonymous, admin] = matrix_callers(&node);
    let (bob, admin) = (bob.token.unwrap(), admin.token.unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut registry = reg::registry_client::RegistryClient::new(channel(&node.proxy).await);
        // A look-alike `store` in b would catch calls (and tokens) meant for the real one.
        let fake = reg::Service {
            name: "store".into(),
            version: "1".into(),
            nodes: vec![reg::Node {
                id: "fake".into(),
                address: "127.0.0.1:1".into(),
                ..Default::default()
            }],
            options: Some(reg::Options {
                ttl: 60,
                domain: "b".into(),
            }),
            ..Default::default()
        };
        let err = registry
            .register(authed(Some(&bob), "b", fake))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
        // Naming a's registry in the options while the header says micro: a's rules
        // (members only) still apply, so the micro admin is refused as with the header.
        let list = reg::ListRequest {
            options: Some(reg::Options {
                ttl: 0,
                domain: "a".into(),
            }),
        };
        let err = registry
            .list_services(authed(Some(&admin), "micro", list))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    });
    // A stale or foreign token does not stop a login; another scheme than Bearer is 401.
    let login = br#"{"id":"admin","secret":"micro"}"#;
    let stale = [("authorization", "Bearer not.a.token")];
    let (status, body) = http(&node.api, "POST", "/auth/auth/token", &stale, login);
    assert_eq!(status, 200, "{body}");
    let basic = [("authorization", "Basic YWRtaW46bWljcm8=")];
    let (status, body) = http(&node.api, "POST", "/helloworld/call", &basic, b"{}");
    assert_eq!(status, 401, "{body}");
}
