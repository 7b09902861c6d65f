//! Prometheus metrics, served at `GET /metrics` in the text exposition format
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
//!
//! Labels are bounded: requests are labelled by OpenAPI operation id (`get_generation`), never
//! by raw path, and unknown paths count as `other`; no prompt, id or key is ever a label.

use std::sync::LazyLock;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// `easel_http_requests_total{method,operation,status}`.
    pub http_requests: IntCounterVec,
    /// `easel_http_request_duration_seconds{method,operation}`.
    pub http_duration: HistogramVec,
    /// `easel_generations_created_total{model}`.
    pub generations_created: IntCounterVec,
    /// `easel_generations_finished_total{model,status}` (succeeded, failed, canceled).
    pub generations_finished: IntCounterVec,
    /// `easel_generation_duration_seconds{status}`: from claim to the final state.
    pub generation_duration: HistogramVec,
    /// `easel_jobs{status}`: queued and running jobs in the shared queue, read at scrape time.
    pub jobs: IntGaugeVec,
}

/// The metrics of this process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let http_requests = IntCounterVec::new(
        Opts::new("easel_http_requests_total", "HTTP requests by method, operation id and status."),
        &["method", "operation", "status"],
    )
    .expect("valid metric");
    let http_duration = HistogramVec::new(
        HistogramOpts::new("easel_http_request_duration_seconds", "HTTP request latency in seconds."),
        &["method", "operation"],
    )
    .expect("valid metric");
    let generations_created =
        IntCounterVec::new(Opts::new("easel_generations_created_total", "Generations accepted, by model."), &["model"])
            .expect("valid metric");
    let generations_finished = IntCounterVec::new(
        Opts::new("easel_generations_finished_total", "Generations that reached a final state, by model and status."),
        &["model", "status"],
    )
    .expect("valid metric");
    let generation_duration = HistogramVec::new(
        HistogramOpts::new("easel_generation_duration_seconds", "Time from a worker's claim to the final state.")
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]),
        &["status"],
    )
    .expect("valid metric");
    let jobs =
        IntGaugeVec::new(Opts::new("easel_jobs", "Unfinished jobs in the shared queue, by status."), &["status"])
            .expect("valid metric");
    for m in [
        Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(http_duration.clone()),
        Box::new(generations_created.clone()),
        Box::new(generations_finished.clone()),
        Box::new(generation_duration.clone()),
        Box::new(jobs.clone()),
    ] {
        registry.register(m).expect("metrics are registered once");
    }
    Metrics {
        registry,
        http_requests,
        http_duration,
        generations_created,
        generations_finished,
        generation_duration,
        jobs,
    }
});

impl Metrics {
    /// Everything in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("encoding to memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// The `operation` label of a request that no OpenAPI operation answered: the few routes
/// outside the spec by name, anything else (unknown paths included) as `other`, so clients
/// cannot mint label values. OpenAPI operations are labelled with their operation id.
pub fn unlisted_operation(path: &str) -> &'static str {
    match path {
        "/metrics" => "metrics",
        "/v1/ws" => "websocket",
        "/openapi.json" => "openapi_json",
        p if p == "/docs" || p.starts_with("/docs/") => "docs",
        _ => "other",
    }
}
