//! nats-peer: the NATS side of `scripts/bench-events.sh`, measured the way `micro bench
//! events` and `micro bench broker` measure ours, and printed in the same table.
//!
//! ```text
//! jetstream: stream BENCH_<run>_C<C> (3 replicas, file storage) ─> C tasks ─> N ×
//!            publish(bench.<run>.c<C>, payload i) and wait for its ack ─> read the stream
//!            back (ordered consumer): every acked payload must be there
//! request:   a responder (its own connection, same process) echoes bench.rpc.<run>.c<C>
//!            ─> C tasks ─> N × request(payload i), reply checked
//! ```
//!
//! As ours: C tokio tasks share one connection and task `t` sends requests `t, t+C, ...`
//! one after the other; payload `i` is the key `bench-<run>-c<C>/<i>` repeated to
//! `--size` bytes; ops/s is successes over the level's wall time; p50/p99 are nearest
//! rank over the successes. JetStream publishes go through a connection to the stream's
//! leader (ours go to the Raft leader); request/reply uses the first server.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use async_nats::jetstream;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use clap::{Parser, Subcommand, ValueEnum};
use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use futures::StreamExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long the read-back of one level may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a new stream may take to elect its leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Parser)]
#[command(about = "JetStream and core NATS request/reply, measured like micro bench")]
struct Args {
    /// The cluster's client URLs (nats://HOST:PORT), comma-separated
    #[arg(long, value_delimiter = ',', required = true)]
    servers: Vec<String>,
    /// Requests at each concurrency level
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Concurrency levels, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Bytes per payload
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Print a table or JSON
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// What to measure
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Mode {
    /// JetStream publish with ack to a stream with 3 replicas, then a read-back
    Jetstream,
    /// Core NATS request/reply against a responder in this process
    Request,
}

/// One line of output.
#[derive(Debug)]
struct Row {
    target: &'static str,
    concurrency: usize,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    /// Latencies of the successes, sorted.
    latencies: Vec<Duration>,
    /// (acked payloads found, acked) for JetStream.
    verified: Option<(usize, usize)>,
}

/// What one level of requests measured.
struct Level {
    row: Row,
    /// Keys whose request succeeded.
    acked: Vec<String>,
    first_error: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.requests == 0 || args.size < 64 || args.concurrency.contains(&0) {
        bail!("need at least one request, a size of at least 64 and levels of at least 1");
    }
    let run_id = format!("{:x}{}", unix_ms(), std::process::id());
    let mut rows = Vec::new();
    let mut first_error = None;
    for &concurrency in &args.concurrency {
        let level = match args.mode {
            Mode::Jetstream => jetstream_level(&args, &run_id, concurrency).await?,
            Mode::Request => request_level(&args, &run_id, concurrency).await?,
        };
        first_error = first_error.or(level.first_error);
        rows.push(level.row);
    }
    print_rows(&rows, args.output);
    if let Some(err) = first_error {
        eprintln!("warning: some requests failed; the first: {err}");
    }
    let lost: usize = rows
        .iter()
        .filter_map(|r| r.verified)
        .map(|(f, a)| a - f)
        .sum();
    if lost > 0 {
        bail!("{lost} acknowledged messages were not read back");
    }
    Ok(())
}

#[allow(clippy::disallowed_methods)] // a run id only; nothing is timed with it
fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Connects to every server, each connection knowing its server's name.
async fn connect_all(servers: &[String]) -> anyhow::Result<Vec<async_nats::Client>> {
    let mut clients = Vec::with_capacity(servers.len());
    for url in servers {
        let client = async_nats::connect(url.as_str())
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        clients.push(client);
    }
    Ok(clients)
}

/// One JetStream level: a fresh stream, the publishes, the read-back, the stream deleted.
async fn jetstream_level(args: &Args, run_id: &str, concurrency: usize) -> anyhow::Result<Level> {
    let clients = connect_all(&args.servers).await?;
    let admin = jetstream::new(clients[0].clone());
    let (name, subject) = (
        format!("BENCH_{run_id}_C{concurrency}"),
        format!("bench.{run_id}.c{concurrency}"),
    );
    admin
        .create_stream(StreamConfig {
            name: name.clone(),
            subjects: vec![subject.clone()],
            num_replicas: 3,
            storage: StorageType::File,
            ..StreamConfig::default()
        })
        .await
        .context("cannot create the stream")?;
    let leader = stream_leader(&admin, &name).await?;
    let client = clients
        .iter()
        .find(|c| c.server_info().server_name == leader)
        .ok_or_else(|| anyhow!("no connection to the stream leader {leader}"))?;
    let publisher = jetstream::new(client.clone());
    let subject = Arc::<str>::from(subject);
    let mut level = run_level(
        args,
        run_id,
        concurrency,
        "nats jetstream",
        move |payload| {
            let (publisher, subject) = (publisher.clone(), subject.clone());
            async move {
                let ack = publisher.publish(subject.to_string(), payload.into()).await;
                ack.map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
        },
    )
    .await;
    let stored = read_back(&admin, &name).await?;
    let found = level
        .acked
        .iter()
        .filter(|k| stored.contains(&payload_for(k, args.size)))
        .count();
    level.row.verified = Some((found, level.acked.len()));
    admin
        .delete_stream(&name)
        .await
        .context("cannot delete the stream")?;
    Ok(level)
}

/// The name of the server leading stream `name`, once it has one.
async fn stream_leader(admin: &jetstream::Context, name: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + LEADER_TIMEOUT;
    while Instant::now() < deadline {
        let mut stream = admin
            .get_stream(name)
            .await
            .context("cannot read the stream")?;
        let info = stream
            .info()
            .await
            .context("cannot read the stream's info")?;
        if let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone()) {
            return Ok(leader);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("stream {name} has no leader after {LEADER_TIMEOUT:?}")
}

/// Every payload stream `name` holds, through an ordered consumer.
async fn read_back(admin: &jetstream::Context, name: &str) -> anyhow::Result<BTreeSet<Vec<u8>>> {
    let mut stream = admin.get_stream(name).await?;
    let count = stream.info().await?.state.messages;
    let consumer = stream.create_consumer(OrderedConfig::default()).await?;
    let mut messages = consumer.messages().await?;
    let mut payloads = BTreeSet::new();
    let deadline = Instant::now() + VERIFY_TIMEOUT;
    let mut read = 0_u64;
    while read < count {
        let next = tokio::time::timeout_at(deadline, messages.next()).await;
        let message = next
            .context("the read-back timed out")?
            .ok_or_else(|| anyhow!("the read-back ended early"))??;
        payloads.insert(message.payload.to_vec());
        read += 1;
    }
    Ok(payloads)
}

/// One request/reply level: a responder echoing on its own connection, then the requests.
async fn request_level(args: &Args, run_id: &str, concurrency: usize) -> anyhow::Result<Level> {
    let server = &args.servers[0];
    let responder = async_nats::connect(server.as_str()).await?;
    let requester = async_nats::connect(server.as_str()).await?;
    let subject = format!("bench.rpc.{run_id}.c{concurrency}");
    let mut requests = responder.subscribe(subject.clone()).await?;
    responder.flush().await?; // the subscription is live on the server from here
    let echo = tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                let _ = responder.publish(reply, request.payload).await;
            }
        }
    });
    let subject = Arc::<str>::from(subject);
    let level = run_level(args, run_id, concurrency, "nats request", move |payload| {
        let (requester, subject) = (requester.clone(), subject.clone());
        async move {
            let reply = requester
                .request(subject.to_string(), payload.clone().into())
                .await
                .map_err(|e| e.to_string())?;
            if reply.payload.as_ref() == payload.as_slice() {
                Ok(())
            } else {
                Err("the reply is not the request's payload".to_owned())
            }
        }
    })
    .await;
    echo.abort();
    Ok(level)
}

/// Runs `args.requests` calls of `op` over `concurrency` tasks, task `t` sending
/// payloads `t, t + C, ...` one after the other.
async fn run_level<F, Fut>(
    args: &Args,
    run_id: &str,
    concurrency: usize,
    target: &'static str,
    op: F,
) -> Level
where
    F: Fn(Vec<u8>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let tasks = concurrency.min(args.requests);
    let prefix: Arc<str> = format!("bench-{run_id}-c{concurrency}/").into();
    let mut set = JoinSet::new();
    let start = Instant::now();
    for task in 0..tasks {
        let (op, prefix, size, requests) = (op.clone(), prefix.clone(), args.size, args.requests);
        set.spawn(async move {
            let (mut latencies, mut acked, mut first_error) = (Vec::new(), Vec::new(), None);
            for index in (task..requests).step_by(tasks) {
                let key = format!("{prefix}{index}");
                let payload = payload_for(&key, size);
                let at = Instant::now();
                match op(payload).await {
                    Ok(()) => {
                        latencies.push(at.elapsed());
                        acked.push(key);
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, acked, first_error)
        });
    }
    let (mut latencies, mut acked, mut first_error) = (Vec::new(), Vec::new(), None);
    while let Some(joined) = set.join_next().await {
        let (l, a, e) = joined.expect("a benchmark task panicked");
        latencies.extend(l);
        acked.extend(a);
        first_error = first_error.or(e);
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let row = Row {
        target,
        concurrency,
        requests: args.requests,
        errors: args.requests - latencies.len(),
        elapsed,
        latencies,
        verified: None,
    };
    Level {
        row,
        acked,
        first_error,
    }
}

/// The payload of `key`: its bytes repeated to `size` (as micro bench's values).
fn payload_for(key: &str, size: usize) -> Vec<u8> {
    key.bytes().cycle().take(size).collect()
}

fn ops_per_sec(row: &Row) -> f64 {
    let secs = row.elapsed.as_secs_f64();
    if secs > 0.0 {
        row.latencies.len() as f64 / secs
    } else {
        0.0
    }
}

/// Nearest rank, in milliseconds.
fn percentile_ms(latencies: &[Duration], percent: usize) -> Option<f64> {
    let rank = (percent * latencies.len()).div_ceil(100);
    latencies
        .get(rank.checked_sub(1)?)
        .map(|l| l.as_secs_f64() * 1000.0)
}

fn print_rows(rows: &[Row], output: Output) {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    match output {
        Output::Table => {
            let mut table = Table::new();
            table
                .load_preset(NOTHING)
                .set_content_arrangement(ContentArrangement::Disabled)
                .set_header(vec![
                    "TARGET",
                    "CONCURRENCY",
                    "REQUESTS",
                    "OPS/S",
                    "P50 MS",
                    "P99 MS",
                    "ERRORS",
                    "VERIFIED",
                ]);
            for r in rows {
                table.add_row(vec![
                    r.target.to_owned(),
                    r.concurrency.to_string(),
                    r.requests.to_string(),
                    format!("{:.0}", ops_per_sec(r)),
                    ms(percentile_ms(&r.latencies, 50)),
                    ms(percentile_ms(&r.latencies, 99)),
                    r.errors.to_string(),
                    r.verified
                        .map_or_else(|| "-".to_owned(), |(f, a)| format!("{f}/{a}")),
                ]);
            }
            println!("{table}");
        }
        Output::Json => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "target": r.target, "concurrency": r.concurrency,
                        "requests": r.requests, "errors": r.errors,
                        "seconds": r.elapsed.as_secs_f64(), "ops_per_sec": ops_per_sec(r),
                        "p50_ms": percentile_ms(&r.latencies, 50),
                        "p99_ms": percentile_ms(&r.latencies, 99),
                        "verified": r.verified.map(|(f, a)| serde_json::json!({"acked": a, "found": f})),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(items));
        }
    }
}
