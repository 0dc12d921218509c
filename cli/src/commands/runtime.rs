//! `micro run`, `update`, `kill`, `status` and `logs`: the runtime from a terminal.
//!
//! ```text
//! micro run ./greeter ─> pack (source.rs) ─> Source.Upload ─> Runtime.Create
//!                     ─> poll Runtime.Read (spinner on a terminal) until running or error
//! micro update greeter ─> re-pack the directory it was run from ─> Upload ─> Update
//!                      ─> poll until every instance runs the new revision
//! ```

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use micro_core::Clock as _;
use micro_core::runtime::Status;
use micro_proto::runtime as rt;
use micro_proto::runtime::source_client::SourceClient;

use crate::client::Client;
use crate::commands::output::{Output, print_table};
use crate::exit::{CliError, MICRO_ERROR, TIMEOUT};

/// Flags of `micro run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  micro run ./greeter\n  micro run ./greeter --instances 2\n  \
                        micro run helloworld"
)]
pub struct RunArgs {
    /// A crate directory to build and run (./greeter), or a service compiled into the node
    pub source: String,
    /// The service's name [default: the directory's name]
    #[arg(long)]
    pub name: Option<String>,
    /// Version to run it as
    #[arg(long, default_value = "latest")]
    pub version: String,
    /// How many instances, spread over the nodes
    #[arg(long, default_value_t = 1)]
    pub instances: u32,
    /// Return once the cluster accepted it, without waiting for it to run
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// How long to wait for it to run (builds included), e.g. 20m
    #[arg(long, default_value = "30m", value_parser = crate::duration::parse)]
    pub timeout: Duration,
}

/// Flags of `micro update`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  micro update greeter\n  micro update ./greeter --instances 3")]
pub struct UpdateArgs {
    /// The service (its directory is uploaded again), or its crate directory
    pub service: String,
    /// Version to update
    #[arg(long, default_value = "")]
    pub version: String,
    /// A new instance count
    #[arg(long)]
    pub instances: Option<u32>,
    /// Return once the cluster accepted it, without waiting for the rollout
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// How long to wait for the rollout, e.g. 20m
    #[arg(long, default_value = "30m", value_parser = crate::duration::parse)]
    pub timeout: Duration,
}

/// Flags of `micro kill`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  micro kill greeter")]
pub struct KillArgs {
    /// Service name, optionally NAME@VERSION
    pub service: String,
}

/// Flags of `micro status`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  micro status greeter")]
pub struct StatusArgs {
    /// Only this service
    pub service: Option<String>,
    /// Output format
    #[arg(long, short = 'o', default_value = "table")]
    pub output: Output,
}

/// Flags of `micro logs`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  micro logs greeter\n  micro logs greeter -f --since 10m -n 50"
)]
pub struct LogsArgs {
    /// The service
    pub service: String,
    /// Keep printing new lines
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only lines newer than this, e.g. 10m, 2h
    #[arg(long, value_parser = crate::duration::parse)]
    pub since: Option<Duration>,
    /// Only the last N lines
    #[arg(long = "lines", short = 'n')]
    pub lines: Option<i64>,
    /// Only this version
    #[arg(long, default_value = "")]
    pub version: String,
}

fn is_path(source: &str) -> bool {
    source.contains('/') || source.starts_with('.') || Path::new(source).is_dir()
}

/// A crate directory, absolute.
fn crate_dir(source: &str) -> Result<PathBuf, CliError> {
    let dir =
        std::fs::canonicalize(source).map_err(|e| CliError::usage(format!("{source}: {e}")))?;
    if !dir.is_dir() {
        return Err(CliError::usage(format!("{source} is not a directory")));
    }
    Ok(dir)
}

/// The service name a directory gives: its last component.
fn name_of(dir: &Path) -> Result<String, CliError> {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| CliError::usage(format!("{}: name the service with --name", dir.display())))
}

/// Packs `dir` and uploads it as the source of `name:version`; the source id.
async fn upload(
    client: &Client,
    dir: &Path,
    name: &str,
    version: &str,
) -> Result<String, CliError> {
    let owned = dir.to_owned();
    let tarball = tokio::task::spawn_blocking(move || crate::source::pack(&owned))
        .await
        .map_err(|e| CliError::new(crate::exit::OTHER, e.to_string()))??;
    let service = rt::Service {
        name: name.to_owned(),
        version: version.to_owned(),
        ..rt::Service::default()
    };
    let chunks: Vec<rt::UploadRequest> = tarball
        .chunks(1024 * 1024)
        .enumerate()
        .map(|(i, data)| rt::UploadRequest {
            service: (i == 0).then(|| service.clone()),
            data: data.to_vec(),
        })
        .collect();
    let chunks = if chunks.is_empty() {
        vec![rt::UploadRequest {
            service: Some(service),
            data: Vec::new(),
        }]
    } else {
        chunks
    };
    let request = client.request(futures::stream::iter(chunks));
    let reply = SourceClient::new(client.channel())
        .max_encoding_message_size(usize::MAX)
        .upload(request)
        .await
        .map_err(|s| client.error(&s))?;
    Ok(reply.into_inner().id)
}

/// `micro run SOURCE`.
pub(crate) async fn run(client: &Client, args: RunArgs) -> Result<(), CliError> {
    let (name, source, metadata) = if is_path(&args.source) {
        let dir = crate_dir(&args.source)?;
        let name = match &args.name {
            Some(name) => name.clone(),
            None => name_of(&dir)?,
        };
        let id = upload(client, &dir, &name, &args.version).await?;
        let metadata = [("source_dir".to_owned(), dir.display().to_string())];
        (name, id, metadata.into_iter().collect())
    } else {
        let name = args.name.clone().unwrap_or_else(|| args.source.clone());
        (name, args.source.clone(), std::collections::HashMap::new())
    };
    let request = client.request(rt::CreateRequest {
        resource: Some(rt::Resource {
            service: Some(rt::Service {
                name: name.clone(),
                version: args.version.clone(),
                source,
                metadata,
                ..rt::Service::default()
            }),
            ..rt::Resource::default()
        }),
        options: Some(rt::CreateOptions {
            namespace: client.namespace().as_str().to_owned(),
            instances: i64::from(args.instances),
            ..rt::CreateOptions::default()
        }),
    });
    client
        .runtime()
        .create(request)
        .await
        .map_err(|s| client.error(&s))?;
    if args.detach {
        return Ok(());
    }
    wait(client, &name, &args.version, 1, args.timeout).await
}

/// `micro update NAME|DIR`.
pub(crate) async fn update(client: &Client, args: UpdateArgs) -> Result<(), CliError> {
    let (name, dir) = if is_path(&args.service) {
        let dir = crate_dir(&args.service)?;
        (name_of(&dir)?, Some(dir))
    } else {
        (args.service.clone(), None)
    };
    let current = read(client, &name, &args.version).await?;
    let Some(service) = current.first() else {
        return Err(CliError::new(
            MICRO_ERROR,
            format!("service {name} is not running (start it with `micro run`)"),
        ));
    };
    let version = service.version.clone();
    let revision: u64 = meta(service, "revision").parse().unwrap_or(0);
    let dir = dir.or_else(|| {
        service
            .metadata
            .get("source_dir")
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
    });
    if service.source.starts_with("source://") {
        let Some(dir) = dir else {
            return Err(CliError::usage(format!(
                "the directory {name} was run from is gone; give it: micro update ./path/to/{name}"
            )));
        };
        upload(client, &dir, &name, &version).await?;
    }
    let request = client.request(rt::UpdateRequest {
        resource: Some(rt::Resource {
            service: Some(rt::Service {
                name: name.clone(),
                version: version.clone(),
                ..rt::Service::default()
            }),
            ..rt::Resource::default()
        }),
        options: Some(rt::UpdateOptions {
            namespace: client.namespace().as_str().to_owned(),
            instances: args.instances.map_or(0, i64::from),
            ..rt::UpdateOptions::default()
        }),
    });
    client
        .runtime()
        .update(request)
        .await
        .map_err(|s| client.error(&s))?;
    if args.detach {
        return Ok(());
    }
    wait(client, &name, &version, revision + 1, args.timeout).await
}

fn meta<'a>(service: &'a rt::Service, key: &str) -> &'a str {
    service.metadata.get(key).map_or("", String::as_str)
}

async fn read(client: &Client, name: &str, version: &str) -> Result<Vec<rt::Service>, CliError> {
    let request = client.request(rt::ReadRequest {
        options: Some(rt::ReadOptions {
            service: name.to_owned(),
            version: version.to_owned(),
            namespace: client.namespace().as_str().to_owned(),
            ..rt::ReadOptions::default()
        }),
    });
    let reply = client
        .runtime()
        .read(request)
        .await
        .map_err(|s| client.error(&s))?;
    Ok(reply.into_inner().services)
}

/// Waits until every instance of `name:version` runs revision `revision` or later,
/// showing progress on a terminal; a failure is an error with the service's message.
async fn wait(
    client: &Client,
    name: &str,
    version: &str,
    revision: u64,
    timeout: Duration,
) -> Result<(), CliError> {
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let deadline = tokio::time::Instant::now() + timeout;
    let result = loop {
        let services = read(client, name, version).await?;
        let Some(service) = services.first() else {
            break Err(CliError::new(
                MICRO_ERROR,
                format!("service {name} was killed"),
            ));
        };
        let status = Status::from_number(service.status);
        let at: u64 = meta(service, "revision").parse().unwrap_or(0);
        let (up, all) = meta(service, "instances")
            .split_once('/')
            .unwrap_or(("0", "1"));
        if let Some(bar) = &spinner {
            bar.set_message(format!(
                "{name}:{version} {} ({up}/{all} instances, revision {at})",
                progress_word(status, meta(service, "build"))
            ));
        }
        if status == Status::Error {
            let why = meta(service, "error");
            break Err(CliError::new(
                MICRO_ERROR,
                format!("{name} failed: {}", why.trim()),
            ));
        }
        if at >= revision && up == all && status == Status::Running {
            break Ok(format!("{name}:{version} running ({up}/{all} instances)"));
        }
        if tokio::time::Instant::now() >= deadline {
            break Err(CliError::new(
                TIMEOUT,
                format!(
                    "{name} is not running after {timeout:?} (status {}); see `micro logs {name}`",
                    status.name()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    match result {
        Ok(line) => {
            println!("{line}");
            Ok(())
        }
        Err(err) => Err(err),
    }
}

fn progress_word(status: Status, build: &str) -> String {
    match status {
        Status::Building => build.to_owned(),
        other => other.name().to_owned(),
    }
}

/// `micro kill NAME[@VERSION]`.
pub(crate) async fn kill(client: &Client, args: KillArgs) -> Result<(), CliError> {
    let (name, version) = args
        .service
        .split_once('@')
        .unwrap_or((args.service.as_str(), ""));
    let request = client.request(rt::DeleteRequest {
        resource: Some(rt::Resource {
            service: Some(rt::Service {
                name: name.to_owned(),
                version: version.to_owned(),
                ..rt::Service::default()
            }),
            ..rt::Resource::default()
        }),
        options: Some(rt::DeleteOptions {
            namespace: client.namespace().as_str().to_owned(),
        }),
    });
    client
        .runtime()
        .delete(request)
        .await
        .map_err(|s| client.error(&s))?;
    Ok(())
}

/// `micro status [NAME]`: NAME, VERSION, SOURCE, STATUS, BUILD, UPDATED, METADATA.
pub(crate) async fn status(client: &Client, args: StatusArgs) -> Result<(), CliError> {
    let services = read(client, args.service.as_deref().unwrap_or_default(), "").await?;
    let status_name = |n: i32| Status::from_number(n).name();
    match args.output {
        Output::Json => {
            let items: Vec<serde_json::Value> = services
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "name": s.name, "version": s.version, "source": s.source,
                        "status": status_name(s.status),
                        "metadata": s.metadata.iter().collect::<BTreeMap<_, _>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(items));
        }
        Output::Table => {
            let now = micro_core::SystemClock.now_ms() / 1000;
            let rows = services.into_iter().map(|s| status_row(s, now)).collect();
            print_table(
                &[
                    "NAME", "VERSION", "SOURCE", "STATUS", "BUILD", "UPDATED", "METADATA",
                ],
                rows,
            );
        }
    }
    Ok(())
}

fn status_row(s: rt::Service, now: u64) -> Vec<String> {
    let metadata: BTreeMap<String, String> = s.metadata.into_iter().collect();
    let updated = metadata
        .get("updated")
        .and_then(|u| u.parse::<u64>().ok())
        .map_or_else(String::new, |at| ago(now.saturating_sub(at)));
    let error = metadata.get("error").map(|e| {
        // The compiler's first error line says most; `micro logs` has the rest.
        let first = e
            .lines()
            .find(|l| l.starts_with("error"))
            .or(e.lines().next());
        first.unwrap_or_default().to_owned()
    });
    let mut meta: Vec<String> = ["node", "instances", "restarts"]
        .iter()
        .filter_map(|k| metadata.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    if let Some(error) = error {
        meta.push(format!("error={error}"));
    }
    vec![
        s.name,
        s.version,
        s.source,
        Status::from_number(s.status).name().to_owned(),
        metadata
            .get("build")
            .cloned()
            .unwrap_or_else(|| "-".to_owned()),
        updated,
        meta.join(" "),
    ]
}

fn ago(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// `micro logs NAME`.
pub(crate) async fn logs(client: &Client, args: LogsArgs) -> Result<(), CliError> {
    let since = args.since.map_or(0, |d| {
        let now = micro_core::SystemClock.now_ms() / 1000;
        i64::try_from(now.saturating_sub(d.as_secs())).unwrap_or(0)
    });
    let request = client.request(rt::LogsRequest {
        service: args.service.clone(),
        stream: args.follow,
        count: args.lines.unwrap_or(0),
        since,
        options: Some(rt::LogsOptions {
            namespace: client.namespace().as_str().to_owned(),
        }),
        version: args.version,
    });
    let mut records = client
        .runtime()
        .logs(request)
        .await
        .map_err(|s| client.error(&s))?
        .into_inner();
    while let Some(record) = records.next().await {
        let record = record.map_err(|s| client.error(&s))?;
        println!("{}", record.message);
    }
    Ok(())
}
