//! `micro bench store` and `micro bench etcd`: throughput and latency of a key-value
//! store over gRPC, ours through the proxy or etcd's v3 API, measured the same way.
//!
//! For each concurrency level C the benchmark runs a Write phase (N writes of distinct
//! keys) and then a Read phase (N reads of those keys, each checked against the value
//! written). C tokio tasks share one gRPC channel; task `t` sends requests `t, t+C, ...`
//! one after the other, timing each with [`tokio::time::Instant`]. Both targets plug into
//! the same runner through the private `Target` trait ("write key i", "read key i"), so
//! their numbers come from the same loop and the same statistics.
//!
//! ```text
//! level C ─> write: C tasks ─> N × write(bench/<run-id>-c<C>/<i>) ─> PhaseStats
//!         ─> read:  C tasks ─> N × read(bench/<run-id>-c<C>/<i>)  ─> PhaseStats
//! store: write = /store.Store/Write,    read = /store.Store/Read     (linearizable)
//! etcd:  write = /etcdserverpb.KV/Put,  read = /etcdserverpb.KV/Range (linearizable)
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use micro_core::Clock;
use micro_proto::store as pb;
use micro_proto::store::store_client::StoreClient;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use crate::client::Client;
use crate::commands::output::{Output, print_table};
use crate::exit::{CliError, OTHER, TIMEOUT, UNREACHABLE};

/// The most requests one phase of one level may send.
pub const REQUESTS_MAX: u32 = 10_000_000;
/// The most concurrent tasks one level may run.
pub const CONCURRENCY_MAX: u32 = 4096;

/// How long connecting to etcd may take.
const ETCD_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one etcd request may take (the same as the proxy client's).
const ETCD_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Benchmark commands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write then read distinct keys at each concurrency level; report ops/s, p50, p99
    #[command(
        after_help = "Examples:\n  micro bench store\n  micro bench store --requests 1000 --concurrency 1,8 --output json\n\nKeys are left in the store under bench/<run-id>-c<C>/."
    )]
    Store(StoreArgs),
    /// The same benchmark against etcd's v3 gRPC API (KV.Put, linearizable KV.Range)
    #[command(
        after_help = "Example:\n  micro bench etcd --endpoint 127.0.0.1:2379 --concurrency 1,16,64\n\nKeys are left in etcd under bench/<run-id>-c<C>/. --proxy is not used."
    )]
    Etcd(EtcdArgs),
    /// Calls of helloworld's Helloworld.Call through the proxy, beside a bare tonic server
    #[command(
        after_help = "Example:\n  micro run helloworld\n  micro bench call --concurrency 1,16,64 --forwarded 127.0.0.1:28081"
    )]
    Call(crate::commands::bench_call::CallBenchArgs),
    /// A bare axum server answering POST /helloworld/call, the HTTP benchmark's peer
    #[command(
        after_help = "Example:\n  micro bench http-peer --listen 127.0.0.1:18090\n\nSee scripts/bench-http.sh."
    )]
    HttpPeer(crate::commands::bench_call::HttpPeerArgs),
    /// Durable publishes (events.Stream/Publish), then a read-back that no acked event was lost
    #[command(
        after_help = "Example:\n  micro bench events --concurrency 1,16,64 --size 256\n\nEvents are left on the topics bench-<run-id>-c<C>. See scripts/bench-events.sh."
    )]
    Events(crate::commands::bench_events::PubSubBenchArgs),
    /// Broker publish-to-delivery: each task publishes and waits for its message to arrive
    #[command(
        after_help = "Example:\n  micro bench broker --concurrency 1,16,64 --size 256\n\nSee scripts/bench-events.sh."
    )]
    Broker(crate::commands::bench_events::PubSubBenchArgs),
}

/// The flags of `micro bench store`, shared by `micro bench etcd`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Requests per phase at each concurrency level
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=i64::from(REQUESTS_MAX)))]
    pub requests: u32,
    /// Concurrency levels, comma-separated; each runs its own write and read phase
    #[arg(long, value_delimiter = ',', default_value = "1,16,64", value_parser = clap::value_parser!(u32).range(1..=i64::from(CONCURRENCY_MAX)))]
    pub concurrency: Vec<u32>,
    /// Size of each value written, in bytes
    #[arg(long, default_value_t = 256, value_parser = value_size)]
    pub value_size: usize,
    /// Print a table or JSON
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The flags of `micro bench etcd`.
#[derive(Debug, Clone, Args)]
pub struct EtcdArgs {
    /// An etcd member's client address (HOST:PORT, plain HTTP/2)
    #[arg(long)]
    pub endpoint: String,
    /// The flags shared with `micro bench store`
    #[command(flatten)]
    pub bench: StoreArgs,
}

fn value_size(text: &str) -> Result<usize, String> {
    let size: usize = text.parse().map_err(|e| format!("{e}"))?;
    if size <= micro_core::store::VALUE_LEN_MAX {
        Ok(size)
    } else {
        Err(format!(
            "at most {} bytes (the store's value limit)",
            micro_core::store::VALUE_LEN_MAX
        ))
    }
}

/// What [`bench_store`] and [`bench_etcd`] do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreBenchOptions {
    /// Requests per phase at each level (at least 1).
    pub requests: usize,
    /// The concurrency levels, in the order they run (each at least 1).
    pub concurrency: Vec<usize>,
    /// Bytes per value written.
    pub value_size: usize,
}

impl StoreBenchOptions {
    fn from_args(args: &StoreArgs) -> Self {
        Self {
            requests: usize::try_from(args.requests).unwrap_or(usize::MAX),
            concurrency: args
                .concurrency
                .iter()
                .map(|&c| usize::try_from(c).unwrap_or(usize::MAX))
                .collect(),
            value_size: args.value_size,
        }
    }

    /// At least one request and one level, and no level of 0.
    fn validate(&self) -> Result<(), CliError> {
        if self.requests == 0 || self.concurrency.is_empty() {
            return Err(CliError::usage(
                "need at least one request and one concurrency level",
            ));
        }
        match self.concurrency.iter().find(|&&c| c == 0) {
            Some(level) => Err(CliError::usage(format!(
                "a concurrency level must be at least 1, got {level}"
            ))),
            None => Ok(()),
        }
    }
}

/// A phase of one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Writes of distinct keys (`Store.Write` or etcd's `KV.Put`).
    Write,
    /// Reads of the keys the write phase wrote (`Store.Read` or etcd's `KV.Range`).
    Read,
}

impl Phase {
    /// The phase's name in output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Read => "read",
        }
    }
}

/// The measurements of one phase at one concurrency level.
#[derive(Debug, Clone)]
pub struct PhaseStats {
    /// Which phase.
    pub phase: Phase,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed (an error status, or a read that did not return the value).
    pub errors: usize,
    /// Wall time from the first request to the last reply.
    pub elapsed: Duration,
    /// Latencies of the requests that succeeded, sorted ascending.
    pub latencies: Vec<Duration>,
}

impl PhaseStats {
    /// Successful requests per second.
    pub fn ops_per_sec(&self) -> f64 {
        ops_per_sec(self.latencies.len(), self.elapsed)
    }

    /// The `percent`-th percentile latency in milliseconds (nearest rank), if any request
    /// succeeded.
    pub fn percentile_ms(&self, percent: usize) -> Option<f64> {
        percentile_ms(&self.latencies, percent)
    }

    /// The table cells under [`STATS_HEADER`], which every benchmark table ends with.
    pub(crate) fn table_cells(&self) -> Vec<String> {
        let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        vec![
            self.concurrency.to_string(),
            self.requests.to_string(),
            format!("{:.0}", self.ops_per_sec()),
            ms(self.percentile_ms(50)),
            ms(self.percentile_ms(99)),
            self.errors.to_string(),
        ]
    }

    /// The same figures as JSON fields (plus the phase's wall time in seconds).
    pub(crate) fn json_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let fields: [(&str, serde_json::Value); 7] = [
            ("concurrency", self.concurrency.into()),
            ("requests", self.requests.into()),
            ("errors", self.errors.into()),
            ("seconds", self.elapsed.as_secs_f64().into()),
            ("ops_per_sec", self.ops_per_sec().into()),
            ("p50_ms", self.percentile_ms(50).into()),
            ("p99_ms", self.percentile_ms(99).into()),
        ];
        fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }
}

/// The columns of [`PhaseStats::table_cells`].
pub(crate) const STATS_HEADER: [&str; 6] = [
    "CONCURRENCY",
    "REQUESTS",
    "OPS/S",
    "P50 MS",
    "P99 MS",
    "ERRORS",
];

/// Successes per second of wall time.
pub(crate) fn ops_per_sec(successes: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count_f64(successes) / secs
    } else {
        0.0
    }
}

/// The `percent`-th percentile of sorted `latencies` in milliseconds (nearest rank).
pub(crate) fn percentile_ms(latencies: &[Duration], percent: usize) -> Option<f64> {
    assert!((1..=100).contains(&percent), "a percentile is in 1..=100");
    let rank = (percent * latencies.len()).div_ceil(100);
    let index = rank.checked_sub(1)?;
    latencies
        .get(index)
        .map(|latency| latency.as_secs_f64() * 1000.0)
}

/// Converts a count to `f64`; counts here are far below 2^52, so nothing is lost.
#[allow(clippy::cast_precision_loss)]
fn count_f64(count: usize) -> f64 {
    count as f64
}

/// One concurrency level: its write phase and its read phase.
#[derive(Debug, Clone)]
pub struct LevelReport {
    /// Concurrent tasks.
    pub concurrency: usize,
    /// The keys of this level are `<key_prefix><i>` for `i` in `0..requests`.
    pub key_prefix: String,
    /// The write phase.
    pub write: PhaseStats,
    /// The read phase.
    pub read: PhaseStats,
}

/// The result of [`bench_store`] or [`bench_etcd`].
#[derive(Debug, Clone)]
pub struct Report {
    /// What was measured: `store` or `etcd`.
    pub target: &'static str,
    /// Names this run's keys: `bench/<run_id>-c<C>/<i>`.
    pub run_id: String,
    /// Bytes per value.
    pub value_size: usize,
    /// One report per concurrency level, in the order they ran.
    pub levels: Vec<LevelReport>,
    /// The first failure, if any request failed.
    pub first_error: Option<String>,
}

/// A key-value service under test. Each task of a phase works on its own clone, and all
/// clones share one connection. `bench events` and `bench broker` run their publishes
/// as a write phase through the same runner.
pub(crate) trait Target: Clone + Send + Sync + 'static {
    /// The name in [`Report::target`].
    const NAME: &'static str;

    /// Writes `value` under `key`.
    fn write(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<(), CliError>> + Send;

    /// Reads `key` linearizably; an error unless it holds exactly `expected`.
    fn read(
        &mut self,
        key: String,
        expected: &[u8],
    ) -> impl Future<Output = Result<(), CliError>> + Send;
}

/// What the tasks of one phase share.
#[derive(Debug, Clone)]
pub(crate) struct PhaseSpec {
    pub(crate) phase: Phase,
    pub(crate) key_prefix: Arc<str>,
    pub(crate) concurrency: usize,
    pub(crate) requests: usize,
    pub(crate) value_size: usize,
}

/// What one task measured.
#[derive(Debug, Default)]
struct TaskResult {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<CliError>,
}

/// Runs the write and read phases at every concurrency level of `options` against the
/// store, through the proxy `client` is connected to. Failed requests are counted; a phase
/// in which every request failed ends the run with the first failure.
pub async fn bench_store(client: &Client, options: &StoreBenchOptions) -> Result<Report, CliError> {
    options.validate()?;
    bench_levels(StoreTarget::new(client), options).await
}

/// Runs the same phases as [`bench_store`] against the etcd member whose client address
/// is `endpoint` (`host:port`), with `KV.Put` and linearizable `KV.Range`.
pub async fn bench_etcd(endpoint: &str, options: &StoreBenchOptions) -> Result<Report, CliError> {
    options.validate()?;
    bench_levels(EtcdTarget::connect(endpoint).await?, options).await
}

async fn bench_levels<T: Target>(
    target: T,
    options: &StoreBenchOptions,
) -> Result<Report, CliError> {
    let run_id = format!(
        "{:x}-{}",
        micro_core::SystemClock.now_ms(),
        std::process::id()
    );
    let mut report = Report {
        target: T::NAME,
        run_id,
        value_size: options.value_size,
        levels: Vec::with_capacity(options.concurrency.len()),
        first_error: None,
    };
    for &concurrency in &options.concurrency {
        let key_prefix: Arc<str> = format!("bench/{}-c{concurrency}/", report.run_id).into();
        let mut spec = PhaseSpec {
            phase: Phase::Write,
            key_prefix: key_prefix.clone(),
            concurrency,
            requests: options.requests,
            value_size: options.value_size,
        };
        let write = run_phase(&target, &spec, &mut report.first_error).await?;
        spec.phase = Phase::Read;
        let read = run_phase(&target, &spec, &mut report.first_error).await?;
        report.levels.push(LevelReport {
            concurrency,
            key_prefix: key_prefix.to_string(),
            write,
            read,
        });
    }
    Ok(report)
}

/// Runs one phase with `spec.concurrency` tasks and gathers their measurements.
pub(crate) async fn run_phase<T: Target>(
    target: &T,
    spec: &PhaseSpec,
    first_error: &mut Option<String>,
) -> Result<PhaseStats, CliError> {
    let tasks = spec.concurrency.min(spec.requests);
    let mut set = JoinSet::new();
    let start = Instant::now();
    for task in 0..tasks {
        let (target, spec) = (target.clone(), spec.clone());
        set.spawn(async move { run_task(target, &spec, task).await });
    }
    let mut all = TaskResult::default();
    while let Some(joined) = set.join_next().await {
        let result =
            joined.map_err(|e| CliError::new(OTHER, format!("a benchmark task failed: {e}")))?;
        all.latencies.extend(result.latencies);
        all.errors += result.errors;
        all.first_error = all.first_error.or(result.first_error);
    }
    let elapsed = start.elapsed();
    assert_eq!(all.latencies.len() + all.errors, spec.requests);
    if let Some(err) = &all.first_error {
        first_error.get_or_insert_with(|| err.message.clone());
    }
    if all.latencies.is_empty() {
        let err = all
            .first_error
            .unwrap_or_else(|| CliError::new(OTHER, "no request succeeded"));
        let message = format!("every {} failed: {}", spec.phase.name(), err.message);
        return Err(CliError::new(err.code, message));
    }
    all.latencies.sort_unstable();
    Ok(PhaseStats {
        phase: spec.phase,
        concurrency: spec.concurrency,
        requests: spec.requests,
        errors: all.errors,
        elapsed,
        latencies: all.latencies,
    })
}

/// Sends requests `task, task + tasks, ...` of the phase one after the other.
async fn run_task<T: Target>(mut target: T, spec: &PhaseSpec, task: usize) -> TaskResult {
    let tasks = spec.concurrency.min(spec.requests);
    let mut result = TaskResult {
        latencies: Vec::with_capacity(spec.requests / tasks + 1),
        ..TaskResult::default()
    };
    for index in (task..spec.requests).step_by(tasks) {
        let key = format!("{}{index}", spec.key_prefix);
        let value = value_for(&key, spec.value_size);
        let start = Instant::now();
        let outcome = match spec.phase {
            Phase::Write => target.write(key, value).await,
            Phase::Read => target.read(key, &value).await,
        };
        match outcome {
            Ok(()) => result.latencies.push(start.elapsed()),
            Err(err) => {
                result.errors += 1;
                result.first_error.get_or_insert(err);
            }
        }
    }
    result
}

/// The value of `key`: its bytes repeated to `size`, so a read can tell keys apart.
pub(crate) fn value_for(key: &str, size: usize) -> Vec<u8> {
    key.bytes().cycle().take(size).collect()
}

/// Our store, through the proxy.
#[derive(Debug, Clone)]
struct StoreTarget {
    client: Client,
    store: StoreClient<Channel>,
}

impl StoreTarget {
    fn new(client: &Client) -> Self {
        Self {
            client: client.clone(),
            store: client.store(),
        }
    }
}

impl Target for StoreTarget {
    const NAME: &'static str = "store";

    async fn write(&mut self, key: String, value: Vec<u8>) -> Result<(), CliError> {
        let request = pb::WriteRequest {
            record: Some(pb::Record {
                key,
                value,
                ..pb::Record::default()
            }),
            options: None,
        };
        self.store
            .write(self.client.request(request))
            .await
            .map_err(|s| self.client.error(&s))?;
        Ok(())
    }

    async fn read(&mut self, key: String, expected: &[u8]) -> Result<(), CliError> {
        let request = pb::ReadRequest { key, options: None };
        let reply = self
            .store
            .read(self.client.request(request))
            .await
            .map_err(|s| self.client.error(&s))?
            .into_inner();
        let found: Vec<(&[u8], &[u8])> = reply
            .records
            .iter()
            .map(|r| (r.key.as_bytes(), r.value.as_slice()))
            .collect();
        check_read(&found, expected)
    }
}

/// Passes if a read returned exactly one `(key, value)`, and its value is `expected`.
fn check_read(found: &[(&[u8], &[u8])], expected: &[u8]) -> Result<(), CliError> {
    match found {
        [(_, value)] if *value == expected => Ok(()),
        [(key, _)] => Err(CliError::new(
            OTHER,
            format!(
                "read {}: the value is not the one written",
                String::from_utf8_lossy(key)
            ),
        )),
        records => Err(CliError::new(
            OTHER,
            format!("a read returned {} records instead of 1", records.len()),
        )),
    }
}

/// The few messages of etcd's `etcdserverpb` (api/etcdserverpb/rpc.proto and
/// api/mvccpb/kv.proto) that the benchmark sends and reads, with etcd's field numbers.
/// Fields left out are skipped when decoding and never sent.
mod etcd_wire {
    /// `PutRequest`: the key and the value to store under it.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct PutRequest {
        #[prost(bytes = "vec", tag = "1")]
        pub(super) key: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub(super) value: Vec<u8>,
    }

    /// `PutResponse`: only its header, which the benchmark does not read.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct PutResponse {}

    /// `RangeRequest` for one key. `serializable` (7) stays false: a linearizable read.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct RangeRequest {
        #[prost(bytes = "vec", tag = "1")]
        pub(super) key: Vec<u8>,
        #[prost(bool, tag = "7")]
        pub(super) serializable: bool,
    }

    /// `RangeResponse`: the key-values found.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct RangeResponse {
        #[prost(message, repeated, tag = "2")]
        pub(super) kvs: Vec<KeyValue>,
    }

    /// `mvccpb.KeyValue`: a key and its value.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct KeyValue {
        #[prost(bytes = "vec", tag = "1")]
        pub(super) key: Vec<u8>,
        #[prost(bytes = "vec", tag = "5")]
        pub(super) value: Vec<u8>,
    }
}

/// An etcd member, through its v3 gRPC API.
#[derive(Debug, Clone)]
struct EtcdTarget {
    endpoint: Arc<str>,
    grpc: tonic::client::Grpc<Channel>,
}

impl EtcdTarget {
    const PUT: &'static str = "/etcdserverpb.KV/Put";
    const RANGE: &'static str = "/etcdserverpb.KV/Range";

    /// Connects to the member at `endpoint` (`host:port`).
    async fn connect(endpoint: &str) -> Result<Self, CliError> {
        let url = if endpoint.contains("://") {
            endpoint.to_owned()
        } else {
            format!("http://{endpoint}")
        };
        let channel = Endpoint::from_shared(url)
            .map_err(|e| CliError::usage(format!("invalid etcd endpoint {endpoint:?}: {e}")))?
            .connect_timeout(ETCD_CONNECT_TIMEOUT)
            .timeout(ETCD_REQUEST_TIMEOUT)
            .connect()
            .await
            .map_err(|e| {
                let why = std::error::Error::source(&e)
                    .map_or_else(|| e.to_string(), ToString::to_string);
                CliError::new(
                    UNREACHABLE,
                    format!("cannot reach etcd at {endpoint}: {why}"),
                )
            })?;
        Ok(Self {
            endpoint: endpoint.into(),
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// One unary call, as a tonic-generated client makes it.
    async fn unary<Req, Resp>(&mut self, path: &'static str, request: Req) -> Result<Resp, CliError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|e| CliError::new(UNREACHABLE, format!("etcd at {}: {e}", self.endpoint)))?;
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        let path = PathAndQuery::from_static(path);
        let reply = self
            .grpc
            .unary(tonic::Request::new(request), path, codec)
            .await
            .map_err(|s| etcd_error(&self.endpoint, &s))?;
        Ok(reply.into_inner())
    }
}

/// The CLI error an etcd status becomes.
fn etcd_error(endpoint: &str, status: &tonic::Status) -> CliError {
    let code = match status.code() {
        tonic::Code::Unavailable => UNREACHABLE,
        tonic::Code::DeadlineExceeded => TIMEOUT,
        _ => OTHER,
    };
    let message = status.message().lines().next().unwrap_or_default();
    CliError::new(
        code,
        format!("etcd at {endpoint}: {:?}: {message}", status.code()),
    )
}

impl Target for EtcdTarget {
    const NAME: &'static str = "etcd";

    async fn write(&mut self, key: String, value: Vec<u8>) -> Result<(), CliError> {
        let request = etcd_wire::PutRequest {
            key: key.into_bytes(),
            value,
        };
        let _: etcd_wire::PutResponse = self.unary(Self::PUT, request).await?;
        Ok(())
    }

    async fn read(&mut self, key: String, expected: &[u8]) -> Result<(), CliError> {
        let request = etcd_wire::RangeRequest {
            key: key.into_bytes(),
            serializable: false,
        };
        let reply: etcd_wire::RangeResponse = self.unary(Self::RANGE, request).await?;
        let found: Vec<(&[u8], &[u8])> = reply
            .kvs
            .iter()
            .map(|kv| (kv.key.as_slice(), kv.value.as_slice()))
            .collect();
        check_read(&found, expected)
    }
}

/// Runs a benchmark command and prints its report. `connect` reaches the proxy; only
/// `bench store` calls it.
pub(crate) async fn run<F, Fut>(command: BenchCommand, connect: F) -> Result<(), CliError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Client, CliError>>,
{
    let (report, output) = match command {
        BenchCommand::Store(args) => {
            let options = StoreBenchOptions::from_args(&args);
            (bench_store(&connect().await?, &options).await?, args.output)
        }
        BenchCommand::Etcd(args) => {
            let options = StoreBenchOptions::from_args(&args.bench);
            (
                bench_etcd(&args.endpoint, &options).await?,
                args.bench.output,
            )
        }
        BenchCommand::HttpPeer(args) => return crate::commands::bench_call::http_peer(args).await,
        BenchCommand::Events(args) => {
            return crate::commands::bench_events::events(&connect().await?, &args).await;
        }
        BenchCommand::Broker(args) => {
            return crate::commands::bench_events::broker(&connect().await?, &args).await;
        }
        BenchCommand::Call(args) => {
            let client = connect().await?;
            return crate::commands::bench_call::run(client.proxy(), client.token(), args).await;
        }
    };
    match output {
        Output::Table => print_report_table(&report),
        Output::Json => println!("{}", report_json(&report)),
    }
    if let Some(err) = &report.first_error {
        eprintln!("warning: some requests failed; the first: {err}");
    }
    Ok(())
}

fn phases(report: &Report) -> impl Iterator<Item = &PhaseStats> {
    report.levels.iter().flat_map(|l| [&l.write, &l.read])
}

fn print_report_table(report: &Report) {
    let rows = phases(report)
        .map(|p| {
            let mut row = vec![p.phase.name().to_owned()];
            row.extend(p.table_cells());
            row
        })
        .collect();
    let mut header = vec!["PHASE"];
    header.extend(STATS_HEADER);
    print_table(&header, rows);
}

fn report_json(report: &Report) -> serde_json::Value {
    let results: Vec<serde_json::Value> = phases(report)
        .map(|p| {
            let mut fields = p.json_fields();
            fields.insert("phase".to_owned(), p.phase.name().into());
            serde_json::Value::Object(fields)
        })
        .collect();
    serde_json::json!({
        "target": report.target,
        "run_id": report.run_id,
        "value_size": report.value_size,
        "results": results,
        "first_error": report.first_error,
    })
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let stats = PhaseStats {
            phase: Phase::Read,
            concurrency: 1,
            requests: 100,
            errors: 0,
            elapsed: Duration::from_secs(2),
            latencies: (1..=100).map(Duration::from_millis).collect(),
        };
        assert_eq!(stats.percentile_ms(50), Some(50.0));
        assert_eq!(stats.percentile_ms(99), Some(99.0));
        assert!((stats.ops_per_sec() - 50.0).abs() < 1e-9);
        let empty = PhaseStats {
            latencies: Vec::new(),
            ..stats
        };
        assert_eq!(empty.percentile_ms(99), None);
    }

    #[test]
    fn values_depend_on_the_key() {
        assert_eq!(value_for("ab", 5), b"ababa");
        assert!(value_for("ab", 0).is_empty());
        assert_ne!(value_for("k1", 8), value_for("k2", 8));
    }

    #[test]
    fn etcd_requests_use_etcds_field_numbers() {
        let put = etcd_wire::PutRequest {
            key: b"k".to_vec(),
            value: b"vv".to_vec(),
        };
        // Field 1 (key) and field 2 (value), both length-delimited (wire type 2).
        let bytes = put.encode_to_vec();
        assert_eq!(bytes, [0x0a, 1, b'k', 0x12, 2, b'v', b'v']);
        assert_eq!(
            etcd_wire::PutRequest::decode(bytes.as_slice()).unwrap(),
            put
        );

        // A linearizable range sends only its key: `serializable` (field 7) is false.
        let range = etcd_wire::RangeRequest {
            key: b"k".to_vec(),
            serializable: false,
        };
        assert_eq!(range.encode_to_vec(), [0x0a, 1, b'k']);
        let stale = etcd_wire::RangeRequest {
            serializable: true,
            ..range
        };
        assert_eq!(stale.encode_to_vec(), [0x0a, 1, b'k', 0x38, 1]);
    }

    #[test]
    fn etcd_range_responses_decode_kvs_and_skip_the_rest() {
        // header (1) {revision (3) = 7}, kvs (2) {key (1) = "k", create_revision (2) = 5,
        // value (5) = "v"}, count (4) = 1.
        let bytes = [
            0x0a, 2, 0x18, 7, 0x12, 8, 0x0a, 1, b'k', 0x10, 5, 0x2a, 1, b'v', 0x20, 1,
        ];
        let reply = etcd_wire::RangeResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(reply.kvs.len(), 1);
        assert_eq!(reply.kvs[0].key, b"k");
        assert_eq!(reply.kvs[0].value, b"v");
        assert!(etcd_wire::PutResponse::decode(&bytes[..4]).is_ok());
    }

    #[test]
    fn reads_check_the_value() {
        let (k, v, w): (&[u8], &[u8], &[u8]) = (b"k", b"v", b"w");
        assert!(check_read(&[(k, v)], v).is_ok());
        let wrong = check_read(&[(k, w)], v).unwrap_err();
        assert_eq!(wrong.message, "read k: the value is not the one written");
        assert!(check_read(&[], v).is_err());
        assert!(check_read(&[(k, v), (k, v)], v).is_err());
    }
}
