//! `micro cell --build KEY`: what each pod of the Kubernetes runtime runs (the
//! project image's `/usr/local/bin/micro cell`, as Micro v3's "cells" ran a service).
//!
//! ```text
//! env from the pod spec: MICRO_PROXY, MICRO_NAMESPACE, MICRO_AUTH_ID/SECRET (Secret),
//!                        MICRO_PROXY_CA_PEM (Secret, with TLS)
//! connect to MICRO_PROXY (retried: the proxy may not be reachable yet)
//!   ─> log in as the service's own account ─> store.BlobStore/Read KEY
//!   ─> DIR/service (0755) ─> exec it, in place of this process, same environment
//! ```
//!
//! The service account may read the blobs of its own namespace (a service account is
//! an admin of its namespace, as in Micro v3), which holds its build. Exec-ing, rather
//! than running a child, makes the service the container's main process: it gets the
//! kubelet's SIGTERM itself, deregisters and drains.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use micro_core::Namespace;
use micro_proto::store as pb;
use micro_proto::store::blob_store_client::BlobStoreClient;

use crate::client::Client;
use crate::exit::{CliError, OTHER};

/// How often connecting and logging in are tried before the pod gives up (and
/// Kubernetes restarts it).
const ATTEMPTS_MAX: u32 = 30;
/// The wait between two attempts.
const ATTEMPT_EVERY: Duration = Duration::from_secs(1);
/// The largest executable fetched.
const EXECUTABLE_LEN_MAX: u64 = 1024 * 1024 * 1024;

/// `micro cell`.
#[derive(Debug, clap::Args)]
pub struct CellArgs {
    /// The blob of the built executable (build://NAME:VERSION#REVISION)
    #[arg(long, env = "MICRO_CELL_BUILD")]
    build: String,
    /// Where the executable is written
    #[arg(long, env = "MICRO_CELL_DIR", default_value = "/tmp/micro-cell")]
    dir: PathBuf,
}

/// The global flags the cell uses: `--proxy` (`MICRO_PROXY`), `--proxy-ca`
/// (`MICRO_PROXY_CA`, a file) and `--namespace` (`MICRO_NAMESPACE`).
pub(super) type Globals<'a> = (&'a Option<String>, &'a Option<PathBuf>, &'a Option<String>);

/// Fetches the executable and becomes it; returns only on failure.
pub(super) async fn run(globals: Globals<'_>, args: CellArgs) -> Result<(), CliError> {
    let (proxy, proxy_ca, namespace) = globals;
    let proxy = proxy.as_deref().ok_or_else(|| {
        CliError::usage("micro cell needs MICRO_PROXY (or --proxy): the node proxy to fetch from")
    })?;
    let namespace = Namespace::new(
        namespace
            .as_deref()
            .unwrap_or(micro_core::namespace::DEFAULT_NAMESPACE),
    )
    .map_err(|e| CliError::usage(e.to_string()))?;
    std::fs::create_dir_all(&args.dir).map_err(|e| io_error("cannot create", &args.dir, &e))?;
    let ca = match (proxy_ca, std::env::var("MICRO_PROXY_CA_PEM").ok()) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(pem)) if !pem.trim().is_empty() => {
            let path = args.dir.join("proxy-ca.pem");
            std::fs::write(&path, pem).map_err(|e| io_error("cannot write", &path, &e))?;
            Some(path)
        }
        (None, _) => None,
    };
    let client = connect(proxy, &namespace, ca.as_deref()).await?;
    let executable = args.dir.join("service");
    let size = fetch(&client, &args.build, &executable).await?;
    // The pod's log shows what the cell did before the service's own lines.
    eprintln!("micro cell: starting {} ({} bytes)", args.build, size);
    // exec returns only if the executable could not be started.
    let err = std::process::Command::new(&executable).exec();
    Err(io_error("cannot execute", &executable, &err))
}

fn io_error(what: &str, path: &Path, err: &std::io::Error) -> CliError {
    CliError::new(OTHER, format!("{what} {}: {err}", path.display()))
}

/// A client of `proxy`, logged in as `MICRO_AUTH_ID` when given, after up to
/// [`ATTEMPTS_MAX`] tries.
async fn connect(
    proxy: &str,
    namespace: &Namespace,
    ca: Option<&Path>,
) -> Result<Client, CliError> {
    let id = std::env::var("MICRO_AUTH_ID")
        .ok()
        .filter(|v| !v.is_empty());
    let secret = std::env::var("MICRO_AUTH_SECRET").unwrap_or_default();
    let mut attempt = 1;
    loop {
        let result = async {
            let client = Client::connect_tls(proxy, namespace.clone(), ca).await?;
            match &id {
                Some(id) => client.logged_in(id, &secret).await,
                None => Ok(client),
            }
        }
        .await;
        match result {
            Ok(client) => return Ok(client),
            // Wrong credentials do not get better by waiting.
            Err(err) if err.code == crate::exit::UNAUTHORIZED || attempt >= ATTEMPTS_MAX => {
                return Err(err);
            }
            Err(err) => {
                eprintln!("micro cell: attempt {attempt}: {}; retrying", err.message);
                attempt += 1;
                tokio::time::sleep(ATTEMPT_EVERY).await;
            }
        }
    }
}

/// Writes blob `key` to `path` (through a temporary file), executable; its size.
async fn fetch(client: &Client, key: &str, path: &Path) -> Result<u64, CliError> {
    let mut blobs = BlobStoreClient::new(client.channel())
        .max_decoding_message_size(micro_gateway::MESSAGE_LEN_MAX);
    let request = pb::BlobReadRequest {
        key: key.to_owned(),
        options: Some(pb::BlobOptions {
            namespace: client.namespace().to_string(),
            ..pb::BlobOptions::default()
        }),
    };
    let mut parts = blobs
        .read(client.request(request))
        .await
        .map_err(|s| client.error(&s))?
        .into_inner();
    let temp = path.with_extension("part");
    let mut file =
        std::fs::File::create(&temp).map_err(|e| io_error("cannot create", &temp, &e))?;
    let mut written = 0u64;
    while let Some(part) = parts.next().await {
        let part = part.map_err(|s| client.error(&s))?;
        written += part.blob.len() as u64;
        if written > EXECUTABLE_LEN_MAX {
            return Err(CliError::new(
                OTHER,
                format!("{key} is larger than {EXECUTABLE_LEN_MAX} bytes"),
            ));
        }
        file.write_all(&part.blob)
            .map_err(|e| io_error("cannot write", &temp, &e))?;
    }
    file.sync_all()
        .map_err(|e| io_error("cannot write", &temp, &e))?;
    drop(file);
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io_error("cannot make executable", &temp, &e))?;
    std::fs::rename(&temp, path).map_err(|e| io_error("cannot move into place", path, &e))?;
    Ok(written)
}
