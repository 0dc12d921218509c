//! What a node needs to build and run process services: its directories and the user
//! that builds and services run as.
//!
//! Builds run arbitrary `build.rs` code and services are user code. When the node runs
//! as root, both run as an unprivileged user ([`RunAs`], `nobody` unless the node is told
//! otherwise), each build in its own source directory and each instance in its own
//! working directory, all owned by that user.

use std::path::{Path, PathBuf};

/// The user builds and services run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// Its name (for messages).
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

impl RunAs {
    /// Looks `name` (or a numeric uid) up in `/etc/passwd`.
    pub fn lookup(name: &str) -> Result<Self, String> {
        let passwd = std::fs::read_to_string("/etc/passwd")
            .map_err(|e| format!("cannot read /etc/passwd to find user {name:?}: {e}"))?;
        passwd
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                let uid = fields.get(2)?.parse().ok()?;
                let gid = fields.get(3)?.parse().ok()?;
                Some(Self {
                    name: (*fields.first()?).to_owned(),
                    uid,
                    gid,
                })
            })
            .find(|u| u.name == name || u.uid.to_string() == name)
            .ok_or_else(|| format!("no user {name:?} in /etc/passwd"))
    }

    /// Whether this is root.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// The uid this process runs as (read from `/proc/self`, so no `libc` call is needed).
pub fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Where a node keeps what the runtime needs, under `<data-dir>/runtime` unless told
/// otherwise.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Unpacked sources, one directory per service revision.
    pub sources: PathBuf,
    /// The cargo target directory all builds on this node share.
    pub target: PathBuf,
    /// Downloaded executables, one per service revision.
    pub bin: PathBuf,
    /// A working directory per instance.
    pub work: PathBuf,
    /// `HOME` and `CARGO_HOME` of builds and services when they run as another user:
    /// inside the target directory, so crates downloaded once serve every build that
    /// shares it.
    pub home: PathBuf,
    /// The `cargo` to build with.
    pub cargo: PathBuf,
    /// The user builds and services run as; `None`: as the node's own user.
    pub run_as: Option<RunAs>,
    /// The node's proxy address, injected as `MICRO_PROXY` (`https://...` with TLS).
    pub proxy: String,
    /// With TLS, the CA certificate (PEM) the proxy's certificate chains to, injected as
    /// `MICRO_PROXY_CA_PEM` (the text, not a path: a service running as another user
    /// may not be able to read the node's files).
    pub proxy_ca: Option<String>,
}

impl HostConfig {
    /// The layout under `root`, building into `target` (default `root/target`).
    pub fn new(root: &Path, target: Option<PathBuf>, proxy: String) -> Self {
        let target = target.unwrap_or_else(|| root.join("target"));
        Self {
            sources: root.join("src"),
            home: target.join("micro-home"),
            target,
            bin: root.join("bin"),
            work: root.join("work"),
            cargo: find_cargo(),
            run_as: None,
            proxy,
            proxy_ca: None,
        }
    }

    /// Creates `dir` (and parents) owned by the [`RunAs`] user when there is one.
    pub fn make_dir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))?;
        }
        Ok(())
    }

    /// Gives `path` and everything under it to the [`RunAs`] user (sources it builds).
    pub fn give(&self, path: &Path) -> std::io::Result<()> {
        let Some(user) = &self.run_as else {
            return Ok(());
        };
        std::os::unix::fs::lchown(path, Some(user.uid), Some(user.gid))?;
        if path.is_dir() && !path.is_symlink() {
            for entry in std::fs::read_dir(path)? {
                self.give(&entry?.path())?;
            }
        }
        Ok(())
    }

    /// A command for `program` that runs as the [`RunAs`] user with its own `HOME`, in
    /// an environment of its own: nothing of the node's environment (its settings and
    /// secrets among them) reaches builds and services but `PATH` and, for the node's own
    /// user, where its toolchain lives.
    pub fn command(&self, program: &Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        command.env_clear();
        command.envs(std::env::vars_os().filter(|(key, _)| passed_on(key)));
        if let Some(user) = &self.run_as {
            command.uid(user.uid).gid(user.gid);
            command.env("HOME", &self.home);
            command.env("CARGO_HOME", self.home.join(".cargo"));
        } else {
            for var in ["HOME", "CARGO_HOME"] {
                if let Some(value) = std::env::var_os(var) {
                    command.env(var, value);
                }
            }
        }
        if let Some(rustup) = rustup_home() {
            command.env("RUSTUP_HOME", rustup);
        }
        command.stdin(std::process::Stdio::null());
        command.kill_on_drop(true);
        command
    }

    /// Checks that the [`RunAs`] user can run `cargo`, so a build fails with a clear
    /// message rather than a permission error deep inside.
    pub fn check_toolchain(&self) -> Result<(), String> {
        let Some(user) = &self.run_as else {
            return Ok(());
        };
        let reachable = std::process::Command::new(&self.cargo)
            .arg("--version")
            .uid(user.uid)
            .gid(user.gid)
            .env("HOME", &self.home)
            .env("CARGO_HOME", self.home.join(".cargo"))
            .envs(rustup_home().map(|r| ("RUSTUP_HOME", r)))
            .output();
        match reachable {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "user {} cannot run {}: {}",
                user.name,
                self.cargo.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!(
                "user {} cannot run {}: {e} (make the Rust toolchain reachable by that \
                 user, e.g. `chmod o+x` on the directories above it, or choose another \
                 user with --run-as)",
                user.name,
                self.cargo.display()
            )),
        }
    }
}

use std::os::unix::process::CommandExt as _;

/// Variables of the node's environment that builds and services get too: how to find
/// programs and the toolchain, locale, and how to reach crates.io (certificates,
/// proxies, cargo's network settings).
fn passed_on(key: &std::ffi::OsStr) -> bool {
    const EXACT: [&str; 13] = [
        "PATH",
        "TMPDIR",
        "LANG",
        "LC_ALL",
        "TZ",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ];
    const PREFIXES: [&str; 4] = ["RUSTUP_", "CARGO_HTTP_", "CARGO_NET_", "CARGO_REGISTRIES_"];
    let key = key.to_string_lossy();
    key != "RUSTUP_HOME"
        && (EXACT.contains(&key.as_ref()) || PREFIXES.iter().any(|p| key.starts_with(p)))
}

/// `cargo` as the node found it: `$CARGO` (set when the node runs under cargo), else the
/// first `cargo` on `PATH`, else `~/.cargo/bin/cargo`.
fn find_cargo() -> PathBuf {
    if let Some(cargo) = std::env::var_os("CARGO") {
        return PathBuf::from(cargo);
    }
    find_program("cargo").unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
        home.join(".cargo/bin/cargo")
    })
}

/// `name` on `PATH`.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The rustup home the node uses, passed on so another user's `cargo` (a rustup proxy)
/// finds the same toolchain.
fn rustup_home() -> Option<PathBuf> {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
        .filter(|p| p.is_dir())
}
