//! `debug.Debug`: health and process statistics of the node.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use micro_core::Clock;
use micro_proto::debug as pb;
use micro_proto::debug::debug_server::Debug;
use tonic::{Request, Response, Status};

use crate::proxy::store::Counters;

/// The `debug.Debug` gRPC service of a node.
#[derive(Debug, Clone)]
pub struct DebugService {
    clock: Arc<dyn Clock>,
    started_ms: u64,
    counters: Arc<Counters>,
    metrics: crate::Metrics,
}

impl DebugService {
    /// A debug service counting the requests of `store`, with the node's spans from
    /// `metrics`.
    pub fn new(
        clock: Arc<dyn Clock>,
        store: &crate::StoreService,
        metrics: crate::Metrics,
    ) -> Self {
        Self {
            started_ms: clock.now_ms(),
            clock,
            counters: store.counters(),
            metrics,
        }
    }
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

#[tonic::async_trait]
impl Debug for DebugService {
    async fn health(
        &self,
        _request: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        Ok(Response::new(pb::HealthResponse {
            status: "ok".to_owned(),
        }))
    }

    async fn stats(
        &self,
        _request: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::StatsResponse>, Status> {
        let now = self.clock.now_ms();
        Ok(Response::new(pb::StatsResponse {
            timestamp: now / 1000,
            started: self.started_ms / 1000,
            uptime: now.saturating_sub(self.started_ms) / 1000,
            memory: proc_status("VmRSS") * 1024,
            threads: proc_status("Threads"),
            gc: 0,
            requests: self.counters.requests.load(Ordering::Relaxed),
            errors: self.counters.errors.load(Ordering::Relaxed),
        }))
    }

    async fn log(
        &self,
        request: Request<pb::LogRequest>,
    ) -> Result<Response<pb::LogResponse>, Status> {
        let request = request.into_inner();
        let records = micro::debug::recent_records(request.count, request.since);
        Ok(Response::new(pb::LogResponse { records }))
    }

    async fn trace(
        &self,
        request: Request<pb::TraceRequest>,
    ) -> Result<Response<pb::TraceResponse>, Status> {
        let spans = self.metrics.spans(&request.into_inner().id);
        Ok(Response::new(pb::TraceResponse { spans }))
    }
}
