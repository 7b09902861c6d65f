//! A fal.ai queue API fixture on 127.0.0.1, replaying fal's documented wire format
//! (`/work/shared/PROVIDERS.md`, "fal.ai queue"):
//!
//! - `POST /{owner}/{app}[/{path…}]` submits (any depth, e.g. `/fal-ai/flux/dev`) and answers
//!   `{"request_id","status":"IN_QUEUE","queue_position","response_url","status_url","cancel_url","logs":null,"metrics":{}}`,
//!   the URLs under the app root without the sub-path (`/fal-ai/flux/requests/{id}`);
//! - `GET /{owner}/{app}/requests/{id}/status[?logs=1]` answers `IN_QUEUE` (position counting
//!   down, HTTP 202), `IN_PROGRESS` with `logs` (202), then `COMPLETED` with `metrics` (200);
//! - `GET /{owner}/{app}/requests/{id}` answers the result:
//!   `{"images":[{"url","width","height","content_type"}],"timings","seed","has_nsfw_concepts","prompt"}`;
//! - `PUT /{owner}/{app}/requests/{id}/cancel` answers 202 `{"status":"CANCELLATION_REQUESTED"}`
//!   (400 `{"status":"ALREADY_COMPLETED"}` once completed);
//! - `GET /files/{name}` (and `/images/{name}`) serves the result images: real PNGs, at the
//!   requested size when both sides are at most 256 pixels, else scaled to 64 pixels on the long side;
//! - `GET /.well-known/jwks.json` serves the fixture's webhook-signing public key as fal's JWKS
//!   (`{"keys":[{"kty":"OKP","crv":"Ed25519","x":…}]}`; Ed25519 key from [`WEBHOOK_SEED`]).
//!
//! Webhooks: a submission with `?fal_webhook=URL` (percent-encoded) gets a webhook
//! [`FalFixture::set_webhook_delay`] after it was accepted (default [`DEFAULT_WEBHOOK_DELAY`]):
//! the job completes at that moment (its next status poll answers `COMPLETED`, whatever the
//! script said, unless it completed earlier), then the fixture POSTs fal's webhook body
//! `{"request_id","gateway_request_id","status":"OK","payload":{…result…},"error":null}` (`"ERROR"`,
//! the error and the error body for [`Reply::ResultError`]) to URL with fal's signed headers
//! (`x-fal-webhook-request-id`, `-user-id`, `-timestamp`, `-signature`: hex ED25519 over
//! `request_id\nuser_id\ntimestamp\nhex(sha256(body))`), and records the HTTP status it got
//! ([`FalFixture::webhook_deliveries`]). Jobs that never complete ([`Reply::Forever`]) or were
//! canceled get no webhook. [`Reply::SlowWithWebhook`] stays `IN_PROGRESS` for [`SLOW_FOR`]
//! unless its webhook completes it; [`FalFixture::forge_webhook`] sends a webhook signed with
//! another key.
//!
//! Every queue request must carry `Authorization: Key <key>` (the fixture's [`FalFixture::key`]);
//! otherwise the answer is fal's 401 `{"detail":"No user found for Key ID and Secret"}`. File
//! downloads and the JWKS need no key (public at fal too). Every request is recorded, including
//! refused ones.

#![allow(dead_code)]

// Each fixture is its own module tree (a test may include any subset), so each takes its own
// copy of the shared harness.
#[path = "server.rs"]
#[allow(clippy::duplicate_mod)]
mod server;

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use poem::http::StatusCode;
use poem::{Request, Response};
use serde_json::{Value, json};

/// The key [`FalFixture::start`] expects.
pub const DEFAULT_KEY: &str = "fal-test-key:0123456789abcdef";

/// Seed of the Ed25519 key the fixture signs webhooks with (its public half is served at
/// `/.well-known/jwks.json`).
pub const WEBHOOK_SEED: [u8; 32] = [0x5a; 32];

/// Seed of the key [`FalFixture::forge_webhook`] signs with (not in the JWKS).
pub const FORGER_SEED: [u8; 32] = [0x66; 32];

/// The `x-fal-webhook-user-id` the fixture sends.
pub const WEBHOOK_USER_ID: &str = "fixture-user-0001";

/// How long after a submission its webhook is sent, unless changed with
/// [`FalFixture::set_webhook_delay`].
pub const DEFAULT_WEBHOOK_DELAY: Duration = Duration::from_millis(200);

/// How long a [`Reply::SlowWithWebhook`] job stays `IN_PROGRESS` when no webhook completes it.
pub const SLOW_FOR: Duration = Duration::from_secs(60);

/// Size of the [`Reply::Oversized`] result body (above the plugin's 32 MiB `max_response_bytes`).
pub const OVERSIZED_BYTES: usize = 40 << 20;

/// How the fixture answers one submission.
#[derive(Clone, Debug)]
pub enum Reply {
    /// One `IN_QUEUE` poll (position 0), one `IN_PROGRESS` poll with logs, then `COMPLETED` and
    /// a result of `num_images` PNGs served from `/files/`.
    Success,
    /// `queued` `IN_QUEUE` polls (positions `queued-1` down to 0), then `running` `IN_PROGRESS`
    /// polls with logs (`"step k/running"`), then `COMPLETED` and the PNG result.
    Progress {
        /// Status polls answered `IN_QUEUE`.
        queued: u32,
        /// Status polls answered `IN_PROGRESS`.
        running: u32,
    },
    /// Like `Success`, but every `images[].url` of the result is this URL (an SSRF target).
    UrlResult(String),
    /// The submission is refused with `status` and fal's body for it (422: `{"detail":[{"loc":["body","prompt"],…}]}`,
    /// others `{"detail":"…"}`), with `Retry-After: <secs>` when given.
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u32>,
    },
    /// Same as [`Reply::Nsfw`].
    SafetyBlock,
    /// The result flags every image: `has_nsfw_concepts: [true…]`, black images.
    Nsfw,
    /// The job completes with `{"status":"COMPLETED","error":detail,"error_type":…}` and the
    /// result answers `status` with `{"detail":…}` (422: the `loc`/`msg`/`type` list, with
    /// `type` `content_policy_violation` when `detail` mentions "content").
    ResultError {
        /// HTTP status of the result.
        status: u16,
        /// fal's message.
        detail: String,
    },
    /// The result is a 200 with broken JSON.
    Malformed,
    /// The result is a valid JSON body of [`OVERSIZED_BYTES`].
    Oversized,
    /// The submission is answered (as `Success`) only after this delay.
    Hang(Duration),
    /// The job stays `IN_PROGRESS` forever (until canceled: then it completes with an error).
    Forever,
    /// The job stays `IN_PROGRESS` (logs `"still running"`) for [`SLOW_FOR`] after submission,
    /// then completes with the PNG result; when the submission carried `fal_webhook`, it
    /// completes as soon as the webhook is sent instead.
    SlowWithWebhook,
}

/// One request the fixture received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `POST`, `PUT`…
    pub method: String,
    /// Path and query, e.g. `/fal-ai/flux/requests/1/status?logs=1`.
    pub path: String,
    /// Headers with lowercase names.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first header with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

struct Job {
    app_root: String,
    reply: Reply,
    input: Value,
    queued_left: u32,
    running_left: u32,
    running_total: u32,
    completed: bool,
    canceled: bool,
    submitted_at: Instant,
    /// `fal_webhook` of the submission, decoded.
    webhook: Option<String>,
    /// Set when the webhook is sent: the next status poll answers `COMPLETED`.
    released: bool,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    requests: Vec<Recorded>,
    jobs: HashMap<String, Job>,
    files: HashMap<String, Vec<u8>>,
    next_id: u64,
    cancels: Vec<String>,
    webhook_delay: Option<Duration>,
    deliveries: Vec<u16>,
}

struct Shared {
    key: String,
    base_url: String,
    inner: Mutex<Inner>,
}

/// A running fal fixture; dropped = stopped.
pub struct FalFixture {
    /// `http://127.0.0.1:<port>`: the plugin's `base_url`.
    pub base_url: String,
    /// The key the fixture accepts (`Authorization: Key <key>`).
    pub key: String,
    shared: Arc<Shared>,
    _server: server::FixtureServer,
}

impl FalFixture {
    /// Start on a free port with [`DEFAULT_KEY`].
    pub fn start() -> Self {
        Self::start_with_key(DEFAULT_KEY)
    }

    /// Start on a free port, accepting only `key`.
    pub fn start_with_key(key: &str) -> Self {
        let (listener, base_url) = server::bind();
        let shared = Arc::new(Shared { key: key.to_string(), base_url: base_url.clone(), inner: Mutex::default() });
        let state = Arc::clone(&shared);
        let server =
            server::FixtureServer::serve("fal-fixture", listener, move |req: Request| handle(Arc::clone(&state), req));
        Self { base_url, key: key.to_string(), shared, _server: server }
    }

    /// Queue behaviours for the next submissions, in order (after those already queued); when
    /// the queue is empty a submission gets [`Reply::Success`].
    pub fn script(&self, replies: Vec<Reply>) {
        self.shared.inner.lock().unwrap().script.extend(replies);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.inner.lock().unwrap().requests.clone()
    }

    /// How many requests had a path (with query) starting with `path_prefix`.
    pub fn hits(&self, path_prefix: &str) -> usize {
        self.shared.inner.lock().unwrap().requests.iter().filter(|r| r.path.starts_with(path_prefix)).count()
    }

    /// The submissions received (POSTs outside `/files/`), in order.
    pub fn submissions(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method == "POST").collect()
    }

    /// Whether a `PUT …/cancel` was received.
    pub fn canceled(&self) -> bool {
        !self.shared.inner.lock().unwrap().cancels.is_empty()
    }

    /// The request ids whose cancel URL was called, in order.
    pub fn canceled_ids(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().cancels.clone()
    }

    /// `{base_url}/.well-known/jwks.json`: the plugin's `jwks_url`.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.base_url)
    }

    /// Send webhooks this long after their submission (default [`DEFAULT_WEBHOOK_DELAY`]).
    pub fn set_webhook_delay(&self, delay: Duration) {
        self.shared.inner.lock().unwrap().webhook_delay = Some(delay);
    }

    /// The decoded `fal_webhook` of each submission that had one, in order.
    pub fn webhook_urls(&self) -> Vec<String> {
        self.submissions().iter().filter_map(|r| query_param(&r.path, "fal_webhook")).collect()
    }

    /// The HTTP status each webhook the fixture sent got, in order of delivery (0 when the
    /// connection failed).
    pub fn webhook_deliveries(&self) -> Vec<u16> {
        self.shared.inner.lock().unwrap().deliveries.clone()
    }

    /// POST a forged webhook to `url` (a generation's callback URL) and return the HTTP status
    /// it got (0 when the connection failed): a well-formed, fresh fal webhook about the job
    /// submitted with this `fal_webhook` (or a made-up request id), signed with [`FORGER_SEED`],
    /// a key that is not in the JWKS. The job itself is left alone. Not recorded in
    /// [`FalFixture::webhook_deliveries`].
    pub fn forge_webhook(&self, url: &str) -> u16 {
        let request_id = {
            let inner = self.shared.inner.lock().unwrap();
            let mut ids: Vec<&String> =
                inner.jobs.iter().filter(|(_, j)| j.webhook.as_deref() == Some(url)).map(|(id, _)| id).collect();
            ids.sort();
            ids.last().map_or_else(|| "00000000-f0f0-4e57-9a00-000000000000".to_string(), |id| id.to_string())
        };
        let body = json!({
            "request_id": request_id,
            "gateway_request_id": request_id,
            "status": "OK",
            "payload": {"images": [], "seed": 1},
            "error": null,
        })
        .to_string();
        let headers = signed_headers(&SigningKey::from_bytes(&FORGER_SEED), &request_id, body.as_bytes());
        let url = url.to_string();
        // A runtime of its own, so this works from plain and async tests alike.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("forge runtime");
            runtime.block_on(post(&url, &headers, body.as_bytes()))
        })
        .join()
        .expect("forge thread")
    }
}

fn json_response(status: u16, body: &Value, retry_after: Option<u32>) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json");
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    builder.body(body.to_string())
}

fn raw_response(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type(content_type)
        .body(body)
}

/// fal's error body for a status.
fn error_body(status: u16) -> Value {
    match status {
        401 => json!({"detail": "No user found for Key ID and Secret"}),
        403 => {
            json!({"detail": "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."})
        }
        404 => json!({"detail": "Application not found"}),
        422 => json!({"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]}),
        429 => json!({"detail": "Rate limit exceeded: too many concurrent requests"}),
        500 => json!({"detail": "Internal Server Error"}),
        502..=504 => json!({"detail": "Service temporarily unavailable"}),
        s => json!({"detail": format!("Request failed with status {s}")}),
    }
}

async fn handle(shared: Arc<Shared>, mut req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let full_path = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = req.take_body().into_vec().await.unwrap_or_default();
    let authorized = headers.iter().any(|(k, v)| k == "authorization" && *v == format!("Key {}", shared.key));
    shared.inner.lock().unwrap().requests.push(Recorded {
        method: method.clone(),
        path: full_path,
        headers,
        body: body.clone(),
    });

    let segments: Vec<&str> = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    if method == "GET" && path == "/.well-known/jwks.json" {
        return json_response(200, &jwks(), None);
    }
    if method == "GET" && segments.len() == 2 && (segments[0] == "files" || segments[0] == "images") {
        return match shared.inner.lock().unwrap().files.get(segments[1]) {
            Some(png) => raw_response(200, "image/png", png.clone()),
            None => json_response(404, &json!({"detail": "File not found"}), None),
        };
    }
    if !authorized {
        return json_response(401, &error_body(401), None);
    }
    // Queue URLs: /{owner}/{app}/requests/{id}[/status|/cancel]
    if segments.len() >= 4 && segments[2] == "requests" {
        let id = segments[3].to_string();
        return match (method.as_str(), segments.get(4).copied(), segments.len()) {
            ("GET", Some("status"), 5) => status(&shared, &id),
            ("GET", None, 4) => result(&shared, &id),
            ("PUT", Some("cancel"), 5) => cancel(&shared, &id),
            _ => json_response(405, &json!({"detail": "Method Not Allowed"}), None),
        };
    }
    if method == "POST" && segments.len() >= 2 {
        let webhook = req.uri().query().and_then(|q| query_param(&format!("?{q}"), "fal_webhook"));
        return submit(&shared, &segments, &body, webhook).await;
    }
    json_response(404, &error_body(404), None)
}

async fn submit(shared: &Arc<Shared>, segments: &[&str], body: &[u8], webhook: Option<String>) -> Response {
    let reply = shared.inner.lock().unwrap().script.pop_front().unwrap_or(Reply::Success);
    let reply = match reply {
        Reply::Hang(delay) => {
            tokio::time::sleep(delay).await;
            Reply::Success
        }
        Reply::Status { status, retry_after } => return json_response(status, &error_body(status), retry_after),
        other => other,
    };
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let app_root = format!("{}/{}", segments[0], segments[1]);
    let (queued, running) = match &reply {
        Reply::Progress { queued, running } => (*queued, *running),
        Reply::Forever => (0, u32::MAX),
        Reply::SlowWithWebhook => (0, 0),
        _ => (1, 1),
    };
    let mut inner = shared.inner.lock().unwrap();
    inner.next_id += 1;
    let id = format!("{:08x}-fa1f-4e57-9a00-{:012x}", inner.next_id, inner.next_id);
    inner.jobs.insert(
        id.clone(),
        Job {
            app_root: app_root.clone(),
            reply,
            input,
            queued_left: queued,
            running_left: running,
            running_total: running,
            completed: false,
            canceled: false,
            submitted_at: Instant::now(),
            webhook: webhook.clone(),
            released: false,
        },
    );
    if let Some(url) = webhook {
        let delay = inner.webhook_delay.unwrap_or(DEFAULT_WEBHOOK_DELAY);
        tokio::spawn(deliver_webhook(Arc::clone(shared), id.clone(), url, delay));
    }
    let request_url = format!("{}/{app_root}/requests/{id}", shared.base_url);
    json_response(
        200,
        &json!({
            "status": "IN_QUEUE",
            "request_id": id,
            "response_url": request_url,
            "status_url": format!("{request_url}/status"),
            "cancel_url": format!("{request_url}/cancel"),
            "logs": null,
            "metrics": {},
            "queue_position": queued.saturating_sub(1),
        }),
        None,
    )
}

fn log(message: &str) -> Value {
    json!({"message": message, "level": "INFO", "source": "user", "timestamp": "2026-01-01T00:00:00.000000"})
}

fn status(shared: &Shared, id: &str) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let Some(job) = inner.jobs.get_mut(id) else {
        return json_response(404, &json!({"detail": "Request not found"}), None);
    };
    if job.canceled {
        job.completed = true;
        return json_response(
            200,
            &json!({"status": "COMPLETED", "logs": [], "metrics": {}, "error": "Request was cancelled by the user", "error_type": "request_cancelled"}),
            None,
        );
    }
    // A job whose webhook was sent is done, whatever the script said.
    if !job.released {
        if job.queued_left > 0 {
            job.queued_left -= 1;
            return json_response(
                202,
                &json!({"status": "IN_QUEUE", "queue_position": job.queued_left, "logs": null}),
                None,
            );
        }
        let slow = matches!(job.reply, Reply::SlowWithWebhook) && job.submitted_at.elapsed() < SLOW_FOR;
        if slow || matches!(job.reply, Reply::Forever) {
            return json_response(
                202,
                &json!({"status": "IN_PROGRESS", "logs": [log("Loading model"), log("still running")]}),
                None,
            );
        }
        if job.running_left > 0 {
            let step = job.running_total - job.running_left + 1;
            job.running_left -= 1;
            let logs = json!([log("Loading model"), log(&format!("step {step}/{}", job.running_total))]);
            return json_response(202, &json!({"status": "IN_PROGRESS", "logs": logs}), None);
        }
    }
    job.completed = true;
    let mut answer = json!({"status": "COMPLETED", "logs": [log("Loading model"), log("done")], "metrics": {"inference_time": 0.42}});
    if let Reply::ResultError { detail, .. } = &job.reply {
        answer["error"] = detail.clone().into();
        answer["error_type"] =
            (if detail.to_ascii_lowercase().contains("content") { "content_policy_violation" } else { "runner_error" })
                .into();
    }
    json_response(200, &answer, None)
}

/// The pixel size a request asked for: `image_size` (preset or object) or `aspect_ratio`.
fn requested_size(input: &Value) -> (u32, u32) {
    let presets = [
        ("square_hd", 1024, 1024),
        ("square", 512, 512),
        ("portrait_4_3", 768, 1024),
        ("portrait_16_9", 576, 1024),
        ("landscape_4_3", 1024, 768),
        ("landscape_16_9", 1024, 576),
    ];
    match input.get("image_size") {
        Some(Value::String(name)) => {
            if let Some(&(_, w, h)) = presets.iter().find(|p| p.0 == name) {
                return (w, h);
            }
        }
        Some(Value::Object(o)) => {
            let w = o.get("width").and_then(Value::as_u64).unwrap_or(1024) as u32;
            let h = o.get("height").and_then(Value::as_u64).unwrap_or(768) as u32;
            return (w.max(1), h.max(1));
        }
        _ => {}
    }
    if let Some((w, h)) = input.get("aspect_ratio").and_then(Value::as_str).and_then(|r| r.split_once(':'))
        && let (Ok(w), Ok(h)) = (w.parse::<u32>(), h.parse::<u32>())
        && w > 0
        && h > 0
    {
        return (w * 64, h * 64);
    }
    (1024, 768)
}

/// The size of the served PNG: as asked when small, else 64 pixels on the long side.
fn served_size(w: u32, h: u32) -> (u32, u32) {
    if w <= 256 && h <= 256 {
        return (w, h);
    }
    if w >= h { (64, (64 * h / w).max(1)) } else { ((64 * w / h).max(1), 64) }
}

/// A real PNG, `w`×`h`, one colour.
pub fn png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encode png");
    out.into_inner()
}

fn result(shared: &Shared, id: &str) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let Some(job) = inner.jobs.get(id) else {
        return json_response(404, &json!({"detail": "Request not found"}), None);
    };
    if !job.completed {
        return json_response(400, &json!({"detail": "Request is still in progress"}), None);
    }
    match result_body(shared, &mut inner, id) {
        ResultBody::Json(status, body) => json_response(status, &body, None),
        ResultBody::Raw(bytes) => raw_response(200, "application/json", bytes),
    }
}

/// What `GET response_url` answers for a completed job.
enum ResultBody {
    /// HTTP status and JSON body.
    Json(u16, Value),
    /// A 200 whose body is not JSON.
    Raw(Vec<u8>),
}

/// The result of job `id` (which exists), its PNGs stored under `/files/`.
fn result_body(shared: &Shared, inner: &mut Inner, id: &str) -> ResultBody {
    let job = &inner.jobs[id];
    let reply = job.reply.clone();
    let input = job.input.clone();
    match &reply {
        Reply::Malformed => return ResultBody::Raw(br#"{"images":[{"url":"#.to_vec()),
        Reply::ResultError { status, detail } => {
            let kind = if detail.to_ascii_lowercase().contains("content") {
                "content_policy_violation"
            } else {
                "value_error"
            };
            let body = if *status == 422 {
                json!({"detail": [{"loc": ["body", "prompt"], "msg": detail, "type": kind}]})
            } else {
                json!({"detail": detail})
            };
            return ResultBody::Json(*status, body);
        }
        _ => {}
    }
    let n = input.get("num_images").and_then(Value::as_u64).unwrap_or(1).clamp(1, 16) as usize;
    let seed = input.get("seed").and_then(Value::as_u64).unwrap_or(424_242);
    let nsfw = matches!(reply, Reply::Nsfw | Reply::SafetyBlock);
    let (w, h) = requested_size(&input);
    let (sw, sh) = served_size(w, h);
    let mut images = Vec::with_capacity(n);
    for i in 0..n {
        let url = match &reply {
            Reply::UrlResult(url) => url.clone(),
            _ => {
                let name = format!("{id}-{i}.png");
                let colour = if nsfw { [0, 0, 0] } else { [40 + 50 * (i as u8 % 4), 120, 200 - 30 * (i as u8 % 4)] };
                inner.files.insert(name.clone(), png(sw, sh, colour));
                format!("{}/files/{name}", shared.base_url)
            }
        };
        images.push(json!({"url": url, "width": sw, "height": sh, "content_type": "image/png"}));
    }
    let mut answer = json!({
        "images": images,
        "timings": {"inference": 0.42},
        "seed": seed,
        "has_nsfw_concepts": vec![nsfw; n],
        "prompt": input.get("prompt").cloned().unwrap_or(Value::Null),
    });
    if matches!(reply, Reply::Oversized) {
        answer["padding"] = "x".repeat(OVERSIZED_BYTES).into();
    }
    ResultBody::Json(200, answer)
}

fn cancel(shared: &Shared, id: &str) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    inner.cancels.push(id.to_string());
    let Some(job) = inner.jobs.get_mut(id) else {
        return json_response(404, &json!({"detail": "Request not found"}), None);
    };
    if job.completed {
        return json_response(400, &json!({"status": "ALREADY_COMPLETED"}), None);
    }
    job.canceled = true;
    json_response(202, &json!({"status": "CANCELLATION_REQUESTED"}), None)
}

/// fal's JWKS with the fixture's webhook key.
fn jwks() -> Value {
    let public = SigningKey::from_bytes(&WEBHOOK_SEED).verifying_key().to_bytes();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "fal-fixture", "use": "sig", "alg": "EdDSA"}]})
}

/// fal's webhook headers for `body`, signed by `key` now.
fn signed_headers(key: &SigningKey, request_id: &str, body: &[u8]) -> Vec<(String, String)> {
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()).to_string();
    let message = format!("{request_id}\n{WEBHOOK_USER_ID}\n{timestamp}\n{}", hex::encode(Sha256::digest(body)));
    let signature = hex::encode(key.sign(message.as_bytes()).to_bytes());
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-fal-webhook-request-id".into(), request_id.into()),
        ("x-fal-webhook-user-id".into(), WEBHOOK_USER_ID.into()),
        ("x-fal-webhook-timestamp".into(), timestamp),
        ("x-fal-webhook-signature".into(), signature),
    ]
}

/// After `delay`, complete job `id` and POST its signed webhook to `url`, recording the status.
async fn deliver_webhook(shared: Arc<Shared>, id: String, url: String, delay: Duration) {
    tokio::time::sleep(delay).await;
    let Some(body) = complete_for_webhook(&shared, &id) else { return };
    let headers = signed_headers(&SigningKey::from_bytes(&WEBHOOK_SEED), &id, body.as_bytes());
    let status = post(&url, &headers, body.as_bytes()).await;
    shared.inner.lock().unwrap().deliveries.push(status);
}

/// Complete job `id` (unless canceled or [`Reply::Forever`]) and return its webhook body.
fn complete_for_webhook(shared: &Shared, id: &str) -> Option<String> {
    let mut inner = shared.inner.lock().unwrap();
    let job = inner.jobs.get_mut(id)?;
    if job.canceled || matches!(job.reply, Reply::Forever) {
        return None;
    }
    job.released = true;
    let oversized = matches!(job.reply, Reply::Oversized);
    let mut body = json!({"request_id": id, "gateway_request_id": id, "status": "OK", "payload": null, "error": null});
    if oversized {
        body["payload_error"] = "Response payload is too large".into();
        return Some(body.to_string());
    }
    match result_body(shared, &mut inner, id) {
        ResultBody::Json(200, payload) => body["payload"] = payload,
        ResultBody::Json(status, payload) => {
            body["status"] = "ERROR".into();
            body["error"] = format!("Invalid status code: {status}").into();
            body["payload"] = payload;
        }
        ResultBody::Raw(_) => body["payload_error"] = "Response payload is not valid JSON".into(),
    }
    Some(body.to_string())
}

/// A minimal HTTP/1.1 `POST` to an `http://host[:port]/path` URL (`Connection: close`): the
/// response's status code, or 0 when there was no readable answer within 30 s.
async fn post(url: &str, headers: &[(String, String)], body: &[u8]) -> u16 {
    let Some(rest) = url.strip_prefix("http://") else { return 0 };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&address).await?;
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.flush().await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let Ok(Ok(answer)) = tokio::time::timeout(Duration::from_secs(30), exchange).await else { return 0 };
    // "HTTP/1.1 202 Accepted"
    let line = answer.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line).split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// The percent-decoded value of `name` in the query of `path_and_query` (`+` is a space).
fn query_param(path_and_query: &str, name: &str) -> Option<String> {
    let query = path_and_query.split_once('?')?.1;
    let raw = query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
