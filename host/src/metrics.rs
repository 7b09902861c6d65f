//! Prometheus metrics, served at `GET /metrics` in the text exposition format
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
//!
//! Labels are bounded: requests are labelled by OpenAPI operation id (`get_generation`), never
//! by raw path, and unknown paths count as `other`; plugin calls by plugin id (bounded by what
//! the operator loads), WIT export name and error kind (a fixed set); no prompt, id or key is
//! ever a label.
//!
//! Besides Easel's own series: the standard `process_*` series on Linux (CPU seconds, resident
//! and virtual memory, open and maximum file descriptors, threads, start time) and
//! `easel_build_info{version,abi} 1`.

use std::sync::LazyLock;
use std::time::Duration;

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
    /// `easel_plugin_calls_total{plugin,export}`: calls of a plugin's exports, failed ones included.
    pub plugin_calls: IntCounterVec,
    /// `easel_plugin_call_duration_seconds{plugin,export}`: from sandbox creation to the answer.
    pub plugin_call_duration: HistogramVec,
    /// `easel_plugin_call_errors_total{plugin,export,error}`: failed calls by
    /// [`CallError::code`](crate::plugins::CallError::code).
    pub plugin_call_errors: IntCounterVec,
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
    let plugin_calls = IntCounterVec::new(
        Opts::new("easel_plugin_calls_total", "Calls of plugin exports, by plugin id and export (WIT name)."),
        &["plugin", "export"],
    )
    .expect("valid metric");
    let plugin_call_duration = HistogramVec::new(
        HistogramOpts::new("easel_plugin_call_duration_seconds", "Duration of plugin export calls in seconds.")
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
        &["plugin", "export"],
    )
    .expect("valid metric");
    let plugin_call_errors = IntCounterVec::new(
        Opts::new(
            "easel_plugin_call_errors_total",
            "Failed plugin export calls, by plugin id, export and error kind (invalid_input, unsupported, \
             denied, http, timeout, internal, content_blocked, unauthorized, retryable, time_limit, \
             memory_limit, trap, wrong_kind).",
        ),
        &["plugin", "export", "error"],
    )
    .expect("valid metric");
    let build_info = IntGaugeVec::new(
        Opts::new("easel_build_info", "Always 1; labelled with the Easel version and the plugin ABI it speaks."),
        &["version", "abi"],
    )
    .expect("valid metric");
    build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), crate::plugins::manifest::API_VERSION]).set(1);
    // The standard process series (process_cpu_seconds_total, process_resident_memory_bytes,
    // process_open_fds, process_max_fds, process_start_time_seconds, …), read from /proc.
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
        .expect("metrics are registered once");
    for m in [
        Box::new(build_info) as Box<dyn prometheus::core::Collector>,
        Box::new(plugin_calls.clone()),
        Box::new(plugin_call_duration.clone()),
        Box::new(plugin_call_errors.clone()),
        Box::new(http_requests.clone()),
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
        plugin_calls,
        plugin_call_duration,
        plugin_call_errors,
    }
});

impl Metrics {
    /// Everything in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("encoding to memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// Count and time one call of `plugin`'s `export`; `error` is the failure's
    /// [`CallError::code`](crate::plugins::CallError::code) when it failed.
    pub fn record_plugin_call(&self, plugin: &str, export: &str, elapsed: Duration, error: Option<&str>) {
        self.plugin_calls.with_label_values(&[plugin, export]).inc();
        self.plugin_call_duration.with_label_values(&[plugin, export]).observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.plugin_call_errors.with_label_values(&[plugin, export, error]).inc();
        }
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
