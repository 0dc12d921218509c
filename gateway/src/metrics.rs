//! Prometheus metrics of a node, served as text on `GET /metrics` of its api listener.
//!
//! ```text
//! proxy (gRPC) and api (HTTP) middleware ─> Metrics::record(door, service, endpoint, code, time)
//!     micro_requests_total{door,service,endpoint,code}     counter
//!     micro_request_duration_seconds{door,service,endpoint} histogram (to the response head)
//! sampler (every SAMPLE_EVERY)        ─> micro_raft_leader_changes_total
//! GET /metrics ─> the above + Raft gauges (term, commit and applied index, apply lag, leader)
//!              + micro_events_backlog{namespace,topic,group} from the replicated state
//! ```
//!
//! Store operations are the requests of service `store`; a stream counts once, timed to
//! its first response.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use micro_core::replicator::Replicator;

/// The histogram's upper bounds (seconds).
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// How often leadership is sampled for `micro_raft_leader_changes_total`.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// The most label sets kept per metric: a client inventing endpoint names must not grow
/// the node's memory without bound (later ones are counted under `endpoint="other"`).
pub const SERIES_MAX: usize = 4096;

type Labels = (String, String, String);

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(Labels, String), u64>,
    durations: BTreeMap<Labels, Histogram>,
    leader: Option<u64>,
    leader_changes: u64,
    spans: std::collections::VecDeque<micro_proto::debug::Span>,
    next_span: u64,
}

/// How many spans of its own doors a node keeps (`/debug.Debug/Trace`).
pub const SPANS_MAX: usize = 2000;

/// The trace id a request or response carries in `micro-trace-id`.
fn trace_of(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("micro-trace-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A node's metrics.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Counts one request through `door` (`grpc` or `http`) to `service`/`endpoint`,
    /// answered with `code` after `elapsed`.
    pub fn record(&self, door: &str, service: &str, endpoint: &str, code: &str, elapsed: Duration) {
        let mut inner = lock(&self.inner);
        let mut labels = (door.to_owned(), service.to_owned(), endpoint.to_owned());
        if !inner.durations.contains_key(&labels) && inner.durations.len() >= SERIES_MAX {
            labels = (door.to_owned(), "other".to_owned(), "other".to_owned());
        }
        *inner
            .requests
            .entry((labels.clone(), code.to_owned()))
            .or_default() += 1;
        let histogram = inner.durations.entry(labels).or_default();
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// Keeps a span of a request through one of the node's doors.
    pub fn span(&self, trace: String, name: String, door: &str, began_ms: u64, elapsed: Duration) {
        let mut inner = lock(&self.inner);
        inner.next_span += 1;
        let span = micro_proto::debug::Span {
            trace,
            id: format!("{door}-{:x}", inner.next_span),
            parent: String::new(),
            name,
            started: began_ms.saturating_mul(1_000_000),
            duration: u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            metadata: std::collections::HashMap::from([("door".to_owned(), door.to_owned())]),
            r#type: micro_proto::debug::SpanType::Inbound.into(),
        };
        if inner.spans.len() >= SPANS_MAX {
            inner.spans.pop_front();
        }
        inner.spans.push_back(span);
    }

    /// The node's spans of trace `id` (every kept span when `id` is empty).
    pub fn spans(&self, id: &str) -> Vec<micro_proto::debug::Span> {
        lock(&self.inner)
            .spans
            .iter()
            .filter(|s| id.is_empty() || s.trace == id)
            .cloned()
            .collect()
    }

    /// Notes the current leader; counts a change.
    pub fn observe_leader(&self, leader: Option<u64>) {
        let mut inner = lock(&self.inner);
        if leader.is_some() && inner.leader != leader {
            if inner.leader.is_some() {
                inner.leader_changes += 1;
            }
            inner.leader = leader;
        }
    }

    /// Samples leadership every [`SAMPLE_EVERY`] until the task is aborted.
    pub fn spawn_sampler(&self, replicator: Arc<dyn Replicator>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                this.observe_leader(replicator.status().leader);
            }
        })
    }

    /// The Prometheus text exposition (version 0.0.4) of everything.
    pub fn render(&self, replicator: &dyn Replicator) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);
        render_raft(&mut out, replicator, lock(&self.inner).leader_changes);
        render_backlog(&mut out, replicator);
        out
    }

    fn render_requests(&self, out: &mut String) {
        let inner = lock(&self.inner);
        out.push_str("# HELP micro_requests_total Requests by door, service, endpoint and code.\n");
        out.push_str("# TYPE micro_requests_total counter\n");
        for (((door, service, endpoint), code), n) in &inner.requests {
            let labels = labels(&[
                ("door", door),
                ("service", service),
                ("endpoint", endpoint),
                ("code", code),
            ]);
            let _ = writeln!(out, "micro_requests_total{{{labels}}} {n}");
        }
        out.push_str("# HELP micro_request_duration_seconds Time to the response's head.\n");
        out.push_str("# TYPE micro_request_duration_seconds histogram\n");
        for ((door, service, endpoint), h) in &inner.durations {
            let base = labels(&[("door", door), ("service", service), ("endpoint", endpoint)]);
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(
                    out,
                    "micro_request_duration_seconds_bucket{{{base},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "micro_request_duration_seconds_bucket{{{base},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "micro_request_duration_seconds_sum{{{base}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "micro_request_duration_seconds_count{{{base}}} {}",
                h.count
            );
        }
    }
}

fn render_raft(out: &mut String, replicator: &dyn Replicator, leader_changes: u64) {
    let status = replicator.status();
    let leading = u8::from(status.leader == Some(status.node_id));
    let lag = status.commit_index.saturating_sub(status.applied_index);
    let gauges: [(&str, &str, u64); 6] = [
        ("micro_raft_term", "The current Raft term.", status.term),
        (
            "micro_raft_commit_index",
            "The last committed log index.",
            status.commit_index,
        ),
        (
            "micro_raft_applied_index",
            "The last applied log index.",
            status.applied_index,
        ),
        (
            "micro_raft_apply_lag",
            "Committed entries not applied yet.",
            lag,
        ),
        (
            "micro_raft_is_leader",
            "1 on the leader.",
            u64::from(leading),
        ),
        (
            "micro_raft_members",
            "Members of the cluster.",
            status.members.len() as u64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let name = "micro_raft_leader_changes_total";
    let _ = writeln!(
        out,
        "# HELP {name} Leader changes this node saw.\n# TYPE {name} counter\n{name} {leader_changes}"
    );
}

fn render_backlog(out: &mut String, replicator: &dyn Replicator) {
    let reader = replicator.reader();
    let Ok(groups) = reader.events_groups() else {
        return;
    };
    let name = "micro_events_backlog";
    let _ = writeln!(
        out,
        "# HELP {name} Events of a topic a consumer group has not acknowledged yet.\n# TYPE {name} gauge"
    );
    for (namespace, topic, group, state) in groups {
        let head = reader.events_head(&namespace, &topic).unwrap_or_default();
        let unclaimed = head
            .next_seq
            .saturating_sub(state.next_seq.max(head.first_seq));
        let backlog = unclaimed + state.pending.len() as u64;
        let labels = labels(&[
            ("namespace", namespace.as_str()),
            ("topic", &topic),
            ("group", &group),
        ]);
        let _ = writeln!(out, "{name}{{{labels}}} {backlog}");
    }
}

/// `k="v",...` with values escaped as the text format requires.
fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The service and endpoint of a gRPC path (`/store.Store/Read` -> `store`, `Store.Read`).
pub fn grpc_labels(path: &str) -> (String, String) {
    let trimmed = path.trim_start_matches('/');
    let Some((full, method)) = trimmed.split_once('/') else {
        return ("other".to_owned(), "other".to_owned());
    };
    match full.rsplit_once('.') {
        Some((package, handler)) => (package.to_owned(), format!("{handler}.{method}")),
        None => (full.to_owned(), method.to_owned()),
    }
}

/// Axum middleware timing gRPC requests on the proxy.
pub async fn grpc_layer(
    axum::extract::State(metrics): axum::extract::State<Metrics>,
    request: axum::http::Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (service, endpoint) = grpc_labels(request.uri().path());
    let trace = trace_of(request.headers());
    let name = request.uri().path().to_owned();
    let began_ms = micro_core::Clock::now_ms(&micro_core::SystemClock);
    let started = tokio::time::Instant::now();
    let response = next.run(request).await;
    metrics.span(
        trace,
        format!("grpc {name}"),
        "grpc",
        began_ms,
        started.elapsed(),
    );
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(if response.status().is_success() {
            "0"
        } else {
            "unknown"
        })
        .to_owned();
    metrics.record("grpc", &service, &endpoint, &code, started.elapsed());
    response
}

/// Axum middleware timing HTTP requests on the api listener (`/metrics`, `/health`
/// and preflights are not counted).
pub async fn http_layer(
    axum::extract::State(metrics): axum::extract::State<Metrics>,
    request: axum::http::Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path().to_owned();
    let counted = request.method() != axum::http::Method::OPTIONS
        && !matches!(path.as_str(), "/" | "/metrics" | "/health");
    let began_ms = micro_core::Clock::now_ms(&micro_core::SystemClock);
    let started = tokio::time::Instant::now();
    let response = next.run(request).await;
    if counted {
        let trace = trace_of(response.headers());
        metrics.span(
            trace,
            format!("http {path}"),
            "http",
            began_ms,
            started.elapsed(),
        );
        let (service, endpoint) =
            crate::api::resolve(&path).unwrap_or_else(|| ("other".to_owned(), "other".to_owned()));
        let code = response.status().as_u16().to_string();
        metrics.record("http", &service, &endpoint, &code, started.elapsed());
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_service_and_endpoint() {
        assert_eq!(
            grpc_labels("/store.Store/Read"),
            ("store".into(), "Store.Read".into())
        );
        assert_eq!(
            grpc_labels("/helloworld.Helloworld/Call"),
            ("helloworld".into(), "Helloworld.Call".into())
        );
        assert_eq!(grpc_labels("/x"), ("other".into(), "other".into()));
    }

    #[test]
    fn requests_render_as_counters_and_histograms() {
        let metrics = Metrics::default();
        metrics.record("grpc", "store", "Store.Read", "0", Duration::from_millis(3));
        metrics.record("grpc", "store", "Store.Read", "5", Duration::from_secs(20));
        let mut out = String::new();
        metrics.render_requests(&mut out);
        assert!(out.contains(r#"micro_requests_total{door="grpc",service="store",endpoint="Store.Read",code="0"} 1"#), "{out}");
        assert!(out.contains(r#"le="0.005"} 1"#), "{out}");
        assert!(out.contains(r#"le="+Inf"} 2"#), "{out}");
        assert!(out.contains(r#"micro_request_duration_seconds_count{door="grpc",service="store",endpoint="Store.Read"} 2"#));
        assert_eq!(labels(&[("a", "x\"y\\")]), r#"a="x\"y\\""#);
    }

    #[test]
    fn leader_changes_are_counted_once_each() {
        let metrics = Metrics::default();
        for leader in [None, Some(1), Some(1), None, Some(2), Some(3)] {
            metrics.observe_leader(leader);
        }
        assert_eq!(lock(&metrics.inner).leader_changes, 2);
    }
}
