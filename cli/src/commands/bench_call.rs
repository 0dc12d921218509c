//! `micro bench call`: calls per second and latency of a service endpoint through the
//! proxy, side by side with a bare tonic hello-world server started in the same run.
//!
//! ```text
//! in-node:   C tasks ─raw gRPC─> proxy ─> router ─> helloworld handler actors
//! forwarded: C tasks ─raw gRPC─> proxy of a node not running it ─> peer node ─> actors
//! tonic:     C tasks ─raw gRPC─> a plain tonic Helloworld server in this process
//! ```
//! Every target gets the same encoded `CallRequest{name}` and the same client loop, so
//! the difference is what the platform adds (routing, actors, forwarding).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use micro_core::service::{CONTENT_PROTO, Call};
use prost::Message;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::commands::bench::{CONCURRENCY_MAX, REQUESTS_MAX, ops_per_sec, percentile_ms};
use crate::commands::output::{Output, print_table};
use crate::exit::{CliError, UNREACHABLE};

/// The plain tonic server the benchmark compares with (generated from the same
/// helloworld contract, with no platform in between).
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    unreachable_pub,
    missing_docs,
    missing_debug_implementations,
    dead_code
)]
mod bare {
    include!(concat!(env!("OUT_DIR"), "/v3/helloworld.rs"));
}

/// The flags of `micro bench call`.
#[derive(Debug, Clone, Args)]
pub struct CallBenchArgs {
    /// Calls per target at each concurrency level
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=i64::from(REQUESTS_MAX)))]
    pub requests: u32,
    /// Concurrency levels, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,16,64", value_parser = clap::value_parser!(u32).range(1..=i64::from(CONCURRENCY_MAX)))]
    pub concurrency: Vec<u32>,
    /// Also measure through this proxy (HOST:PORT) of a node that does not run the service
    #[arg(long, value_name = "PROXY")]
    pub forwarded: Option<String>,
    /// Skip the bare tonic server
    #[arg(long)]
    pub no_peer: bool,
    /// Also measure in-node calls carrying the CLI's login token (verified on each call)
    #[arg(long)]
    pub with_token: bool,
    /// Print a table or JSON
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The measurements of one target at one concurrency level.
#[derive(Debug)]
struct CallStats {
    concurrency: usize,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    /// Latencies of the calls that succeeded, sorted.
    latencies: Vec<Duration>,
}

impl CallStats {
    fn ops_per_sec(&self) -> f64 {
        ops_per_sec(self.latencies.len(), self.elapsed)
    }

    fn percentile_ms(&self, percent: usize) -> Option<f64> {
        percentile_ms(&self.latencies, percent)
    }
}

struct Hello;

#[tonic::async_trait]
impl bare::helloworld_server::Helloworld for Hello {
    async fn call(
        &self,
        request: tonic::Request<bare::CallRequest>,
    ) -> Result<tonic::Response<bare::CallResponse>, tonic::Status> {
        let msg = format!("Hello {}", request.into_inner().name);
        Ok(tonic::Response::new(bare::CallResponse { msg }))
    }

    type StreamStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<bare::StreamResponse, tonic::Status>> + Send>,
    >;

    async fn stream(
        &self,
        _request: tonic::Request<bare::StreamRequest>,
    ) -> Result<tonic::Response<Self::StreamStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the benchmark peer only answers Call",
        ))
    }
}

/// Starts the bare tonic server on a loopback port; returns its address.
async fn start_peer() -> Result<String, CliError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::new(crate::exit::OTHER, format!("cannot start the peer: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::new(crate::exit::OTHER, e.to_string()))?;
    // TCP_NODELAY, as the node's listeners set it: without it Nagle's algorithm holds
    // small replies back for tens of milliseconds and the comparison would be unfair.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |accepted| {
            accepted.inspect(|stream| {
                let _ = stream.set_nodelay(true);
            })
        },
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(bare::helloworld_server::HelloworldServer::new(Hello))
            .serve_with_incoming(incoming),
    );
    Ok(addr.to_string())
}

async fn connect(addr: &str) -> Result<Channel, CliError> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| CliError::usage(format!("invalid address {addr:?}: {e}")))?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| CliError::unreachable(addr, &e.to_string()))
}

/// One call; `Ok` only when the reply is the expected greeting.
async fn one_call(channel: Channel, body: Vec<u8>, token: Option<&str>) -> Result<(), String> {
    let mut metadata = BTreeMap::new();
    if let Some(token) = token {
        metadata.insert("authorization".to_owned(), format!("Bearer {token}"));
    }
    let call = Call {
        service: "helloworld".to_owned(),
        endpoint: "Helloworld.Call".to_owned(),
        content_type: CONTENT_PROTO.to_owned(),
        metadata,
        body,
        ..Call::default()
    };
    let mut replies = micro_proto::raw::call(channel, call, Duration::from_secs(5))
        .await
        .map_err(|e| e.detail)?;
    let reply = futures::StreamExt::next(&mut replies)
        .await
        .ok_or("no reply")?
        .map_err(|e| e.detail)?;
    // Read to the end (the status trailers): a call dropped before them is reset, and
    // servers answer many resets with GOAWAY, as any real client would see.
    if let Some(extra) = futures::StreamExt::next(&mut replies).await {
        extra.map_err(|e| e.detail)?;
        return Err("a unary endpoint sent more than one reply".to_owned());
    }
    let reply = bare::CallResponse::decode(reply.as_slice()).map_err(|e| e.to_string())?;
    if reply.msg == "Hello bench" {
        Ok(())
    } else {
        Err(format!("unexpected reply {:?}", reply.msg))
    }
}

/// Runs `requests` calls over `concurrency` tasks sharing `channel`.
async fn level(
    channel: &Channel,
    token: Option<Arc<str>>,
    requests: usize,
    concurrency: usize,
) -> (CallStats, Option<String>) {
    let body = bare::CallRequest {
        name: "bench".to_owned(),
    }
    .encode_to_vec();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..concurrency {
        let (channel, body, token) = (channel.clone(), body.clone(), token.clone());
        let count = (requests + concurrency - 1 - task) / concurrency;
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            let mut first_error = None;
            for _ in 0..count {
                let at = Instant::now();
                match one_call(channel.clone(), body.clone(), token.as_deref()).await {
                    Ok(()) => latencies.push(at.elapsed()),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, count, first_error)
        });
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut errors = 0;
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        let Ok((mut l, count, err)) = done else {
            errors += 1;
            continue;
        };
        errors += count - l.len();
        latencies.append(&mut l);
        if first_error.is_none() {
            first_error = err;
        }
    }
    latencies.sort_unstable();
    let stats = CallStats {
        concurrency,
        requests,
        errors,
        elapsed: started.elapsed(),
        latencies,
    };
    (stats, first_error)
}

/// `micro bench call` against the proxy at `proxy`.
/// With `--with-token`, `token` (the CLI's login) rides on an extra in-node target.
pub async fn run(proxy: &str, token: Option<&str>, args: CallBenchArgs) -> Result<(), CliError> {
    let mut targets = vec![("in-node".to_owned(), proxy.to_owned(), None)];
    if args.with_token {
        let token = token.ok_or_else(|| {
            CliError::usage("--with-token needs a login: run `micro login` first")
        })?;
        targets.push((
            "in-node+token".to_owned(),
            proxy.to_owned(),
            Some(Arc::from(token)),
        ));
    }
    if let Some(forwarded) = &args.forwarded {
        targets.push(("forwarded".to_owned(), forwarded.clone(), None));
    }
    if !args.no_peer {
        targets.push(("bare tonic".to_owned(), start_peer().await?, None));
    }
    let mut channels = Vec::new();
    for (name, addr, token) in &targets {
        let channel = connect(addr).await?;
        // Warm up, and fail fast with a clear error if the service is not running.
        one_call(
            channel.clone(),
            bare::CallRequest {
                name: "bench".into(),
            }
            .encode_to_vec(),
            token.as_deref(),
        )
        .await
        .map_err(|e| {
            CliError::new(
                UNREACHABLE,
                format!("{name} ({addr}): {e} (is helloworld running? micro run helloworld)"),
            )
        })?;
        channels.push((name.clone(), Arc::new(channel), token.clone()));
    }
    let mut rows = Vec::new();
    let mut first_error = None;
    for concurrency in &args.concurrency {
        let concurrency = usize::try_from(*concurrency).unwrap_or(1);
        for (name, channel, token) in &channels {
            let requests = usize::try_from(args.requests).unwrap_or(1);
            let (stats, err) = level(channel, token.clone(), requests, concurrency).await;
            if first_error.is_none() {
                first_error = err;
            }
            rows.push((name.clone(), stats));
        }
    }
    print_rows(&rows, args.output);
    if let Some(err) = first_error {
        eprintln!("warning: some calls failed; the first: {err}");
    }
    Ok(())
}

fn print_rows(rows: &[(String, CallStats)], output: Output) {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    match output {
        Output::Table => {
            let table = rows
                .iter()
                .map(|(name, s)| {
                    vec![
                        name.clone(),
                        s.concurrency.to_string(),
                        s.requests.to_string(),
                        format!("{:.0}", s.ops_per_sec()),
                        ms(s.percentile_ms(50)),
                        ms(s.percentile_ms(99)),
                        s.errors.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "TARGET",
                    "CONCURRENCY",
                    "CALLS",
                    "CALLS/S",
                    "P50 MS",
                    "P99 MS",
                    "ERRORS",
                ],
                table,
            );
        }
        Output::Json => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|(name, s)| {
                    serde_json::json!({
                        "target": name, "concurrency": s.concurrency, "calls": s.requests,
                        "errors": s.errors, "calls_per_sec": s.ops_per_sec(),
                        "p50_ms": s.percentile_ms(50), "p99_ms": s.percentile_ms(99),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(items));
        }
    }
}

/// The flags of `micro bench http-peer`.
#[derive(Debug, Clone, Args)]
pub struct HttpPeerArgs {
    /// Where to listen (HOST:PORT)
    #[arg(long, default_value = "127.0.0.1:18090")]
    pub listen: String,
}

/// `micro bench http-peer`: a bare axum server answering `POST /helloworld/call` with the
/// same JSON as the gateway (`{"msg":"Hello NAME"}`), the peer the HTTP benchmark
/// (`scripts/bench-http.sh`) compares the gateway with. Serves until interrupted.
pub async fn http_peer(args: HttpPeerArgs) -> Result<(), CliError> {
    let app = axum::Router::new().route(
        "/helloworld/call",
        axum::routing::post(|body: axum::body::Bytes| async move {
            let name = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["name"].as_str().map(str::to_owned))
                .unwrap_or_default();
            axum::Json(serde_json::json!({ "msg": format!("Hello {name}") }))
        }),
    );
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| {
            CliError::new(
                crate::exit::OTHER,
                format!("cannot listen on {}: {e}", args.listen),
            )
        })?;
    println!("http peer listening on {}", args.listen);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| CliError::new(crate::exit::OTHER, e.to_string()))
}
