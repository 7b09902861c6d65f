//! `/health` and `/ready`.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{Tag, app};
use crate::service::App;

/// Health and readiness.
pub struct SystemApi {
    pub(crate) app: Option<App>,
}

/// Liveness answer.
#[derive(Object)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
    /// Server version.
    pub version: String,
    /// Server time, RFC 3339 UTC.
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

/// Readiness of each dependency.
#[derive(Object)]
pub struct Readiness {
    /// True when every check passed.
    pub ready: bool,
    /// The database answers.
    pub database: bool,
    /// The blob store answers.
    pub blobs: bool,
    /// At least one provider plugin is loaded.
    pub plugins: bool,
    /// Each provider plugin's keys and reachability. Informational: a remote provider that
    /// is down does not make the server unready (fallbacks and other models still serve).
    pub providers: Vec<super::models::ProviderState>,
}

/// `/ready` answers.
#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// Ready to serve.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready; the body says which dependency is down.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

#[OpenApi(tag = "Tag::System")]
impl SystemApi {
    /// Liveness: the process is up.
    ///
    /// Always 200 with `{"status":"ok","version","timestamp"}` while the server runs.
    #[oai(path = "/health", method = "get", operation_id = "get_health")]
    async fn health(&self) -> Json<Health> {
        Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into(), timestamp: chrono::Utc::now() })
    }

    /// Readiness: the database, the blob store and the plugins all work.
    ///
    /// 200 when ready, 503 with the failing checks otherwise (for load balancers and orchestrators).
    #[oai(path = "/ready", method = "get", operation_id = "get_ready")]
    async fn ready(&self) -> ReadyResponse {
        let app = app(&self.app);
        let database = app.db.ping().await.is_ok();
        let blobs = app.blobs.ping().await.is_ok();
        let catalog = app.plugins.catalog();
        let plugins = !catalog.plugins.is_empty();
        let providers = catalog
            .of_kind(crate::plugins::manifest::PluginKind::Provider)
            .map(|p| super::models::provider_state(app, p))
            .collect();
        let r = Readiness { ready: database && blobs && plugins, database, blobs, plugins, providers };
        if r.ready { ReadyResponse::Ready(Json(r)) } else { ReadyResponse::NotReady(Json(r)) }
    }
}

/// `GET /metrics`: Prometheus text format (not in the OpenAPI document: it is for scrapers).
/// The job gauges are read from the shared queue at scrape time, so every replica reports the
/// same queue.
#[poem::handler]
pub async fn metrics(app: poem::web::Data<&App>) -> poem::Response {
    let metrics = &crate::metrics::METRICS;
    match app.db.job_counts().await {
        Ok(counts) => {
            for status in ["queued", "running", "retrying"] {
                let n = counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
                metrics.jobs.with_label_values(&[status]).set(n);
            }
        }
        Err(e) => tracing::warn!(error = ?e, "reading the queue for /metrics failed"),
    }
    poem::Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(metrics.render())
}
