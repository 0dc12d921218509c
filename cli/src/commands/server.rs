//! `micro server` and `micro-node`: run a node in the foreground until SIGINT/SIGTERM.

use std::sync::Arc;

use micro_core::SystemClock;

use crate::exit::CliError;
use crate::node::{NodeArgs, NodeConfig, NodeDeps, bind, open_storage, start_node};

/// Runs a node until it is told to stop.
pub(crate) async fn run(args: NodeArgs) -> Result<(), CliError> {
    init_tracing(args.log_format);
    let config = NodeConfig::resolve(args)?;
    // Checked before anything binds, so a wrong file is the one error the user sees.
    let connector: Arc<dyn micro_cluster::PeerConnector> = match &config.tls {
        Some(paths) => Arc::new(micro_cluster::TlsConnector::new(paths.load()?.client())),
        None => Arc::new(micro_cluster::TcpConnector),
    };
    let proxy_listener = bind("--proxy-addr", &config.proxy_addr).await?;
    let api_listener = bind("--api-addr", &config.api_addr).await?;
    let peer_listener = bind("--peer-addr", &config.peer_addr).await?;
    let kv = open_storage(&config)?;
    let deps = NodeDeps {
        kv,
        clock: Arc::new(SystemClock),
        proxy_listener,
        api_listener,
        peer_listener,
        connector,
        seed: None,
        tune_raft: None,
        builtins: crate::builtins(),
        enforce_auth: true,
    };
    let node = start_node(&config, deps).await?;
    // One line on stdout when the node serves, for people and for scripts that wait on it.
    println!(
        "micro-node {} ready: proxy={} api={} peer={} data={}",
        config.node_id,
        node.proxy_addr,
        node.api_addr,
        node.peer_addr,
        config.data_dir.display()
    );
    tokio::select! {
        () = wait_for_signal() => {}
        why = node.fatal() => {
            // Serving on would answer every durable request with an error; stopping lets
            // a supervisor restart the node on its storage (or an operator see why).
            tracing::error!(%why, "raft stopped on a fatal error; stopping the node");
            node.kill().await;
            return Err(CliError::new(
                crate::exit::OTHER,
                format!("node stopped: its storage failed ({why})"),
            ));
        }
    }
    tracing::info!("stopping");
    node.shutdown().await;
    Ok(())
}

fn init_tracing(format: crate::node::LogFormat) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let output = match format {
        crate::node::LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        crate::node::LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // A second initialization (tests run nodes in one process) keeps the first. The
    // record layer feeds `Debug.Log` of the services the node hosts.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .with(micro::debug::log_layer())
        .try_init();
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = tokio::signal::unix::SignalKind::terminate();
        let Ok(mut term) = tokio::signal::unix::signal(terminate) else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
