//! `micro bench store`: throughput and latency of the store, measured through the proxy.
//!
//! For each concurrency level C the benchmark runs a Write phase (N writes of distinct
//! keys) and then a Read phase (N reads of those keys, each checked against the value
//! written). C tokio tasks share one gRPC channel; task `t` sends requests `t, t+C, ...`
//! one after the other, timing each with [`tokio::time::Instant`].
//!
//! ```text
//! level C ─> write: C tasks ─> N × Store.Write(bench/<run-id>/<i>) ─> PhaseStats
//!         ─> read:  C tasks ─> N × Store.Read(bench/<run-id>/<i>)  ─> PhaseStats
//! ```

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use micro_core::Clock;
use micro_proto::store as pb;
use micro_proto::store::store_client::StoreClient;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::client::Client;
use crate::commands::output::{Output, print_table};
use crate::exit::{CliError, OTHER};

/// The most requests one phase of one level may send.
pub const REQUESTS_MAX: u32 = 10_000_000;
/// The most concurrent tasks one level may run.
pub const CONCURRENCY_MAX: u32 = 4096;

/// Benchmark commands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write then read distinct keys at each concurrency level; report ops/s, p50, p99
    #[command(
        after_help = "Examples:\n  micro bench store\n  micro bench store --requests 1000 --concurrency 1,8 --output json\n\nKeys are left in the store under bench/<run-id>-c<C>/."
    )]
    Store(StoreArgs),
}

/// The flags of `micro bench store`.
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

/// What [`bench_store`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreBenchOptions {
    /// Requests per phase at each level (at least 1).
    pub requests: usize,
    /// The concurrency levels, in the order they run (each at least 1).
    pub concurrency: Vec<usize>,
    /// Bytes per value written.
    pub value_size: usize,
}

/// A phase of one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `Store.Write` of distinct keys.
    Write,
    /// `Store.Read` of the keys the write phase wrote.
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
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            count_f64(self.latencies.len()) / secs
        } else {
            0.0
        }
    }

    /// The `percent`-th percentile latency in milliseconds (nearest rank), if any request
    /// succeeded.
    pub fn percentile_ms(&self, percent: usize) -> Option<f64> {
        assert!((1..=100).contains(&percent), "a percentile is in 1..=100");
        let count = self.latencies.len();
        let rank = (percent * count).div_ceil(100);
        let index = rank.checked_sub(1)?;
        self.latencies
            .get(index)
            .map(|latency| latency.as_secs_f64() * 1000.0)
    }
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

/// The result of [`bench_store`].
#[derive(Debug, Clone)]
pub struct Report {
    /// Names this run's keys: `bench/<run_id>-c<C>/<i>`.
    pub run_id: String,
    /// Bytes per value.
    pub value_size: usize,
    /// One report per concurrency level, in the order they ran.
    pub levels: Vec<LevelReport>,
    /// The first failure, if any request failed.
    pub first_error: Option<String>,
}

/// What the tasks of one phase share.
#[derive(Debug, Clone)]
struct PhaseSpec {
    phase: Phase,
    key_prefix: Arc<str>,
    concurrency: usize,
    requests: usize,
    value_size: usize,
}

/// What one task measured.
#[derive(Debug, Default)]
struct TaskResult {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<CliError>,
}

/// Runs the write and read phases at every concurrency level of `options`. Failed
/// requests are counted; a phase in which every request failed ends the run with the
/// first failure.
pub async fn bench_store(client: &Client, options: &StoreBenchOptions) -> Result<Report, CliError> {
    if options.requests == 0 || options.concurrency.is_empty() {
        return Err(CliError::usage(
            "need at least one request and one concurrency level",
        ));
    }
    let Some(&level) = options.concurrency.iter().find(|&&c| c == 0) else {
        return bench_levels(client, options).await;
    };
    Err(CliError::usage(format!(
        "a concurrency level must be at least 1, got {level}"
    )))
}

async fn bench_levels(client: &Client, options: &StoreBenchOptions) -> Result<Report, CliError> {
    let run_id = format!(
        "{:x}-{}",
        micro_core::SystemClock.now_ms(),
        std::process::id()
    );
    let mut report = Report {
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
        let write = run_phase(client, &spec, &mut report.first_error).await?;
        spec.phase = Phase::Read;
        let read = run_phase(client, &spec, &mut report.first_error).await?;
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
async fn run_phase(
    client: &Client,
    spec: &PhaseSpec,
    first_error: &mut Option<String>,
) -> Result<PhaseStats, CliError> {
    let tasks = spec.concurrency.min(spec.requests);
    let mut set = JoinSet::new();
    let start = Instant::now();
    for task in 0..tasks {
        let (client, store, spec) = (client.clone(), client.store(), spec.clone());
        set.spawn(async move { run_task(&client, store, &spec, task).await });
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
async fn run_task(
    client: &Client,
    mut store: StoreClient<Channel>,
    spec: &PhaseSpec,
    task: usize,
) -> TaskResult {
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
            Phase::Write => write_one(client, &mut store, key, value).await,
            Phase::Read => read_one(client, &mut store, key, &value).await,
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
fn value_for(key: &str, size: usize) -> Vec<u8> {
    key.bytes().cycle().take(size).collect()
}

async fn write_one(
    client: &Client,
    store: &mut StoreClient<Channel>,
    key: String,
    value: Vec<u8>,
) -> Result<(), CliError> {
    let request = pb::WriteRequest {
        record: Some(pb::Record {
            key,
            value,
            ..pb::Record::default()
        }),
        options: None,
    };
    store
        .write(client.request(request))
        .await
        .map_err(|s| client.error(&s))?;
    Ok(())
}

async fn read_one(
    client: &Client,
    store: &mut StoreClient<Channel>,
    key: String,
    expected: &[u8],
) -> Result<(), CliError> {
    let request = pb::ReadRequest { key, options: None };
    let reply = store
        .read(client.request(request))
        .await
        .map_err(|s| client.error(&s))?
        .into_inner();
    match reply.records.as_slice() {
        [record] if record.value == expected => Ok(()),
        [record] => Err(CliError::new(
            OTHER,
            format!("read {}: the value is not the one written", record.key),
        )),
        records => Err(CliError::new(
            OTHER,
            format!("a read returned {} records instead of 1", records.len()),
        )),
    }
}

/// Runs a benchmark command and prints its report.
pub(crate) async fn run(client: &Client, command: BenchCommand) -> Result<(), CliError> {
    let BenchCommand::Store(args) = command;
    let options = StoreBenchOptions {
        requests: usize::try_from(args.requests).unwrap_or(usize::MAX),
        concurrency: args
            .concurrency
            .iter()
            .map(|&c| usize::try_from(c).unwrap_or(usize::MAX))
            .collect(),
        value_size: args.value_size,
    };
    let report = bench_store(client, &options).await?;
    match args.output {
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
    let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    let rows = phases(report)
        .map(|p| {
            vec![
                p.phase.name().to_owned(),
                p.concurrency.to_string(),
                p.requests.to_string(),
                format!("{:.0}", p.ops_per_sec()),
                ms(p.percentile_ms(50)),
                ms(p.percentile_ms(99)),
                p.errors.to_string(),
            ]
        })
        .collect();
    let header = [
        "PHASE",
        "CONCURRENCY",
        "REQUESTS",
        "OPS/S",
        "P50 MS",
        "P99 MS",
        "ERRORS",
    ];
    print_table(&header, rows);
}

fn report_json(report: &Report) -> serde_json::Value {
    let results: Vec<serde_json::Value> = phases(report)
        .map(|p| {
            serde_json::json!({
                "phase": p.phase.name(),
                "concurrency": p.concurrency,
                "requests": p.requests,
                "errors": p.errors,
                "seconds": p.elapsed.as_secs_f64(),
                "ops_per_sec": p.ops_per_sec(),
                "p50_ms": p.percentile_ms(50),
                "p99_ms": p.percentile_ms(99),
            })
        })
        .collect();
    serde_json::json!({
        "run_id": report.run_id,
        "value_size": report.value_size,
        "results": results,
        "first_error": report.first_error,
    })
}

#[cfg(test)]
mod tests {
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
}
