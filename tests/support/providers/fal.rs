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
//!   requested size when both sides are at most 256 pixels, else scaled to 64 pixels on the long side.
//!
//! Every queue request must carry `Authorization: Key <key>` (the fixture's [`FalFixture::key`]);
//! otherwise the answer is fal's 401 `{"detail":"No user found for Key ID and Secret"}`. File
//! downloads need no key (fal's CDN is public). Every request is recorded, including refused ones.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::{Request, Response, Server};
use serde_json::{Value, json};

/// The key [`FalFixture::start`] expects.
pub const DEFAULT_KEY: &str = "fal-test-key:0123456789abcdef";

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
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    requests: Vec<Recorded>,
    jobs: HashMap<String, Job>,
    files: HashMap<String, Vec<u8>>,
    next_id: u64,
    cancels: Vec<String>,
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
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FalFixture {
    /// Start on a free port with [`DEFAULT_KEY`].
    pub fn start() -> Self {
        Self::start_with_key(DEFAULT_KEY)
    }

    /// Start on a free port, accepting only `key`.
    pub fn start_with_key(key: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared { key: key.to_string(), base_url: base_url.clone(), inner: Mutex::default() });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("fixture runtime");
            runtime.block_on(async move {
                let acceptor = TcpAcceptor::from_std(listener).expect("fixture acceptor");
                let endpoint = poem::endpoint::make(move |req: Request| handle(Arc::clone(&state), req));
                let _ = Server::new_with_acceptor(acceptor)
                    .run_with_graceful_shutdown(
                        endpoint,
                        async move {
                            let _ = stopped.await;
                        },
                        Some(Duration::from_millis(200)),
                    )
                    .await;
            });
        });
        Self { base_url, key: key.to_string(), shared, stop: Some(stop), thread: Some(thread) }
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
}

impl Drop for FalFixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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
        502 | 503 | 504 => json!({"detail": "Service temporarily unavailable"}),
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
        return submit(&shared, &segments, &body).await;
    }
    json_response(404, &error_body(404), None)
}

async fn submit(shared: &Shared, segments: &[&str], body: &[u8]) -> Response {
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
        },
    );
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
    if job.queued_left > 0 {
        job.queued_left -= 1;
        return json_response(
            202,
            &json!({"status": "IN_QUEUE", "queue_position": job.queued_left, "logs": null}),
            None,
        );
    }
    if matches!(job.reply, Reply::Forever) {
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
    let reply = job.reply.clone();
    let input = job.input.clone();
    match &reply {
        Reply::Malformed => return raw_response(200, "application/json", br#"{"images":[{"url":"#.to_vec()),
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
            return json_response(*status, &body, None);
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
    json_response(200, &answer, None)
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
