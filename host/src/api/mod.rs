//! HTTP: the one route table, the request middleware (request id, logging, problem+json for
//! every error), and the OpenAPI service. Handlers are thin: parse, call a service, map.

pub mod accounts;
pub mod body;
pub mod callbacks;
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
    accounts::AccountsApi,
    accounts::AdminApi,
    generations::GenerationsApi,
    callbacks::CallbacksApi,
    images::ImagesApi,
    models::ModelsApi,
    catalog::CatalogApi,
    plugins::PluginsApi,
    system::SystemApi,
);

/// The OpenAPI service, with no host-dependent fields (so the committed spec is stable).
pub fn openapi_service(app: Option<App>) -> OpenApiService<Apis, ()> {
    let apis = (
        accounts::AccountsApi { app: app.clone() },
        accounts::AdminApi { app: app.clone() },
        generations::GenerationsApi { app: app.clone() },
        callbacks::CallbacksApi { app: app.clone() },
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
    let app_for_auth = app.clone();
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
        .around(move |ep, req| authorize(ep, req, app_for_auth.clone()))
        .around(move |ep, req| body::limit_body(ep, req, max_body))
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

/// What a handler learned about the caller's limits, for this response's headers.
#[derive(Default)]
struct Noted {
    /// Images left of the daily quota (generation create).
    daily_remaining: Option<i64>,
    /// The generations window (generation create): refused, or its standing after the creation.
    window: Option<crate::auth::gcra::WindowStatus>,
}

tokio::task_local! {
    static NOTED: std::sync::Arc<std::sync::Mutex<Noted>>;
}

fn note(f: impl FnOnce(&mut Noted)) {
    let _ = NOTED.try_with(|cell| f(&mut cell.lock().unwrap_or_else(|e| e.into_inner())));
}

/// Tell the authorization middleware how many images the caller has left today, for the
/// `X-RateLimit-Daily-Remaining` header of this response.
pub fn note_daily_remaining(remaining: i64) {
    note(|n| n.daily_remaining = Some(remaining));
}

/// Tell the authorization middleware how a window other than the request windows stands
/// (the generations window of a creation): when it refused, its `X-RateLimit-*` headers are
/// this response's; else they are when it is tighter than the request windows.
pub fn note_rate_window(window: crate::auth::gcra::WindowStatus) {
    note(|n| n.window = Some(window));
}

/// Authenticate (bearer token, IP allowlist or anonymous), authorize the route template with
/// casbin, take the request from the tier's request windows (per minute and per hour), and
/// hand the [`Principal`] to the handler (`Data<&Principal>`). Unknown paths pass through to
/// the router's 404.
///
/// Denied callers without credentials get 401 (so they know to sign in), others 403. Every
/// counted response of a limited tier carries `X-RateLimit-Limit`, `X-RateLimit-Remaining`
/// and `X-RateLimit-Reset` (unix seconds when the whole limit is back) of one window: the
/// window that refused, else the tightest (fewest left). A 429 adds `Retry-After`.
///
/// [`Principal`]: crate::auth::Principal
async fn authorize<E: Endpoint>(next: E, mut req: Request, app: App) -> poem::Result<Response> {
    // Not a socket (cannot happen with the TCP listener): an unknown address, not loopback.
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip()).unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let forwarded: Vec<Vec<u8>> =
        req.headers().get_all("x-forwarded-for").iter().map(|v| v.as_bytes().to_vec()).collect();
    let ip = app.auth.client_ip(peer, forwarded.iter().map(Vec::as_slice));
    const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    if !METHODS.contains(&req.method().as_str()) {
        let e = problem::ApiError::new(crate::error::ErrorCode::MethodNotAllowed, "unsupported HTTP method");
        return Ok(e.into_response());
    }
    // A typed header that is not visible ASCII reads as absent: a retry with a non-ASCII
    // `Idempotency-Key` would silently create a second resource. Refuse it like an over-long one.
    if req.headers().get("idempotency-key").is_some_and(|v| v.to_str().is_err()) {
        let e = crate::error::AppError::field("Idempotency-Key", "must be 1 to 255 printable ASCII characters");
        return Ok(problem::ApiError::from(e).into_response());
    }
    let token = bearer_token(&req);
    if let Some(t) = &token {
        req.set_data(Credential(t.clone()));
    }
    let mut principal = match app.auth.authenticate(app.db.as_ref(), token.as_deref(), ip).await {
        Ok(p) => p,
        Err(e) => return Ok(problem::ApiError::from(e).into_response()),
    };
    // A tier given by address holds only for requests addressed to this server by an IP, by
    // `localhost` or by the `public_url` host: a web page whose name was re-pointed at
    // 127.0.0.1 (DNS rebinding) gets no more than anonymous access from a visitor's browser.
    if principal.user_id.is_none()
        && principal.tier != "anonymous"
        && !host_is_ours(&req, app.config.public_host().as_deref())
    {
        principal.owner = "anonymous".into();
        principal.tier = "anonymous".into();
    }
    let path = req.uri().path().to_string();
    let Some(template) = app.auth.routes.template(&path) else {
        req.set_data(principal);
        return next.call(req).await.map(IntoResponse::into_response);
    };
    let method = req.method().as_str().to_string();
    let admin_route = template.starts_with("/v1/admin/") || template == "/v1/plugins/reload";
    if admin_route && !app.auth.admin_network_allows(ip) {
        let e = problem::ApiError::new(
            crate::error::ErrorCode::Forbidden,
            "admin routes are not reachable from this network",
        );
        return Ok(e.into_response());
    }
    if !app.auth.policies.current().allows(&principal.tier, &template, &method) {
        let e = if principal.user_id.is_none() && principal.tier == "anonymous" {
            problem::ApiError::new(
                crate::error::ErrorCode::Unauthorized,
                format!(
                    "{method} {template} needs an account: send `Authorization: Bearer <API key or session token>`"
                ),
            )
        } else {
            problem::ApiError::new(
                crate::error::ErrorCode::Forbidden,
                format!("the {} tier may not {method} {template}", principal.tier),
            )
        };
        return Ok(e.into_response());
    }
    // Probes and docs are never counted: a load balancer's health checks must not use up (or
    // be refused by) the anonymous tier's requests. Nor are providers calling back (a few
    // provider addresses deliver everyone's webhooks; each is verified by its plugin).
    let uncounted = matches!(
        template.as_str(),
        "/health" | "/ready" | "/openapi.json" | "/docs" | "/v1/callbacks/{plugin}/{generation_id}"
    );
    let mut window = None;
    if !uncounted {
        match app.take_request(&principal).await {
            Ok(None) => {}
            Ok(Some(check)) if check.allowed => window = Some(check.window),
            Ok(Some(check)) => {
                let mut response = problem::ApiError::from(check.window.refusal(&principal.tier)).into_response();
                set_rate_headers(&mut response, Some(&check.window), None);
                return Ok(response);
            }
            Err(e) => return Ok(problem::ApiError::from(e).into_response()),
        }
    }
    req.set_data(principal);
    let noted = std::sync::Arc::new(std::sync::Mutex::new(Noted::default()));
    let result = NOTED.scope(noted.clone(), next.call(req)).await;
    let mut response = match result {
        Ok(r) => r.into_response(),
        Err(e) => problem::error_to_problem(e),
    };
    let noted = std::mem::take(&mut *noted.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(other) = noted.window {
        window = match window {
            Some(w) if other.retry_after_ms.is_none() && w.remaining <= other.remaining => Some(w),
            _ => Some(other),
        };
    }
    set_rate_headers(&mut response, window.as_ref(), noted.daily_remaining);
    Ok(response)
}

/// The `X-RateLimit-*` headers of `window` and of the daily image quota.
fn set_rate_headers(
    response: &mut Response,
    window: Option<&crate::auth::gcra::WindowStatus>,
    daily_remaining: Option<i64>,
) {
    let mut headers = Vec::new();
    if let Some(w) = window {
        headers.push(("x-ratelimit-limit", w.limit.to_string()));
        headers.push(("x-ratelimit-remaining", w.remaining.to_string()));
        headers.push(("x-ratelimit-reset", w.reset_seconds().to_string()));
    }
    if let Some(remaining) = daily_remaining {
        headers.push(("x-ratelimit-daily-remaining", remaining.max(0).to_string()));
    }
    set_headers(response, &headers);
}

/// The bearer credential a request came with, for connections that outlive the request (the
/// WebSocket re-checks it on every subscription).
#[derive(Clone)]
pub struct Credential(pub String);

/// `Authorization: Bearer <token>`, or `?access_token=` on the streaming routes browsers open
/// without custom headers (`/v1/ws`, `/v1/generations/{id}/events`).
fn bearer_token(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get("authorization").and_then(|v| v.to_str().ok()) {
        // Another scheme (Basic, …) is a credential we cannot accept: 401, not anonymous.
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        return Some(if scheme.eq_ignore_ascii_case("bearer") { token.trim().to_string() } else { String::new() });
    }
    let path = req.uri().path();
    if path == "/v1/ws" || path.ends_with("/events") {
        return req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("access_token=").map(str::to_string)));
    }
    None
}

/// Does the request name this server: an IP literal, `localhost`, or `public_url`'s host
/// (`public_host`, when `public_url` is set)?
fn host_is_ours(req: &Request, public_host: Option<&str>) -> bool {
    let Some(host) = req.headers().get("host").and_then(|v| v.to_str().ok()) else { return true };
    let name = match host.strip_prefix('[') {
        Some(v6) => return v6.split(']').next().is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || public_host.is_some_and(|public| !public.is_empty() && name.eq_ignore_ascii_case(public))
}

fn set_headers(response: &mut Response, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, v);
        }
    }
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
    /// Registration, sign-in, profile, API keys, usage and credits.
    Accounts,
    /// Operators: users, tiers, credits and invites.
    Admin,
}

/// A link to `path` (which starts with `/`) as clients get it: absolute under `public_url`
/// when the operator set one, else relative to the server.
pub(crate) fn link(app: &App, path: &str) -> String {
    format!("{}{path}", app.config.link_base())
}

/// The `App` of an API struct; absent only when the spec is generated offline.
fn app(app: &Option<App>) -> &App {
    app.as_ref().expect("API handlers run only in a server with an App")
}
