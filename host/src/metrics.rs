//! Prometheus metrics, served at `GET /metrics` in the text exposition format
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
//!
//! Labels are bounded: routes are templates (`/v1/generations/{id}`), never raw paths, and
//! unknown paths count as `other`; no prompt, id or key is ever a label.

use std::sync::LazyLock;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// `easel_http_requests_total{method,route,status}`.
    pub http_requests: IntCounterVec,
    /// `easel_http_request_duration_seconds{method,route}`.
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
        Opts::new("easel_http_requests_total", "HTTP requests by method, route template and status."),
        &["method", "route", "status"],
    )
    .expect("valid metric");
    let http_duration = HistogramVec::new(
        HistogramOpts::new("easel_http_request_duration_seconds", "HTTP request latency in seconds."),
        &["method", "route"],
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

/// The route template of a request path, from a fixed vocabulary: `/v1/generations/{id}/events`,
/// `/health`, … and `other` for anything else, so that clients cannot mint label values.
pub fn route_template(path: &str) -> String {
    const TOP: &[&str] = &["health", "ready", "metrics", "openapi.json", "docs"];
    const RESOURCES: &[&str] = &["generations", "images", "models", "styles", "archetypes", "filters", "plugins", "ws"];
    const ACTIONS: &[&str] = &["events", "cancel", "file", "edits", "reload"];
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [top] if TOP.contains(top) => format!("/{top}"),
        ["docs", ..] => "/docs".into(),
        ["v1", resource, rest @ ..] if RESOURCES.contains(resource) && rest.len() <= 2 => {
            let mut route = format!("/v1/{resource}");
            for (i, s) in rest.iter().enumerate() {
                if i == 1 && ACTIONS.contains(s) {
                    route.push('/');
                    route.push_str(s);
                } else if i == 0 && *resource == "plugins" && *s == "reload" {
                    route.push_str("/reload");
                } else if i == 0 {
                    route.push_str("/{id}");
                } else {
                    return "other".into();
                }
            }
            route
        }
        _ => "other".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_from_a_fixed_vocabulary() {
        assert_eq!(route_template("/v1/generations"), "/v1/generations");
        assert_eq!(route_template("/v1/generations/gen_01abc"), "/v1/generations/{id}");
        assert_eq!(route_template("/v1/generations/gen_01abc/events"), "/v1/generations/{id}/events");
        assert_eq!(route_template("/v1/images/img_1/file"), "/v1/images/{id}/file");
        assert_eq!(route_template("/v1/models/local%2Fprocedural"), "/v1/models/{id}");
        assert_eq!(route_template("/v1/plugins/reload"), "/v1/plugins/reload");
        assert_eq!(route_template("/health"), "/health");
        assert_eq!(route_template("/docs/index.js"), "/docs");
        assert_eq!(route_template("/v1/anything-a-client-makes-up"), "other");
        assert_eq!(route_template("/v1/images/img_1/whatever"), "other");
        assert_eq!(route_template("/wp-admin"), "other");
    }
}
