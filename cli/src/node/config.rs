//! Node configuration: flags, then `MICRO_*` environment variables, then an optional
//! TOML file, then defaults (the first that sets a value wins).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::exit::CliError;

/// Where a node keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// RocksDB under the data dir: durable (the default).
    Rocksdb,
    /// Memory only: everything is lost when the node stops.
    Memory,
}

/// Where uploaded services run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// As supervised processes of the nodes (the default).
    #[default]
    Local,
    /// As Deployments in a Kubernetes cluster (a build with feature `kubernetes`).
    Kubernetes,
}

/// The flags of `micro-node` and `micro server`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NodeArgs {
    /// This node's id in the cluster [default: 1]
    #[arg(long, env = "MICRO_NODE_ID")]
    pub node_id: Option<u64>,
    /// Where the node keeps its data [default: ~/.micro/data/node-ID]
    #[arg(long, env = "MICRO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP API listen address [default: 127.0.0.1:8080]
    #[arg(long, env = "MICRO_API_ADDR")]
    pub api_addr: Option<String>,
    /// gRPC proxy listen address, where the CLI connects [default: 127.0.0.1:8081]
    #[arg(long, env = "MICRO_PROXY_ADDR")]
    pub proxy_addr: Option<String>,
    /// Peer address other cluster members reach this node at [default: 127.0.0.1:8085]
    #[arg(long, env = "MICRO_PEER_ADDR")]
    pub peer_addr: Option<String>,
    /// Storage engine [default: rocksdb]
    #[arg(long, env = "MICRO_STORAGE", value_enum)]
    pub storage: Option<StorageKind>,
    /// Founding members of a new cluster, this node included: ID=HOST:PORT,... (peer
    /// addresses). Every member gets the same list; the lowest id forms the cluster once
    #[arg(long, env = "MICRO_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Join a running cluster through the peer address of one of its members
    #[arg(long, env = "MICRO_JOIN")]
    pub join: Option<String>,
    /// Start without forming or joining a cluster; wait for `micro cluster add-node`
    #[arg(long, env = "MICRO_STANDBY")]
    pub standby: bool,
    /// Snapshot the state (and purge the log behind it) every N log entries [default: 5000]
    #[arg(long, env = "MICRO_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    /// The largest HTTP request body the API accepts, in bytes [default: 10 MiB]
    #[arg(long, env = "MICRO_API_BODY_LIMIT")]
    pub api_body_limit: Option<usize>,
    /// The password of `admin` (namespace micro), set when the cluster is first
    /// bootstrapped; later changes go through `micro auth` [default: micro]
    #[arg(long, env = "MICRO_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,
    /// How long events are kept after they are published, e.g. 24h, 7d, 90m
    /// [default: 24h]
    #[arg(long, env = "MICRO_EVENTS_RETENTION", value_parser = crate::duration::parse)]
    pub events_retention: Option<std::time::Duration>,
    /// The cargo target directory the runtime's builds share
    /// [default: DATA_DIR/runtime/target]
    #[arg(long, env = "MICRO_BUILD_DIR")]
    pub build_dir: Option<PathBuf>,
    /// The user builds and services run as [default: the node's own user; `nobody`
    /// when the node runs as root]
    #[arg(long, env = "MICRO_RUN_AS")]
    pub run_as: Option<String>,
    /// Space that must stay free on the data directory's disk, e.g. 256MiB, 1G, 0 (off):
    /// below it the node refuses writes (507 Insufficient Storage) until space is freed
    /// [default: 256MiB]
    #[arg(long, env = "MICRO_DISK_RESERVE", value_parser = crate::size::parse_bytes)]
    pub disk_reserve: Option<u64>,
    /// This node's certificate (PEM), signed by --tls-ca: with --tls-key and --tls-ca,
    /// the api and proxy speak TLS and the peer port mutual TLS (see `micro-node certs`)
    #[arg(long, env = "MICRO_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert
    #[arg(long, env = "MICRO_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// The cluster CA's certificate (PEM): only nodes whose certificate it signed may
    /// reach the peer port, and peers and proxies are verified against it
    #[arg(long, env = "MICRO_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Where uploaded services run: `local` (processes of the nodes) or `kubernetes`
    /// (Deployments; needs a build with `--features kubernetes`, see
    /// docs/KUBERNETES-RUNTIME.md) [default: local]
    #[arg(long, env = "MICRO_RUNTIME", value_enum)]
    pub runtime: Option<RuntimeKind>,
    /// With --runtime kubernetes: the image of the services' pods; it must hold
    /// /usr/local/bin/micro [default: micro-rust/micro:latest]
    #[arg(long, env = "MICRO_KUBE_IMAGE")]
    pub kube_image: Option<String>,
    /// With --runtime kubernetes: the prefix of the Kubernetes namespace of each Micro
    /// namespace [default: micro-]
    #[arg(long, env = "MICRO_KUBE_NAMESPACE_PREFIX")]
    pub kube_namespace_prefix: Option<String>,
    /// With --runtime kubernetes: the proxy address pods reach the nodes at, injected as
    /// MICRO_PROXY (e.g. a Service in front of the nodes: micro.micro.svc:8081)
    /// [default: this node's advertised proxy address]
    #[arg(long, env = "MICRO_KUBE_PROXY")]
    pub kube_proxy: Option<String>,
    /// How the node logs to stderr: `text` for people, `json` (one object per line)
    /// for log collectors (a flag or MICRO_LOG_FORMAT, not a config file key)
    #[arg(long, env = "MICRO_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// A TOML file with any of the settings above (keys as the flags, with `_`)
    #[arg(long, env = "MICRO_CONFIG")]
    pub config: Option<PathBuf>,
}

/// How a node's log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields, span).
    Json,
}

/// The settings a TOML config file may hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`NodeArgs::node_id`].
    pub node_id: Option<u64>,
    /// See [`NodeArgs::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`NodeArgs::api_addr`].
    pub api_addr: Option<String>,
    /// See [`NodeArgs::proxy_addr`].
    pub proxy_addr: Option<String>,
    /// See [`NodeArgs::peer_addr`].
    pub peer_addr: Option<String>,
    /// See [`NodeArgs::storage`].
    pub storage: Option<StorageKind>,
    /// See [`NodeArgs::peers`].
    pub peers: Option<Vec<String>>,
    /// See [`NodeArgs::join`].
    pub join: Option<String>,
    /// See [`NodeArgs::standby`].
    pub standby: Option<bool>,
    /// See [`NodeArgs::snapshot_every`].
    pub snapshot_every: Option<u64>,
    /// See [`NodeArgs::api_body_limit`].
    pub api_body_limit: Option<usize>,
    /// See [`NodeArgs::admin_password`].
    pub admin_password: Option<Secret>,
    /// See [`NodeArgs::events_retention`] (a duration string, as the flag).
    pub events_retention: Option<String>,
    /// See [`NodeArgs::build_dir`].
    pub build_dir: Option<PathBuf>,
    /// See [`NodeArgs::run_as`].
    pub run_as: Option<String>,
    /// See [`NodeArgs::disk_reserve`] (a size string, as the flag).
    pub disk_reserve: Option<String>,
    /// See [`NodeArgs::tls_cert`].
    pub tls_cert: Option<PathBuf>,
    /// See [`NodeArgs::tls_key`].
    pub tls_key: Option<PathBuf>,
    /// See [`NodeArgs::tls_ca`].
    pub tls_ca: Option<PathBuf>,
    /// See [`NodeArgs::runtime`].
    pub runtime: Option<RuntimeKind>,
    /// See [`NodeArgs::kube_image`].
    pub kube_image: Option<String>,
    /// See [`NodeArgs::kube_namespace_prefix`].
    pub kube_namespace_prefix: Option<String>,
    /// See [`NodeArgs::kube_proxy`].
    pub kube_proxy: Option<String>,
}

/// Where a node's TLS files are (all three or none are given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// The node's certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The cluster CA's certificate.
    pub ca: PathBuf,
}

impl TlsPaths {
    /// The TLS files from the flags, else the file; all three or none.
    fn resolve(args: &NodeArgs, file: &FileConfig) -> Result<Option<Self>, CliError> {
        let pick = |flag: &Option<PathBuf>, file: &Option<PathBuf>| flag.clone().or(file.clone());
        match (
            pick(&args.tls_cert, &file.tls_cert),
            pick(&args.tls_key, &file.tls_key),
            pick(&args.tls_ca, &file.tls_ca),
        ) {
            (Some(cert), Some(key), Some(ca)) => Ok(Some(Self { cert, key, ca })),
            (None, None, None) => Ok(None),
            _ => Err(CliError::usage(
                "TLS needs all of --tls-cert, --tls-key and --tls-ca (or none of them)",
            )),
        }
    }

    /// Reads and checks the files.
    pub fn load(&self) -> Result<micro_proto::tls::TlsConfig, CliError> {
        micro_proto::tls::TlsConfig::load(&self.cert, &self.key, &self.ca)
            .map_err(|e| CliError::usage(format!("TLS: {e}")))
    }
}

/// A secret setting: never printed, even in a debug dump of the configuration.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The admin password from the flag, else the file, else the default `micro`.
    fn admin(flag: Option<Self>, file: Option<Self>) -> Self {
        flag.or(file)
            .unwrap_or_else(|| Self(micro_core::auth::ADMIN_DEFAULT_PASSWORD.to_owned()))
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The one-line refusal of `--runtime kubernetes` by a build without the feature.
pub const NO_KUBERNETES: &str = "--runtime kubernetes: this binary was built without \
     Kubernetes support; rebuild it with `cargo build --release --features kubernetes`";

/// Where a node runs uploaded services, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RuntimeConfig {
    /// As processes of the nodes.
    #[default]
    Local,
    /// As Kubernetes Deployments.
    Kubernetes(KubeSettings),
}

/// The settings of `--runtime kubernetes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSettings {
    /// The pods' image.
    pub image: String,
    /// The prefix of each Kubernetes namespace.
    pub namespace_prefix: String,
    /// The proxy address pods use (`None`: the node's advertised one).
    pub proxy: Option<String>,
}

impl RuntimeConfig {
    /// The runtime from the flags, else the file, else local; refused with
    /// [`NO_KUBERNETES`] when this build cannot run it.
    fn resolve(args: &NodeArgs, file: &FileConfig) -> Result<Self, CliError> {
        let kind = args.runtime.or(file.runtime).unwrap_or_default();
        if kind == RuntimeKind::Local {
            return Ok(Self::Local);
        }
        if !cfg!(feature = "kubernetes") {
            return Err(CliError::usage(NO_KUBERNETES));
        }
        let namespace_prefix = args
            .kube_namespace_prefix
            .clone()
            .or_else(|| file.kube_namespace_prefix.clone())
            .unwrap_or_else(|| "micro-".to_owned());
        let valid = namespace_prefix.len() <= 32
            && namespace_prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && namespace_prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(CliError::usage(format!(
                "--kube-namespace-prefix must be at most 32 of a-z, 0-9 and -, starting with \
                 a letter, got {namespace_prefix:?}"
            )));
        }
        Ok(Self::Kubernetes(KubeSettings {
            image: args
                .kube_image
                .clone()
                .or_else(|| file.kube_image.clone())
                .unwrap_or_else(|| "micro-rust/micro:latest".to_owned()),
            namespace_prefix,
            proxy: args.kube_proxy.clone().or_else(|| file.kube_proxy.clone()),
        }))
    }
}

/// A node's resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The node id (non-zero).
    pub node_id: u64,
    /// The data directory.
    pub data_dir: PathBuf,
    /// HTTP API listen address.
    pub api_addr: String,
    /// gRPC proxy listen address.
    pub proxy_addr: String,
    /// Peer address.
    pub peer_addr: String,
    /// Storage engine.
    pub storage: StorageKind,
    /// Founding members (id -> peer address), empty for a single-member cluster.
    pub peers: BTreeMap<u64, String>,
    /// A member's peer address to join a running cluster through.
    pub join: Option<String>,
    /// Wait to be added instead of forming or joining a cluster.
    pub standby: bool,
    /// Log entries between snapshots; a fifth of them stay in the log behind each.
    pub snapshot_every: u64,
    /// The largest HTTP request body the API accepts (bytes).
    pub body_limit: usize,
    /// The first password of `admin`, used only when this node bootstraps auth.
    pub admin_password: Secret,
    /// How long events published through this node are kept.
    pub events_retention: std::time::Duration,
    /// The cargo target directory of runtime builds (`None`: under the data dir).
    pub build_dir: Option<PathBuf>,
    /// The user builds and services run as (`None`: the default, see
    /// [`NodeArgs::run_as`]).
    pub run_as: Option<String>,
    /// Bytes kept free on the data disk; writes are refused below (0: no check).
    pub disk_reserve: u64,
    /// TLS on every listener (`None`: plaintext).
    pub tls: Option<TlsPaths>,
    /// Where uploaded services run.
    pub runtime: RuntimeConfig,
}

/// The disk reserve from the flag, else the file, else 256 MiB.
fn disk_reserve(flag: Option<u64>, file: Option<String>) -> Result<u64, CliError> {
    match (flag, file) {
        (Some(flag), _) => Ok(flag),
        (None, Some(text)) => crate::size::parse_bytes(&text)
            .map_err(|e| CliError::usage(format!("disk_reserve: {e}"))),
        (None, None) => Ok(micro_cluster::DISK_RESERVE_DEFAULT),
    }
}

/// The events retention from the flag, else the file, else 24 hours.
fn retention(
    flag: Option<std::time::Duration>,
    file: Option<String>,
) -> Result<std::time::Duration, CliError> {
    match (flag, file) {
        (Some(flag), _) => Ok(flag),
        (None, Some(text)) => crate::duration::parse(&text)
            .map_err(|e| CliError::usage(format!("events_retention: {e}"))),
        (None, None) => Ok(std::time::Duration::from_millis(
            micro_core::events::RETENTION_DEFAULT_MS,
        )),
    }
}

/// The folder of the CLI's and node's files: `MICRO_HOME`, else `~/.micro`.
pub fn micro_home() -> PathBuf {
    if let Some(home) = std::env::var_os("MICRO_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from(".micro"), |h| Path::new(&h).join(".micro"))
}

impl NodeConfig {
    /// Resolves flags (which clap already merged with the environment), the config file
    /// and the defaults.
    pub fn resolve(args: NodeArgs) -> Result<Self, CliError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let tls = TlsPaths::resolve(&args, &file)?;
        let runtime = RuntimeConfig::resolve(&args, &file)?;
        let node_id = args.node_id.or(file.node_id).unwrap_or(1);
        if node_id == 0 {
            return Err(CliError::usage("--node-id must be at least 1"));
        }
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| micro_home().join("data").join(format!("node-{node_id}")));
        let peer_list = if args.peers.is_empty() {
            file.peers.unwrap_or_default()
        } else {
            args.peers
        };
        let peers = parse_peers(&peer_list)?;
        let peer_addr = args
            .peer_addr
            .or(file.peer_addr)
            .or_else(|| peers.get(&node_id).cloned());
        let config = Self {
            node_id,
            data_dir,
            api_addr: args
                .api_addr
                .or(file.api_addr)
                .unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            proxy_addr: args
                .proxy_addr
                .or(file.proxy_addr)
                .unwrap_or_else(|| "127.0.0.1:8081".to_owned()),
            peer_addr: peer_addr.unwrap_or_else(|| "127.0.0.1:8085".to_owned()),
            storage: args
                .storage
                .or(file.storage)
                .unwrap_or(StorageKind::Rocksdb),
            join: args.join.or(file.join),
            standby: args.standby || file.standby.unwrap_or(false),
            snapshot_every: args
                .snapshot_every
                .or(file.snapshot_every)
                .unwrap_or(5_000)
                .max(1),
            body_limit: args
                .api_body_limit
                .or(file.api_body_limit)
                .unwrap_or(micro_gateway::BODY_LIMIT_DEFAULT),
            admin_password: Secret::admin(args.admin_password, file.admin_password),
            events_retention: retention(args.events_retention, file.events_retention)?,
            build_dir: args.build_dir.or(file.build_dir),
            run_as: args.run_as.or(file.run_as),
            disk_reserve: disk_reserve(args.disk_reserve, file.disk_reserve)?,
            peers,
            tls,
            runtime,
        };
        if !config.peers.is_empty() && !config.peers.contains_key(&node_id) {
            return Err(CliError::usage(format!(
                "--peers must include this node ({node_id})"
            )));
        }
        config.check_modes()?;
        config.check_addresses()?;
        Ok(config)
    }

    /// At most one way of entering a cluster.
    fn check_modes(&self) -> Result<(), CliError> {
        let modes = [!self.peers.is_empty(), self.join.is_some(), self.standby];
        if modes.iter().filter(|m| **m).count() > 1 {
            return Err(CliError::usage(
                "give one of --peers (found a cluster), --join or --standby",
            ));
        }
        Ok(())
    }
}

impl NodeConfig {
    fn check_addresses(&self) -> Result<(), CliError> {
        for (flag, addr) in [
            ("--api-addr", &self.api_addr),
            ("--proxy-addr", &self.proxy_addr),
            ("--peer-addr", &self.peer_addr),
        ] {
            if addr
                .rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
            {
                return Err(CliError::usage(format!(
                    "{flag} must be HOST:PORT, got {addr:?}"
                )));
            }
        }
        Ok(())
    }
}

/// Parses `ID=HOST:PORT` entries.
fn parse_peers(entries: &[String]) -> Result<BTreeMap<u64, String>, CliError> {
    let mut peers = BTreeMap::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let parsed = entry
            .split_once('=')
            .and_then(|(id, addr)| Some((id.trim().parse::<u64>().ok()?, addr.trim())));
        let Some((id, addr)) = parsed.filter(|(id, addr)| *id > 0 && addr.contains(':')) else {
            return Err(CliError::usage(format!(
                "--peers entries are ID=HOST:PORT, got {entry:?}"
            )));
        };
        if peers.insert(id, addr.to_owned()).is_some() {
            return Err(CliError::usage(format!("--peers names node {id} twice")));
        }
    }
    Ok(peers)
}

fn read_file(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_owned();
        CliError::usage(format!("invalid config file {}: {first}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "node_id = 3\nproxy_addr = \"127.0.0.1:9001\"\nstorage = \"memory\"\n",
        )
        .unwrap();
        let args = NodeArgs {
            proxy_addr: Some("127.0.0.1:9002".into()),
            config: Some(path.clone()),
            ..NodeArgs::default()
        };
        let config = NodeConfig::resolve(args).unwrap();
        assert_eq!(
            (config.node_id, config.proxy_addr.as_str()),
            (3, "127.0.0.1:9002")
        );
        assert_eq!(
            (config.storage, config.api_addr.as_str()),
            (StorageKind::Memory, "127.0.0.1:8080")
        );
        assert!(config.data_dir.ends_with("node-3"));

        std::fs::write(&path, "nodeid = 3\n").unwrap();
        let err = NodeConfig::resolve(NodeArgs {
            config: Some(path),
            ..NodeArgs::default()
        })
        .unwrap_err();
        assert_eq!(err.code, crate::exit::USAGE);
        let bad = NodeArgs {
            api_addr: Some("8080".into()),
            ..NodeArgs::default()
        };
        assert!(NodeConfig::resolve(bad).is_err());
    }

    #[test]
    fn the_kubernetes_runtime_needs_the_feature() {
        let local = NodeConfig::resolve(NodeArgs::default()).unwrap();
        assert_eq!(local.runtime, RuntimeConfig::Local);
        let kube = NodeArgs {
            runtime: Some(RuntimeKind::Kubernetes),
            kube_proxy: Some("micro.micro.svc:8081".into()),
            ..NodeArgs::default()
        };
        let resolved = NodeConfig::resolve(kube.clone());
        if cfg!(feature = "kubernetes") {
            let expected = RuntimeConfig::Kubernetes(KubeSettings {
                image: "micro-rust/micro:latest".into(),
                namespace_prefix: "micro-".into(),
                proxy: Some("micro.micro.svc:8081".into()),
            });
            assert_eq!(resolved.unwrap().runtime, expected);
            let bad_prefix = NodeArgs {
                kube_namespace_prefix: Some("Micro_".into()),
                ..kube
            };
            assert!(NodeConfig::resolve(bad_prefix).is_err());
        } else {
            let err = resolved.unwrap_err();
            assert_eq!(err.message, NO_KUBERNETES);
            assert!(!err.message.contains('\n'), "one line");
        }
    }
}
