//! Prometheus metrics: the process-wide recorder, `GET /metrics`, and the layer
//! that counts HTTP requests.
//!
//! Metrics (all prefixed `sessiond_`):
//! - `http_requests_total{method, route, status}`, `http_request_seconds{method, route}`
//! - `event_streams` (open SSE streams and WebSockets), `sessions_resident` (at scrape time)
//! - `runs_started_total`, `runs_ended_total{outcome}` (sessiond-actors; a run lost
//!   with its node or actor is counted `interrupted` where it is restored)
//! - `writer_batch_writes`, `writer_commit_seconds`, `writer_commit_retries_total`,
//!   `writer_failed_writes_total{reason}` (the group-commit writer, sessiond-actors)
//! - `forwards_total{outcome}` (answered, remote_error, not_holder, no_answer,
//!   bus_error) and `forward_seconds` (answered ones) on the forwarding node;
//!   `forwards_served_total{outcome}` (ok, error, not_holder, and busy: refused at
//!   once past `[node] max_served_forwards` in flight) on the holder
//! - `recovered_sessions_total` (sessions of dead nodes activated here by the
//!   recovery sweep), `heartbeat_failures_total`, `leases_lost_total` (a session
//!   stopped because another node took it, sessiond-actors)
//! - `notices_dropped_total` (project and stall notices the bus could not take,
//!   sessiond-actors)

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::api::AppState;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets, seconds: 1 ms to 30 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder's handle, installed on first use. Several nodes in one
/// process (tests) share it. If another recorder was installed first, this one is
/// not global and renders nothing, rather than failing the node.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(SECONDS_BUCKETS)
                .expect("static buckets are valid");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// Drains the recorder's expired histogram samples now and then, as the exporter
/// asks its users to.
pub async fn upkeep(stop: tokio_util::sync::CancellationToken) {
    let handle = handle();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    metrics::gauge!("sessiond_sessions_resident").set(state.node.resident_count() as f64);
    (
        [("content-type", "text/plain; version=0.0.4")],
        handle().render(),
    )
        .into_response()
}

/// Counts one forward by its outcome; an answered one is timed too.
pub(crate) fn forwarded(
    result: &std::result::Result<String, crate::node::ForwardError>,
    took: Duration,
) {
    use crate::node::ForwardError;
    let outcome = match result {
        Ok(_) => {
            metrics::histogram!("sessiond_forward_seconds").record(took.as_secs_f64());
            "answered"
        }
        Err(ForwardError::Remote(_)) => "remote_error",
        Err(ForwardError::NotHolder) => "not_holder",
        Err(ForwardError::NoAnswer) => "no_answer",
        Err(ForwardError::Bus(_)) => "bus_error",
    };
    metrics::counter!("sessiond_forwards_total", "outcome" => outcome).increment(1);
}

/// Counts and times every request by its route template (never the raw path, so ids
/// do not explode the label space).
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    // Extension methods would make the label space unbounded.
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    }
    .to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("sessiond_http_requests_total",
        "method" => method.clone(), "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("sessiond_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Counts an open event stream while it lives.
pub(crate) struct StreamGauge;

impl StreamGauge {
    pub(crate) fn open() -> Self {
        metrics::gauge!("sessiond_event_streams").increment(1.0);
        Self
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        metrics::gauge!("sessiond_event_streams").decrement(1.0);
    }
}
