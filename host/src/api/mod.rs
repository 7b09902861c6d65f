//! HTTP: the one route table, the request middleware (request id, logging, problem+json for
//! every error), and the OpenAPI service. Handlers are thin: parse, call a service, map.

pub mod body;
pub mod catalog;
pub mod generations;
pub mod images;
pub mod models;
pub mod plugins;
pub mod problem;
pub mod system;
pub mod ws;

use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::OpenApiService;
use tracing::Instrument;

use crate::service::App;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled (empty outside a request).
pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// All OpenAPI operations, in the order they appear in the docs.
pub type Apis = (
    generations::GenerationsApi,
    images::ImagesApi,
    models::ModelsApi,
    catalog::CatalogApi,
    plugins::PluginsApi,
    system::SystemApi,
);

/// The OpenAPI service, with no host-dependent fields (so the committed spec is stable).
pub fn openapi_service(app: Option<App>) -> OpenApiService<Apis, ()> {
    let apis = (
        generations::GenerationsApi { app: app.clone() },
        images::ImagesApi { app: app.clone() },
        models::ModelsApi { app: app.clone() },
        catalog::CatalogApi { app: app.clone() },
        plugins::PluginsApi { app: app.clone() },
        system::SystemApi { app },
    );
    OpenApiService::new(apis, "Easel", env!("CARGO_PKG_VERSION"))
        .summary("Self-hosted AI image generation")
        .description(include_str!("openapi_intro.md"))
        .license(poem_openapi::LicenseObject::new("Apache-2.0"))
}

/// The spec as served at `/openapi.json`, printed by `easel openapi`, committed in `openapi/`.
pub fn spec_json() -> String {
    let mut spec = openapi_service(None).spec();
    if !spec.ends_with('\n') {
        spec.push('\n');
    }
    spec
}

/// The whole HTTP application: routes plus middleware.
pub fn routes(app: App) -> impl Endpoint<Output = Response> {
    let max_body = app.config.limits.max_body_bytes;
    let app_for_ws = app.clone();
    let service = openapi_service(Some(app));
    let docs = service.swagger_ui();
    let spec = spec_json();
    Route::new()
        .nest("/", service)
        .nest("/docs", docs)
        .at("/v1/ws", poem::get(ws::ws).data(app_for_ws.clone()))
        .at("/metrics", poem::get(system::metrics).data(app_for_ws))
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| Response::builder().content_type("application/json").body(spec.clone())),
        )
        .around(move |ep, req| limit_body(ep, req, max_body))
        .around(request_middleware)
}

/// Request id (echo a valid incoming `X-Request-Id`, else make one), a span carrying it for
/// every log line of the request, an access log line, and problem+json for every error.
async fn request_middleware<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let incoming = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).filter(|v| valid_request_id(v));
    let id = incoming.map(str::to_string).unwrap_or_else(|| crate::service::new_id("req"));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let started = Instant::now();
    let (mut response, operation) = REQUEST_ID
        .scope(
            id.clone(),
            async move {
                // poem-openapi tags each operation's answer (or error) with its operation id.
                match next.call(req).await {
                    Ok(r) => {
                        let r = r.into_response();
                        let op = r.data::<poem_openapi::OperationId>().map(|o| o.0);
                        (r, op)
                    }
                    Err(e) => {
                        let op = e.data::<poem_openapi::OperationId>().map(|o| o.0);
                        (problem::error_to_problem(e), op)
                    }
                }
            }
            .instrument(span.clone()),
        )
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let operation = operation.unwrap_or_else(|| crate::metrics::unlisted_operation(&path));
    let metrics = &crate::metrics::METRICS;
    metrics.http_requests.with_label_values(&[method.as_str(), operation, &status.to_string()]).inc();
    metrics.http_duration.with_label_values(&[method.as_str(), operation]).observe(elapsed);
    let elapsed_ms = elapsed * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request");
        }
    });
    Ok(response)
}

/// Refuse bodies over `max` bytes with 413: by `Content-Length` when given, else by reading
/// a chunked body up to the limit.
async fn limit_body<E: Endpoint>(next: E, mut req: Request, max: usize) -> poem::Result<Response> {
    let too_large = || {
        problem::ApiError::new(
            crate::error::ErrorCode::PayloadTooLarge,
            format!("the body exceeds the limit of {max} bytes"),
        )
    };
    let declared =
        req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > max as u64 => return Err(too_large().into()),
        Some(_) => {}
        None if req.headers().contains_key("transfer-encoding") => {
            let bytes = req.take_body().into_bytes_limit(max).await.map_err(|_| too_large())?;
            req.set_body(bytes);
        }
        None => {}
    }
    next.call(req).await.map(IntoResponse::into_response)
}

fn valid_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Tags grouping operations in the docs.
#[derive(poem_openapi::Tags)]
pub enum Tag {
    /// Text-to-image jobs: create, poll, list.
    Generations,
    /// Stored images and their files.
    Images,
    /// The model catalogue, filled by provider plugins.
    Models,
    /// Styles, archetypes and filters, filled by plugins.
    Catalog,
    /// Loaded plugins and reload.
    Plugins,
    /// Health and metadata.
    System,
}

/// The `App` of an API struct; absent only when the spec is generated offline.
fn app(app: &Option<App>) -> &App {
    app.as_ref().expect("API handlers run only in a server with an App")
}
