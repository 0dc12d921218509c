//! The commands of `micro` and the entry points of both binaries.

mod auth;
pub mod backup;
pub mod bench;
pub mod bench_call;
pub mod bench_events;
mod blob;
mod broker;
mod cell;
pub mod certs;
mod cluster;
mod config;
mod env;
mod events;
mod network;
mod new;
mod output;
mod runtime;
mod server;
mod services;
pub mod snapshot;
mod stats;
mod store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use micro_core::Namespace;

use crate::client::Client;
use crate::exit::{CliError, USAGE};
use crate::node::NodeArgs;

/// micro: the command line of Micro in Rust.
#[derive(Debug, Parser)]
#[command(name = "micro", version, about, long_about = None)]
pub struct Cli {
    /// The proxy to talk to (HOST:PORT) [default: the current environment's]
    #[arg(long, global = true, env = "MICRO_PROXY")]
    pub proxy: Option<String>,
    /// The CA certificate (PEM) a TLS proxy's certificate chains to: talk TLS to the
    /// proxy [default: the environment's `--ca`]
    #[arg(long, global = true, env = "MICRO_PROXY_CA")]
    pub proxy_ca: Option<std::path::PathBuf>,
    /// The environment to talk to, for this command [default: `micro env set`'s, else
    /// local]
    #[arg(long, global = true, env = "MICRO_ENV")]
    pub env: Option<String>,
    /// The namespace to act in [default: the one `micro user namespace set` chose, else
    /// micro]
    #[arg(long, global = true, env = "MICRO_NAMESPACE")]
    pub namespace: Option<String>,
    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing buys nothing
pub enum Command {
    /// Run a one-node platform in the foreground
    #[command(after_help = "Example:\n  micro server --data-dir /tmp/micro")]
    Server(NodeArgs),
    /// Read and write the key-value store
    #[command(
        subcommand,
        after_help = "Example:\n  micro store write foo bar && micro store read foo"
    )]
    Store(store::StoreCommand),
    /// Store and fetch files (blobs), replicated in chunks
    #[command(
        subcommand,
        after_help = "Example:\n  micro blob put builds/app.tgz --file app.tgz"
    )]
    Blob(blob::BlobCommand),
    /// Inspect the Raft cluster
    #[command(subcommand, after_help = "Example:\n  micro cluster status")]
    Cluster(cluster::ClusterCommand),
    /// Publish and subscribe to ephemeral messages (no persistence)
    #[command(
        subcommand,
        after_help = "Example:\n  micro broker publish orders '{\"id\":1}'"
    )]
    Broker(broker::BrokerCommand),
    /// Publish, consume and read durable event streams (replicated, replayable)
    #[command(
        subcommand,
        after_help = "Example:\n  micro events publish orders '{\"id\":1}'"
    )]
    Events(events::EventsCommand),
    /// Read and write the namespace's config (dot paths, JSON values, secrets)
    #[command(
        subcommand,
        after_help = "Example:\n  micro config set db.host localhost"
    )]
    Config(config::ConfigCommand),
    /// List the registered services, one name per line
    Services(services::ServicesArgs),
    /// Call a service endpoint with a JSON request and print the JSON reply
    Call(services::CallArgs),
    /// Call a streaming endpoint and print each reply as one JSON line
    #[command(after_help = "Example:\n  micro stream helloworld Helloworld.Stream '{\"count\":3}'")]
    Stream(services::CallArgs),
    /// Build and run a crate (./path), or run a service compiled into the node
    Run(runtime::RunArgs),
    /// Upload, rebuild and roll out a service again (or change its instance count)
    Update(runtime::UpdateArgs),
    /// Stop a service started with `micro run`
    Kill(runtime::KillArgs),
    /// Show the services started with `micro run` and their status
    Status(runtime::StatusArgs),
    /// Show the network: nodes, routes, which node serves each instance, the graph
    #[command(subcommand, after_help = "Example:\n  micro network services")]
    Network(network::NetworkCommand),
    /// Show process statistics of every instance of a service (or of every node)
    Stats(stats::StatsArgs),
    /// Show a service's output (and its build's), from whichever nodes run it
    Logs(runtime::LogsArgs),
    /// Create a service crate that `micro run ./NAME` builds and runs
    New(new::NewArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(
        after_help = "Examples:\n  micro completion bash > /etc/bash_completion.d/micro\n  \
                            source <(micro completion zsh)"
    )]
    Completion {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// List, add, switch and delete environments (named proxy addresses)
    #[command(
        after_help = "Examples:\n  micro env\n  micro env add staging 10.0.0.5:8081\n  \
                            micro env set staging"
    )]
    Env {
        /// What to do (nothing: list them, the current one marked)
        #[command(subcommand)]
        command: Option<env::EnvCommand>,
    },
    /// Any registered service: `micro SERVICE [ENDPOINT] --field=value`
    #[command(external_subcommand)]
    Dynamic(Vec<String>),
    /// Log in: keep tokens for this proxy and namespace under ~/.micro
    Login(auth::LoginArgs),
    /// Forget the login for this proxy and namespace
    #[command(after_help = "Example:\n  micro logout")]
    Logout,
    /// Show who you are logged in as; `user token`, `user namespace [set NS]`
    #[command(after_help = "Example:\n  micro user token")]
    User {
        /// What to show or change
        #[command(subcommand)]
        command: Option<auth::UserCommand>,
        /// Output format of the account [default: `field: value` lines]
        #[arg(long, short = 'o')]
        output: Option<output::Output>,
    },
    /// Manage accounts and access rules
    #[command(subcommand, after_help = "Example:\n  micro auth list accounts")]
    Auth(auth::AuthCommand),
    /// Fetch a built service through the proxy and run it: what each pod of the
    /// Kubernetes runtime runs
    #[command(after_help = "Example (in a pod, with MICRO_PROXY and the service's \
                            MICRO_AUTH_ID/SECRET set):\n  \
                            micro cell --build build://greeter:latest#1")]
    Cell(cell::CellArgs),
    /// Measure throughput and latency through the proxy
    #[command(
        subcommand,
        after_help = "Example:\n  micro bench store --concurrency 1,16,64"
    )]
    Bench(bench::BenchCommand),
}

/// What `micro-node --version` prints: the release and the formats it reads and writes,
/// the two numbers an operator compares before a rolling upgrade (docs/DEPLOY.md).
fn node_version() -> &'static str {
    static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{} (data format {}, peer wire format {})",
            env!("CARGO_PKG_VERSION"),
            micro_core::kv::format::DATA_FORMAT,
            micro_cluster::WIRE_FORMAT
        )
    });
    VERSION.as_str()
}

/// micro-node: one node of a Micro cluster.
#[derive(Debug, Parser)]
#[command(name = "micro-node", version = node_version(), about, long_about = None)]
pub struct NodeCli {
    /// Node settings
    #[command(flatten)]
    pub node: NodeArgs,
    /// Instead of running a node: make TLS certificates, or restore a data directory
    #[command(subcommand)]
    pub command: Option<NodeCommand>,
}

/// What `micro-node` does besides running a node.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Make a cluster CA and node certificates for --tls-cert, --tls-key and --tls-ca
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Make a new data directory from a `micro cluster snapshot` file
    #[command(
        after_help = "Example:\n  micro-node restore --source node.snap --data-dir /var/lib/micro/data --node-id 2"
    )]
    Restore(backup::RestoreArgs),
}

/// The commands of `micro` (what a misspelled word is compared with).
pub(crate) fn command_names() -> Vec<String> {
    <Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect()
}

/// "did you mean" for `word`, a command or service that does not exist: the nearest of
/// the commands and `services` within two edits, as a usage error.
pub(crate) fn suggest(word: Option<&str>, services: &[String]) -> Option<CliError> {
    let word = word?;
    let mut candidates = command_names();
    candidates.extend(services.iter().cloned());
    let best = candidates
        .iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= 2 && *d < word.len())
        .min_by_key(|(d, _)| *d)?;
    Some(CliError::usage(format!(
        "unknown command or service {word:?}; did you mean `micro {}`? (see micro --help and \
         micro services)",
        best.1
    )))
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Parses arguments; usage errors exit 64, help and version exit 0.
fn parse<P: Parser>() -> Result<P, ExitCode> {
    P::try_parse().map_err(|err| {
        let code = if err.use_stderr() { USAGE } else { 0 };
        let _ = err.print();
        ExitCode::from(code)
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        report(&CliError::new(
            crate::exit::OTHER,
            format!("cannot start the runtime: {e}"),
        ))
    })
}

fn report(err: &CliError) -> ExitCode {
    eprintln!("error: {}", err.message);
    ExitCode::from(err.code)
}

fn finish(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// `micro services | head -1` closes stdout early; printing then fails, which `println!`
/// reports as a panic. A closed pipe is the reader saying "enough": end quietly, as a
/// Unix tool does, and leave every other panic to the default hook.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The `micro` binary.
pub fn cli_main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = match parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    finish(rt.block_on(run(cli)))
}

/// The `micro-node` binary.
pub fn node_main() -> ExitCode {
    let cli = match parse::<NodeCli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match cli.command {
        Some(NodeCommand::Certs(command)) => finish(certs::run(command)),
        Some(NodeCommand::Restore(args)) => finish(rt.block_on(backup::restore(args))),
        None => finish(rt.block_on(server::run(cli.node))),
    }
}

/// `micro completion SHELL`: prints the script.
fn completion(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "micro", &mut script);
    // A closed pipe (`| head`) is the reader's choice, not an error.
    match std::io::Write::write_all(&mut std::io::stdout(), &script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::new(crate::exit::OTHER, format!("writing: {e}")))
        }
        _ => Ok(()),
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let connect_anonymous = || async {
        let target = crate::environments::resolve(
            cli.proxy.as_deref(),
            cli.env.as_deref(),
            cli.proxy_ca.as_deref(),
        )?;
        let name = match &cli.namespace {
            Some(name) => name.clone(),
            None => crate::session::current_namespace(&target.context)?
                .unwrap_or_else(|| micro_core::namespace::DEFAULT_NAMESPACE.to_owned()),
        };
        let namespace = Namespace::new(name).map_err(|e| CliError::usage(e.to_string()))?;
        Ok::<_, CliError>(
            Client::connect_tls(&target.proxy, namespace, target.ca.as_deref())
                .await?
                .with_context(target.context),
        )
    };
    let connect = || async { crate::session::attach(connect_anonymous().await?).await };
    match cli.command {
        Command::Server(args) => server::run(args).await,
        Command::Store(command) => store::run(&connect().await?, command).await,
        Command::Cluster(command) => cluster::run(&connect().await?, command).await,
        Command::Config(command) => config::run(&connect().await?, command).await,
        Command::Broker(command) => broker::run(&connect().await?, command).await,
        Command::Events(command) => events::run(&connect().await?, command).await,
        Command::Blob(command) => blob::run(&connect().await?, command).await,
        Command::Bench(command) => bench::run(command, connect).await,
        Command::Cell(args) => cell::run((&cli.proxy, &cli.proxy_ca, &cli.namespace), args).await,
        Command::Services(args) => services::services(&connect().await?, args).await,
        Command::Call(args) => services::call(&connect().await?, args, false).await,
        Command::Stream(args) => services::call(&connect().await?, args, true).await,
        Command::Run(args) => runtime::run(&connect().await?, args).await,
        Command::Update(args) => runtime::update(&connect().await?, args).await,
        Command::Kill(args) => runtime::kill(&connect().await?, args).await,
        Command::Status(args) => runtime::status(&connect().await?, args).await,
        Command::Logs(args) => runtime::logs(&connect().await?, args).await,
        Command::Stats(args) => stats::run(&connect().await?, args).await,
        Command::Network(command) => network::run(&connect().await?, command).await,
        Command::New(args) => new::run(&args),
        Command::Env { command } => env::run(command),
        Command::Completion { shell } => completion(shell),
        Command::Dynamic(args) => match connect().await {
            Ok(client) => services::dynamic(&client, args).await,
            // An unreachable proxy says little when the word was a misspelled command.
            Err(err) => Err(suggest(args.first().map(String::as_str), &[]).unwrap_or(err)),
        },
        // A login must not depend on an earlier one (stale, or of a cluster since gone).
        Command::Login(args) => auth::login(&connect_anonymous().await?, args).await,
        Command::Logout => auth::logout(&connect().await?),
        Command::User {
            command: None,
            output,
        } => auth::user(&connect().await?, output).await,
        Command::User {
            command: Some(command),
            ..
        } => auth::user_command(&connect().await?, command).await,
        Command::Auth(command) => auth::auth(&connect().await?, command).await,
    }
}
