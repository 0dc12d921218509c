//! The `Debug` handler every service answers without declaring it (Micro v3's internal
//! debug handler): `/<service>.Debug/{Health,Stats,Log,Trace}`.
//!
//! ```text
//! RunningService::call(Debug.X) ──> answered here (protobuf or JSON), never a handler
//! RunningService::call(other)  ──> requests += 1 ─> the chain ─> Err item: errors += 1
//!                                    └─ a span {trace, id, parent, name, started, duration}
//!                                       into the ring of recent spans (Debug.Trace)
//! tracing events of the process (log_layer) ──> ring of recent records (Debug.Log)
//! ```
//!
//! Trace ids travel in metadata [`TRACE_HEADER`] (the node's router sets one on every
//! call that has none); a span's parent is the caller's [`SPAN_HEADER`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use micro_core::service::{Call, is_json};
use micro_core::{Clock, SystemClock};
use micro_proto::debug as pb;
use prost::Message;

use crate::error::{self, Error};

/// The metadata key of a call's trace id.
pub const TRACE_HEADER: &str = "micro-trace-id";
/// The metadata key of the calling span's id.
pub const SPAN_HEADER: &str = "micro-span-id";
/// How many spans a service keeps.
pub const SPANS_MAX: usize = 1000;
/// How many log records a process keeps.
pub const RECORDS_MAX: usize = 1000;

/// Whether `endpoint` is one of the debug endpoints.
pub(crate) fn is_debug(endpoint: &str) -> bool {
    endpoint.starts_with("Debug.")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ns() -> u64 {
    SystemClock.now_ms().saturating_mul(1_000_000)
}

/// A service's counters and recent spans.
#[derive(Debug)]
pub(crate) struct DebugState {
    name: String,
    started_ms: u64,
    requests: AtomicU64,
    errors: AtomicU64,
    spans: Mutex<VecDeque<pb::Span>>,
    next_span: AtomicU64,
}

/// A call in flight: finished once with its outcome.
#[derive(Debug)]
pub(crate) struct SpanGuard {
    state: Arc<DebugState>,
    span: pb::Span,
    began: tokio::time::Instant,
    failed: bool,
}

impl SpanGuard {
    /// Records the span (and an error, if the call failed).
    pub(crate) fn finish(mut self, failed: bool) {
        self.failed = failed;
    }
}

/// A span is recorded when its guard goes: at the call's end, or when the caller drops
/// the replies after the first (a unary call through the HTTP api).
impl Drop for SpanGuard {
    fn drop(&mut self) {
        let mut span = std::mem::take(&mut self.span);
        if self.failed {
            self.state.errors.fetch_add(1, Ordering::Relaxed);
            span.metadata.insert("error".to_owned(), "true".to_owned());
        }
        span.duration = u64::try_from(self.began.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut spans = lock(&self.state.spans);
        if spans.len() >= SPANS_MAX {
            spans.pop_front();
        }
        spans.push_back(span);
    }
}

impl DebugState {
    /// The state of service `name`, started now.
    pub(crate) fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            started_ms: SystemClock.now_ms(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            spans: Mutex::new(VecDeque::new()),
            next_span: AtomicU64::new(1),
        })
    }

    /// Counts a call and opens its span.
    pub(crate) fn begin(self: &Arc<Self>, call: &Call) -> SpanGuard {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let n = self.next_span.fetch_add(1, Ordering::Relaxed);
        let span = pb::Span {
            trace: call.metadata.get(TRACE_HEADER).cloned().unwrap_or_default(),
            id: format!("{:x}-{n:x}", self.started_ms),
            parent: call.metadata.get(SPAN_HEADER).cloned().unwrap_or_default(),
            name: format!("{}.{}", self.name, call.endpoint),
            started: now_ns(),
            duration: 0,
            metadata: std::collections::HashMap::from([("service".to_owned(), self.name.clone())]),
            r#type: pb::SpanType::Inbound.into(),
        };
        SpanGuard {
            state: self.clone(),
            span,
            began: tokio::time::Instant::now(),
            failed: false,
        }
    }

    /// Answers a `Debug.*` call.
    pub(crate) fn answer(&self, call: &Call) -> Result<Vec<u8>, Error> {
        let json = is_json(&call.content_type);
        let method = call.endpoint.trim_start_matches("Debug.");
        let bad = |e: &dyn std::fmt::Display| {
            error::bad_request(&self.name, format!("{}: {e}", call.endpoint))
        };
        let decode_json = |body: &[u8]| -> Result<serde_json::Value, Error> {
            if body.is_empty() {
                return Ok(serde_json::json!({}));
            }
            serde_json::from_slice(body).map_err(|e| bad(&e))
        };
        match method {
            "Health" => Ok(encode(
                json,
                &pb::HealthResponse {
                    status: "ok".to_owned(),
                },
                || serde_json::json!({ "status": "ok" }),
            )),
            "Stats" => {
                let stats = self.stats();
                Ok(encode(json, &stats, || stats_json(&stats)))
            }
            "Log" => {
                let (count, since) = if json {
                    let v = decode_json(&call.body)?;
                    (int(&v, "count"), int(&v, "since"))
                } else {
                    let r = pb::LogRequest::decode(call.body.as_slice()).map_err(|e| bad(&e))?;
                    (r.count, r.since)
                };
                let records = recent_records(count, since);
                let reply = pb::LogResponse { records };
                Ok(encode(json, &reply, || log_json(&reply)))
            }
            "Trace" => {
                let id = if json {
                    let v = decode_json(&call.body)?;
                    v.get("id")
                        .and_then(|i| i.as_str())
                        .unwrap_or_default()
                        .to_owned()
                } else {
                    pb::TraceRequest::decode(call.body.as_slice())
                        .map_err(|e| bad(&e))?
                        .id
                };
                let spans: Vec<pb::Span> = lock(&self.spans)
                    .iter()
                    .filter(|s| id.is_empty() || s.trace == id)
                    .cloned()
                    .collect();
                let reply = pb::TraceResponse { spans };
                Ok(encode(json, &reply, || trace_json(&reply)))
            }
            _ => Err(error::not_found(
                &self.name,
                format!(
                    "{} has no endpoint {}; Debug has Health, Stats, Log and Trace",
                    self.name, call.endpoint
                ),
            )),
        }
    }

    fn stats(&self) -> pb::StatsResponse {
        let now = SystemClock.now_ms();
        pb::StatsResponse {
            timestamp: now / 1000,
            started: self.started_ms / 1000,
            uptime: now.saturating_sub(self.started_ms) / 1000,
            memory: proc_status("VmRSS") * 1024,
            threads: proc_status("Threads"),
            gc: 0,
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

fn int(v: &serde_json::Value, key: &str) -> i64 {
    match v.get(key) {
        Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn encode<M: Message>(
    json: bool,
    message: &M,
    as_json: impl FnOnce() -> serde_json::Value,
) -> Vec<u8> {
    if json {
        as_json().to_string().into_bytes()
    } else {
        message.encode_to_vec()
    }
}

fn stats_json(s: &pb::StatsResponse) -> serde_json::Value {
    // 64-bit integers as strings, as protobuf's JSON mapping writes them.
    serde_json::json!({
        "timestamp": s.timestamp.to_string(), "started": s.started.to_string(),
        "uptime": s.uptime.to_string(), "memory": s.memory.to_string(),
        "threads": s.threads.to_string(), "gc": s.gc.to_string(),
        "requests": s.requests.to_string(), "errors": s.errors.to_string(),
    })
}

fn log_json(r: &pb::LogResponse) -> serde_json::Value {
    let records: Vec<serde_json::Value> = r
        .records
        .iter()
        .map(|r| {
            serde_json::json!({
                "timestamp": r.timestamp.to_string(), "message": r.message,
                "metadata": r.metadata.iter().collect::<BTreeMap<_, _>>(),
            })
        })
        .collect();
    serde_json::json!({ "records": records })
}

fn trace_json(r: &pb::TraceResponse) -> serde_json::Value {
    let spans: Vec<serde_json::Value> = r
        .spans
        .iter()
        .map(|s| {
            serde_json::json!({
                "trace": s.trace, "id": s.id, "parent": s.parent, "name": s.name,
                "started": s.started.to_string(), "duration": s.duration.to_string(),
                "metadata": s.metadata.iter().collect::<BTreeMap<_, _>>(),
                "type": if s.r#type == 1 { "OUTBOUND" } else { "INBOUND" },
            })
        })
        .collect();
    serde_json::json!({ "spans": spans })
}

/// Reads a `Name:  value` line of `/proc/self/status` as a number (the first word).
fn proc_status(field: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The process's recent log records.
fn records() -> &'static Mutex<VecDeque<pb::Record>> {
    static RECORDS: OnceLock<Mutex<VecDeque<pb::Record>>> = OnceLock::new();
    RECORDS.get_or_init(|| Mutex::new(VecDeque::new()))
}

/// The process's last `count` log records (all kept when 0) at or after `since` (Unix
/// seconds), as [`log_layer`] kept them.
pub fn recent_records(count: i64, since: i64) -> Vec<pb::Record> {
    let records = lock(records());
    let mut out: Vec<pb::Record> = records
        .iter()
        .filter(|r| r.timestamp >= since)
        .cloned()
        .collect();
    let count = usize::try_from(count).unwrap_or(0);
    if count > 0 && out.len() > count {
        out.drain(..out.len() - count);
    }
    out
}

/// A `tracing` layer keeping the process's recent events for `Debug.Log` (installed
/// by process mode with its fmt subscriber; a node hosting in-node services installs
/// it in its own).
pub fn log_layer<S: tracing::Subscriber>() -> impl tracing_subscriber::Layer<S> {
    RecordLayer
}

struct RecordLayer;

struct Fields {
    message: String,
    metadata: std::collections::HashMap<String, String>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.metadata
                .insert(field.name().to_owned(), format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        } else {
            self.metadata
                .insert(field.name().to_owned(), value.to_owned());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RecordLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = Fields {
            message: String::new(),
            metadata: std::collections::HashMap::new(),
        };
        event.record(&mut fields);
        let meta = event.metadata();
        fields
            .metadata
            .insert("level".to_owned(), meta.level().to_string());
        fields
            .metadata
            .insert("target".to_owned(), meta.target().to_owned());
        let record = pb::Record {
            timestamp: i64::try_from(SystemClock.now_ms() / 1000).unwrap_or(i64::MAX),
            metadata: fields.metadata,
            message: fields.message,
        };
        let mut records = lock(records());
        if records.len() >= RECORDS_MAX {
            records.pop_front();
        }
        records.push_back(record);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn call(endpoint: &str, body: &str) -> Call {
        Call {
            endpoint: endpoint.to_owned(),
            content_type: micro_core::service::CONTENT_JSON.to_owned(),
            body: body.as_bytes().to_vec(),
            ..Call::default()
        }
    }

    #[test]
    fn spans_and_counters_answer_stats_and_trace() {
        let state = DebugState::new("greeter");
        let mut traced = call("Greeter.Call", "{}");
        traced
            .metadata
            .insert(TRACE_HEADER.to_owned(), "t1".to_owned());
        state.begin(&traced).finish(false);
        state.begin(&call("Greeter.Call", "{}")).finish(true);
        let stats: serde_json::Value =
            serde_json::from_slice(&state.answer(&call("Debug.Stats", "")).unwrap()).unwrap();
        assert_eq!(stats["requests"], "2");
        assert_eq!(stats["errors"], "1");
        let trace: serde_json::Value = serde_json::from_slice(
            &state
                .answer(&call("Debug.Trace", r#"{"id":"t1"}"#))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(trace["spans"].as_array().unwrap().len(), 1);
        assert_eq!(trace["spans"][0]["name"], "greeter.Greeter.Call");
        let health = state.answer(&call("Debug.Health", "")).unwrap();
        assert_eq!(health, br#"{"status":"ok"}"#);
        assert_eq!(state.answer(&call("Debug.Nope", "")).unwrap_err().code, 404);
        assert_eq!(
            state
                .answer(&call("Debug.Log", "{not json"))
                .unwrap_err()
                .code,
            400
        );
    }
}
