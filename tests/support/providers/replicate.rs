//! A Replicate predictions API fixture on 127.0.0.1, replaying Replicate's documented wire
//! format (`/work/shared/PROVIDERS.md`, "Replicate predictions"):
//!
//! - `POST /v1/models/{owner}/{name}/predictions` `{"input":{…}}` and `POST /v1/predictions`
//!   `{"version","input"}` create a prediction and answer 201 with the prediction object
//!   `{"id","model","version","input","logs","output","data_removed","error","status","created_at","urls":{"get","cancel"}}`:
//!   `succeeded` at once for [`Reply::SucceededAtOnce`] when the request says `Prefer: wait`,
//!   else `starting`;
//! - `GET /v1/predictions/{id}` answers the next state: `processing` (with tqdm-style `logs`
//!   and `Using seed: N`), then `succeeded` with `output` (a list of URLs when the input has
//!   `num_outputs`, else one URL) and `metrics.predict_time`, or `failed` with `error`, or
//!   `canceled`;
//! - `POST /v1/predictions/{id}/cancel` marks it canceled and answers the prediction;
//! - `GET /files/{name}` serves output images: real PNGs, at the requested size when both sides
//!   are at most 256 pixels, else scaled to 64 pixels on the long side.
//!
//! API requests must carry `Authorization: Bearer <token>` ([`ReplicateFixture::key`]);
//! otherwise the answer is Replicate's RFC 7807 401. Files need no token (`replicate.delivery`
//! is public). Errors are `application/problem+json` `{"type","title","status","detail"}`.
//! Every request is recorded, including refused ones.

#![allow(dead_code)]

// Each fixture is its own module tree (a test may include any subset), so each takes its own
// copy of the shared harness.
#[path = "server.rs"]
#[allow(clippy::duplicate_mod)]
mod server;

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::StatusCode;
use poem::{Request, Response};
use serde_json::{Value, json};

/// The token [`ReplicateFixture::start`] expects.
pub const DEFAULT_KEY: &str = "r8_fixture0123456789abcdefghijklmnopqrstu";

/// Size of the [`Reply::Oversized`] create answer (above the plugin's 32 MiB `max_response_bytes`).
pub const OVERSIZED_BYTES: usize = 40 << 20;

/// The error text Replicate's FLUX models fail with when their safety checker trips.
pub const NSFW_ERROR: &str = "NSFW content detected. Try running it again, or try a different prompt.";

/// How the fixture answers one prediction.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Created `starting`; one poll `processing`; then `succeeded` with PNG outputs.
    Success,
    /// Created `starting`; `processing` for this many polls; then `succeeded`.
    Progress {
        /// Polls answered `processing`.
        processing: u32,
    },
    /// With `Prefer: wait`, the create call answers the `succeeded` prediction directly
    /// (without it: `starting`, then `succeeded` at the first poll).
    SucceededAtOnce,
    /// Like `Success`, but every output URL is this URL (an SSRF target).
    UrlResult(String),
    /// The create call is refused with `status` and Replicate's problem body for it, with
    /// `Retry-After: <secs>` when given.
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u32>,
    },
    /// Created `starting`; the first poll answers `failed` with this `error`.
    Failed(String),
    /// Same as [`Reply::Nsfw`].
    SafetyBlock,
    /// `Failed(NSFW_ERROR)`.
    Nsfw,
    /// Created `starting`; the first poll answers `canceled` (canceled upstream).
    CanceledUpstream,
    /// The create call answers 201 with broken JSON.
    Malformed,
    /// The create call answers 201 with a valid prediction of [`OVERSIZED_BYTES`] (huge `logs`).
    Oversized,
    /// The create call is answered (as `Success`) only after this delay.
    Hang(Duration),
    /// `processing` forever, until canceled (then `canceled`).
    Forever,
}

/// One request the fixture received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `POST`…
    pub method: String,
    /// Path and query.
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

struct Prediction {
    model: String,
    version: String,
    reply: Reply,
    input: Value,
    processing_left: u32,
    polls: u32,
    status: &'static str,
    canceled: bool,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    requests: Vec<Recorded>,
    predictions: HashMap<String, Prediction>,
    files: HashMap<String, Vec<u8>>,
    next_id: u64,
    cancels: Vec<String>,
}

struct Shared {
    key: String,
    base_url: String,
    inner: Mutex<Inner>,
}

/// A running Replicate fixture; dropped = stopped.
pub struct ReplicateFixture {
    /// `http://127.0.0.1:<port>`: the plugin's `base_url`.
    pub base_url: String,
    /// The token the fixture accepts (`Authorization: Bearer <token>`).
    pub key: String,
    shared: Arc<Shared>,
    _server: server::FixtureServer,
}

impl ReplicateFixture {
    /// Start on a free port with [`DEFAULT_KEY`].
    pub fn start() -> Self {
        Self::start_with_key(DEFAULT_KEY)
    }

    /// Start on a free port, accepting only `key`.
    pub fn start_with_key(key: &str) -> Self {
        let (listener, base_url) = server::bind();
        let shared = Arc::new(Shared { key: key.to_string(), base_url: base_url.clone(), inner: Mutex::default() });
        let state = Arc::clone(&shared);
        let server = server::FixtureServer::serve("replicate-fixture", listener, move |req: Request| {
            handle(Arc::clone(&state), req)
        });
        Self { base_url, key: key.to_string(), shared, _server: server }
    }

    /// Queue behaviours for the next predictions, in order (after those already queued); when
    /// the queue is empty a prediction gets [`Reply::Success`].
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

    /// The create calls received, in order.
    pub fn creates(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method == "POST" && r.path.ends_with("/predictions")).collect()
    }

    /// Whether a `POST …/cancel` was received.
    pub fn canceled(&self) -> bool {
        !self.shared.inner.lock().unwrap().cancels.is_empty()
    }

    /// The prediction ids whose cancel URL was called, in order.
    pub fn canceled_ids(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().cancels.clone()
    }
}

fn response(status: u16, content_type: &str, body: Vec<u8>, retry_after: Option<u32>) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type(content_type);
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    builder.body(body)
}

fn json_response(status: u16, body: &Value) -> Response {
    response(status, "application/json", body.to_string().into_bytes(), None)
}

/// Replicate's RFC 7807 body for a status.
fn problem(status: u16) -> Value {
    let (title, detail) = match status {
        400 => ("Bad request", "The request body is not valid JSON."),
        401 => ("Unauthenticated", "You did not pass a valid authentication token"),
        402 => (
            "Insufficient credit",
            "You have insufficient credit to run this model. Go to https://replicate.com/account/billing#billing to purchase credit. Once you purchase credit, please wait a few minutes before trying again.",
        ),
        403 => ("Forbidden", "You do not have permission to run this model."),
        404 => ("Not found", "The requested resource could not be found."),
        422 => (
            "Input validation failed",
            "- input.aspect_ratio: aspect_ratio must be one of the following: \"1:1\", \"16:9\", \"21:9\", \"3:2\", \"2:3\", \"4:5\", \"5:4\", \"3:4\", \"4:3\", \"9:16\", \"9:21\"",
        ),
        429 => ("Request was throttled.", "Request was throttled. Your rate limit resets in ~1s."),
        500 => ("Internal server error", "Something went wrong on our end."),
        _ => ("Service unavailable", "The service is temporarily unavailable."),
    };
    let mut body = json!({"type": "about:blank", "title": title, "status": status, "detail": detail});
    if status == 422 {
        body["invalid_fields"] = json!([{
            "type": "enum",
            "field": "input.aspect_ratio",
            "description": "aspect_ratio must be one of the following: \"1:1\", \"16:9\", \"21:9\", \"3:2\", \"2:3\", \"4:5\", \"5:4\", \"3:4\", \"4:3\", \"9:16\", \"9:21\""
        }]);
    }
    body
}

fn problem_response(status: u16, retry_after: Option<u32>) -> Response {
    response(status, "application/problem+json", problem(status).to_string().into_bytes(), retry_after)
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
    let authorized = headers.iter().any(|(k, v)| k == "authorization" && *v == format!("Bearer {}", shared.key));
    let prefer_wait = headers.iter().any(|(k, v)| k == "prefer" && v.trim_start().starts_with("wait"));
    shared.inner.lock().unwrap().requests.push(Recorded {
        method: method.clone(),
        path: full_path,
        headers,
        body: body.clone(),
    });

    let segments: Vec<&str> = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    if method == "GET" && segments.len() == 2 && segments[0] == "files" {
        return match shared.inner.lock().unwrap().files.get(segments[1]) {
            Some(png) => response(200, "image/png", png.clone(), None),
            None => problem_response(404, None),
        };
    }
    if !authorized {
        return problem_response(401, None);
    }
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "models", owner, name, "predictions"]) => {
            let model = format!("{owner}/{name}");
            create(&shared, model, None, &body, prefer_wait).await
        }
        ("POST", ["v1", "predictions"]) => {
            let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            match parsed.get("version").and_then(Value::as_str) {
                Some(version) => create(&shared, "pinned/model".into(), Some(version.to_string()), &body, prefer_wait).await,
                None => response(
                    422,
                    "application/problem+json",
                    json!({"type": "about:blank", "title": "Input validation failed", "status": 422, "detail": "- version: version is required"})
                        .to_string()
                        .into_bytes(),
                    None,
                ),
            }
        }
        ("GET", ["v1", "predictions", id]) => poll(&shared, id),
        ("POST", ["v1", "predictions", id, "cancel"]) => cancel(&shared, id),
        _ => problem_response(404, None),
    }
}

async fn create(shared: &Shared, model: String, version: Option<String>, body: &[u8], prefer_wait: bool) -> Response {
    let reply = shared.inner.lock().unwrap().script.pop_front().unwrap_or(Reply::Success);
    let reply = match reply {
        Reply::Hang(delay) => {
            tokio::time::sleep(delay).await;
            Reply::Success
        }
        Reply::Status { status, retry_after } => return problem_response(status, retry_after),
        Reply::Malformed => return response(201, "application/json", br#"{"id":"x","status":"#.to_vec(), None),
        other => other,
    };
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return problem_response(400, None),
    };
    let input = parsed.get("input").cloned().unwrap_or_else(|| json!({}));
    let processing = match &reply {
        Reply::Progress { processing } => *processing,
        Reply::SucceededAtOnce | Reply::Failed(_) | Reply::Nsfw | Reply::SafetyBlock | Reply::CanceledUpstream => 0,
        _ => 1,
    };
    let mut inner = shared.inner.lock().unwrap();
    inner.next_id += 1;
    let id = format!("rf{:010}xyzqa5cg0rm", inner.next_id);
    let oversized = matches!(reply, Reply::Oversized);
    let at_once = matches!(reply, Reply::SucceededAtOnce) && prefer_wait;
    inner.predictions.insert(
        id.clone(),
        Prediction {
            model,
            version: version.unwrap_or_else(|| "hidden".into()),
            reply,
            input,
            processing_left: processing,
            polls: 0,
            status: "starting",
            canceled: false,
        },
    );
    if at_once {
        finish(&mut inner, &id);
    }
    let mut object = prediction_json(&inner, &shared.base_url, &id);
    if oversized {
        object["logs"] = "x".repeat(OVERSIZED_BYTES).into();
    }
    json_response(201, &object)
}

/// Move a prediction to its final state and make its output files.
fn finish(inner: &mut Inner, id: &str) {
    let p = inner.predictions.get_mut(id).expect("prediction");
    p.status = match &p.reply {
        Reply::Failed(_) | Reply::Nsfw | Reply::SafetyBlock => "failed",
        Reply::CanceledUpstream => "canceled",
        _ => "succeeded",
    };
    if p.status != "succeeded" {
        return;
    }
    let (w, h) = served_size(requested_size(&p.input));
    let n = p.input.get("num_outputs").and_then(Value::as_u64).unwrap_or(1).clamp(1, 16) as usize;
    let names: Vec<String> = (0..n).map(|i| format!("{id}-out-{i}.png")).collect();
    for (i, name) in names.iter().enumerate() {
        let shade = 40 * (i as u8 % 5);
        inner.files.insert(name.clone(), png(w, h, [200 - shade, 90 + shade, 60]));
    }
}

fn prediction_json(inner: &Inner, base_url: &str, id: &str) -> Value {
    let p = &inner.predictions[id];
    let seed = p.input.get("seed").and_then(Value::as_u64).unwrap_or(1234);
    let url = format!("{base_url}/v1/predictions/{id}");
    let mut logs = String::new();
    if p.status != "starting" {
        logs.push_str(&format!("Using seed: {seed}\n"));
        let done = if p.status == "processing" { 14 } else { 28 };
        logs.push_str(&format!(
            "{:>3}%|{:<10}| {done}/28 [00:01<00:01, 12.0it/s]\n",
            done * 100 / 28,
            "#".repeat(done as usize * 10 / 28)
        ));
    }
    let output = if p.status == "succeeded" {
        let n = p.input.get("num_outputs").and_then(Value::as_u64).unwrap_or(1).clamp(1, 16) as usize;
        let urls: Vec<String> = (0..n)
            .map(|i| match &p.reply {
                Reply::UrlResult(target) => target.clone(),
                _ => format!("{base_url}/files/{id}-out-{i}.png"),
            })
            .collect();
        if p.input.get("num_outputs").is_some() { json!(urls) } else { json!(urls[0]) }
    } else {
        Value::Null
    };
    let error = match (&p.reply, p.status) {
        (Reply::Failed(text), "failed") => json!(text),
        (Reply::Nsfw | Reply::SafetyBlock, "failed") => json!(NSFW_ERROR),
        _ => Value::Null,
    };
    let finished = matches!(p.status, "succeeded" | "failed" | "canceled");
    let mut object = json!({
        "id": id,
        "model": p.model,
        "version": p.version,
        "input": p.input,
        "logs": logs,
        "output": output,
        "data_removed": false,
        "error": error,
        "status": p.status,
        "created_at": "2026-01-01T00:00:00.000Z",
        "urls": {"get": url, "cancel": format!("{url}/cancel")},
    });
    if p.status != "starting" {
        object["started_at"] = "2026-01-01T00:00:01.000Z".into();
    }
    if finished {
        object["completed_at"] = "2026-01-01T00:00:03.000Z".into();
        object["metrics"] = json!({"predict_time": 2.1, "total_time": 3.0});
    }
    object
}

fn poll(shared: &Shared, id: &str) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let Some(p) = inner.predictions.get_mut(id) else {
        return problem_response(404, None);
    };
    p.polls += 1;
    if p.canceled {
        p.status = "canceled";
    } else if matches!(p.status, "starting" | "processing") {
        if matches!(p.reply, Reply::Forever) {
            p.status = "processing";
        } else if p.processing_left > 0 {
            p.processing_left -= 1;
            p.status = "processing";
        } else {
            finish(&mut inner, id);
        }
    }
    json_response(200, &prediction_json(&inner, &shared.base_url, id))
}

fn cancel(shared: &Shared, id: &str) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    inner.cancels.push(id.to_string());
    let Some(p) = inner.predictions.get_mut(id) else {
        return problem_response(404, None);
    };
    if matches!(p.status, "starting" | "processing") {
        p.canceled = true;
        p.status = "canceled";
    }
    json_response(200, &prediction_json(&inner, &shared.base_url, id))
}

/// The pixel size the input asked for: `width`/`height`, `size: "WxH"` or `aspect_ratio`.
fn requested_size(input: &Value) -> (u32, u32) {
    let num = |k: &str| input.get(k).and_then(Value::as_u64).map(|v| v as u32).filter(|v| *v > 0);
    if let (Some(w), Some(h)) = (num("width"), num("height")) {
        return (w, h);
    }
    if let Some((w, h)) = input.get("size").and_then(Value::as_str).and_then(|s| s.split_once('x'))
        && let (Ok(w), Ok(h)) = (w.parse::<u32>(), h.parse::<u32>())
        && w > 0
        && h > 0
    {
        return (w, h);
    }
    if let Some((w, h)) = input.get("aspect_ratio").and_then(Value::as_str).and_then(|r| r.split_once(':'))
        && let (Ok(w), Ok(h)) = (w.parse::<u32>(), h.parse::<u32>())
        && w > 0
        && h > 0
    {
        return (w * 64, h * 64);
    }
    (1024, 1024)
}

/// The size of a served PNG: as asked when small, else 64 pixels on the long side.
fn served_size((w, h): (u32, u32)) -> (u32, u32) {
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
