//! A stand-in for OpenAI's Images API (and OpenAI-compatible servers such as LocalAI), served
//! over real HTTP on 127.0.0.1, for end-to-end tests of the `openai` plugin.
//!
//! It answers, in the documented wire format
//! (<https://platform.openai.com/docs/api-reference/images>):
//!
//! - `POST /v1/images/generations` (JSON) and `POST /v1/images/edits` (`multipart/form-data`,
//!   parsed: every part is recorded in [`Recorded::form`]) — after checking
//!   `Authorization: Bearer <key>` (missing or wrong → OpenAI's 401 bodies) and the request
//!   (JSON, `prompt`, the model's sizes, no `response_format` for GPT Image models, an `image`
//!   part that decodes, a `mask` PNG with alpha of the image's size), the next scripted
//!   [`Reply`] is played (success when the script is empty);
//! - `GET /files/<name>` (no key needed, like a signed blob URL): the PNG a URL result points
//!   to, or a 64×64 PNG for any other name;
//! - anything else: OpenAI's 404 "Invalid URL" body.
//!
//! Dependencies: poem (server), tokio, serde_json, base64, image.

#![allow(dead_code)]

// Each fixture is its own module tree (a test may include any subset), so each takes its own
// copy of the shared harness.
#[path = "server.rs"]
#[allow(clippy::duplicate_mod)]
mod server;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use poem::http::{Method, StatusCode};
use poem::{Body, Request, Response};
use serde_json::{Value, json};

/// The API key a fixture from [`OpenAiFixture::start`] accepts.
pub const DEFAULT_KEY: &str = "sk-test-openai-fixture-key";

/// Size of the body [`Reply::Oversized`] streams: larger than any plugin's `max_response_bytes`.
pub const OVERSIZED_BYTES: usize = 80 * 1024 * 1024;

/// What the fixture does with the next authorised, well-formed generations or edits request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with `n` images (the request's `n`, default 1) as the model family answers:
    /// GPT Image: `b64_json` in the requested `output_format` (png, jpeg, webp) plus
    /// `background`, `output_format`, `quality`, `size` and `usage`; dall-e-3: `revised_prompt`;
    /// dall-e and other models: `url`s to this fixture's `/files/` when the request's
    /// `response_format` is "url", else `b64_json`. Each image is the requested size divided
    /// by 16 (64×64 for 1024×1024, 96×64 for 1536×1024, 16×16 for 256×256).
    Success,
    /// [`Reply::Success`] with every image as a URL to this fixture's `/files/img-N.png`,
    /// whatever the request's `response_format`.
    Url,
    /// [`Reply::Success`] with every image's `url` set to this URL (e.g. an SSRF target).
    UrlResult(String),
    /// [`Reply::Success`] with exactly this many images, whatever `n` asked for.
    Count(usize),
    /// OpenAI's error body for `status`: 400 invalid `size` (`param` "size", code
    /// `invalid_value`), 401 `invalid_api_key`, 403 `unsupported_country_region_territory`,
    /// 404 `model_not_found`, 429 `rate_limit_exceeded`, 500/502/503 `server_error`, else a
    /// generic one. With `retry_after`: a whole number of seconds is sent as `retry-after: N`
    /// alone; otherwise `retry-after-ms: <ms>` and `retry-after: <seconds, rounded up>`.
    Status {
        /// HTTP status.
        status: u16,
        /// The retry hint to send.
        retry_after: Option<Duration>,
    },
    /// 400, GPT Image's safety refusal: type `image_generation_user_error`, code
    /// `moderation_blocked`, with `moderation_details`.
    ModerationBlocked,
    /// 400, DALL·E's safety refusal: code `content_policy_violation`.
    ContentPolicy,
    /// LocalAI's error body for `status`: `{"error":{"code":<status as a number>,"message":…,"type":""}}`.
    LocalAiError {
        /// HTTP status.
        status: u16,
    },
    /// 200 with a truncated JSON body.
    Malformed,
    /// 200 streaming [`OVERSIZED_BYTES`] of (valid, if read to the end) JSON.
    Oversized,
    /// Wait this long, then answer as [`Reply::Success`].
    Hang(Duration),
}

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug)]
pub struct FormPart {
    /// The field name.
    pub name: String,
    /// The file name, for file parts.
    pub filename: Option<String>,
    /// The part's `Content-Type`, when given.
    pub content_type: Option<String>,
    /// The raw content.
    pub data: Vec<u8>,
}

impl FormPart {
    /// The content as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// One request the fixture received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// "POST", "GET"…
    pub method: String,
    /// Path and query, e.g. "/v1/images/generations".
    pub path: String,
    /// Headers with lowercase names, in the order received.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The parts of a `multipart/form-data` body (empty otherwise).
    pub form: Vec<FormPart>,
}

impl Recorded {
    /// The first header with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The form part with this name.
    pub fn part(&self, name: &str) -> Option<&FormPart> {
        self.form.iter().find(|p| p.name == name)
    }

    /// Did a form part with this name arrive?
    pub fn has_part(&self, name: &str) -> bool {
        self.part(name).is_some()
    }

    /// A request field, from the JSON body or the form, as text.
    pub fn field(&self, name: &str) -> Option<String> {
        if let Some(part) = self.part(name) {
            return Some(part.text());
        }
        match &self.json()[name] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

struct State {
    key: String,
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    files: Mutex<HashMap<String, Vec<u8>>>,
    counter: AtomicU64,
    base_url: String,
}

/// A running fixture; dropped = stopped.
pub struct OpenAiFixture {
    /// `http://127.0.0.1:PORT`: the plugin's `base_url`.
    pub base_url: String,
    /// The API key the fixture accepts as `Authorization: Bearer <key>`.
    pub key: String,
    state: Arc<State>,
    _server: server::FixtureServer,
}

impl OpenAiFixture {
    /// Start a fixture that accepts [`DEFAULT_KEY`].
    pub fn start() -> Self {
        Self::start_with_key(DEFAULT_KEY)
    }

    /// Start a fixture that accepts `key`, on its own thread and tokio runtime, bound to
    /// 127.0.0.1 on a free port.
    pub fn start_with_key(key: &str) -> Self {
        let (listener, base_url) = server::bind();
        let state = Arc::new(State {
            key: key.to_string(),
            replies: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            files: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            base_url: base_url.clone(),
        });
        let served = Arc::clone(&state);
        let server = server::FixtureServer::serve("openai-fixture", listener, move |request: Request| {
            let state = Arc::clone(&served);
            async move { handle(&state, request).await }
        });
        Self { base_url, key: key.to_string(), state, _server: server }
    }

    /// Queue behaviours for the next generations/edits calls, in order (appended to what is
    /// still queued). Requests refused for their key or shape do not use up a reply.
    pub fn script(&self, replies: Vec<Reply>) {
        self.state.replies.lock().unwrap().extend(replies);
    }

    /// Every request received so far, in order (file downloads included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many requests had a path starting with `path_prefix`.
    pub fn hits(&self, path_prefix: &str) -> usize {
        self.state.requests.lock().unwrap().iter().filter(|r| r.path.starts_with(path_prefix)).count()
    }

    /// The URL of a file this fixture serves (any name serves a 64×64 PNG).
    pub fn file_url(&self, name: &str) -> String {
        format!("{}/files/{name}", self.base_url)
    }
}

/// The sizes OpenAI's own models take (`None`: any size, for other servers' models).
fn allowed_sizes(model: &str) -> Option<&'static [&'static str]> {
    match model {
        "dall-e-3" => Some(&["1024x1024", "1792x1024", "1024x1792"]),
        "dall-e-2" => Some(&["256x256", "512x512", "1024x1024"]),
        m if m.starts_with("gpt-image-") => Some(&["1024x1024", "1536x1024", "1024x1536", "auto"]),
        _ => None,
    }
}

async fn handle(state: &State, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = request.into_body().into_vec().await.unwrap_or_default();
    let mut recorded = Recorded { method: method.to_string(), path: path.clone(), headers, body, form: Vec::new() };
    let content_type = recorded.header("content-type").unwrap_or("").to_string();
    if let Some(boundary) = boundary_of(&content_type) {
        recorded.form = parse_multipart(&recorded.body, &boundary).unwrap_or_default();
    }
    state.requests.lock().unwrap().push(recorded.clone());

    let route = path.split('?').next().unwrap_or("");
    if method == Method::GET
        && let Some(name) = route.strip_prefix("/files/")
    {
        let stored = state.files.lock().unwrap().get(name).cloned();
        return Response::builder()
            .status(StatusCode::OK)
            .content_type("image/png")
            .body(stored.unwrap_or_else(|| encode(64, 64, 0, "png")));
    }
    let edit = match route {
        "/v1/images/generations" if method == Method::POST => false,
        "/v1/images/edits" if method == Method::POST => true,
        _ => {
            return error(
                404,
                &format!("Invalid URL ({method} {route})"),
                "invalid_request_error",
                None,
                Value::Null,
                &[],
            );
        }
    };

    // Authentication, as OpenAI words it.
    match recorded.header("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        Some(key) if key == state.key => {}
        Some(key) if !key.trim().is_empty() => {
            let masked = mask_key(key);
            return error(
                401,
                &format!(
                    "Incorrect API key provided: {masked}. You can find your API key at \
                     https://platform.openai.com/account/api-keys."
                ),
                "invalid_request_error",
                None,
                json!("invalid_api_key"),
                &[],
            );
        }
        _ => {
            return error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using \
                 Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) \
                 if you're accessing the API from your browser and are prompted for a username and password. You \
                 can obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
                Value::Null,
                &[],
            );
        }
    }

    // The request's shape.
    if edit {
        if !content_type.starts_with("multipart/form-data") || recorded.form.is_empty() {
            return error(
                400,
                &format!(
                    "Invalid Content-Type header ({content_type}), expected multipart/form-data. (HINT: If you're \
                     using curl, you can pass -H 'Content-Type: multipart/form-data')"
                ),
                "invalid_request_error",
                None,
                Value::Null,
                &[],
            );
        }
    } else if !recorded.json().is_object() {
        return error(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP \
             library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you \
             have trouble figuring out how to fix this, please contact us through our help center at \
             help.openai.com.)",
            "invalid_request_error",
            None,
            Value::Null,
            &[],
        );
    }
    let model = recorded.field("model").unwrap_or_else(|| "dall-e-2".into());
    let size = recorded.field("size").unwrap_or_else(|| "1024x1024".into());
    if let Some(response) = check_request(&recorded, edit, &model, &size) {
        return response;
    }

    let reply = state.replies.lock().unwrap().pop_front().unwrap_or(Reply::Success);
    let call = state.counter.fetch_add(1, Ordering::Relaxed) + 1;
    let request_id = format!("req_fx{call:08}");
    let n = recorded.field("n").and_then(|n| n.trim().parse::<usize>().ok()).unwrap_or(1);
    match reply {
        Reply::Success | Reply::Url | Reply::UrlResult(_) | Reply::Count(_) | Reply::Hang(_) => {
            if let Reply::Hang(delay) = &reply {
                tokio::time::sleep(*delay).await;
            }
            let count = if let Reply::Count(k) = reply { k } else { n };
            success(state, &recorded, &reply, &model, &size, count, call, &request_id)
        }
        Reply::Status { status, retry_after } => {
            let (message, kind, param, code) = match status {
                400 => (
                    format!(
                        "Invalid value: '{size}'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'."
                    ),
                    "invalid_request_error",
                    Some("size"),
                    json!("invalid_value"),
                ),
                401 => (
                    format!(
                        "Incorrect API key provided: {}. You can find your API key at \
                         https://platform.openai.com/account/api-keys.",
                        mask_key(&state.key)
                    ),
                    "invalid_request_error",
                    None,
                    json!("invalid_api_key"),
                ),
                403 => (
                    "Country, region, or territory not supported".to_string(),
                    "request_forbidden",
                    None,
                    json!("unsupported_country_region_territory"),
                ),
                404 => (
                    format!("The model `{model}` does not exist or you do not have access to it."),
                    "invalid_request_error",
                    None,
                    json!("model_not_found"),
                ),
                429 => (
                    format!(
                        "Rate limit reached for {model} in organization org-fixture on images per minute (IPM): \
                         Limit 5, Used 5, Requested 1. Please try again in 12s. Visit \
                         https://platform.openai.com/account/rate-limits to learn more."
                    ),
                    "requests",
                    None,
                    json!("rate_limit_exceeded"),
                ),
                500 => (
                    format!(
                        "The server had an error while processing your request. Sorry about that! You can retry your \
                         request, or contact us through our help center at help.openai.com if the error persists. \
                         (Please include the request ID {request_id} in your message.)"
                    ),
                    "server_error",
                    None,
                    Value::Null,
                ),
                502 | 503 => {
                    ("The server is overloaded or not ready yet.".to_string(), "server_error", None, Value::Null)
                }
                _ => (format!("Request failed with status {status}."), "invalid_request_error", None, Value::Null),
            };
            let mut headers = vec![("x-request-id".to_string(), request_id.clone())];
            if let Some(delay) = retry_after {
                if delay.subsec_nanos() == 0 {
                    headers.push(("retry-after".into(), delay.as_secs().to_string()));
                } else {
                    headers.push(("retry-after-ms".into(), delay.as_millis().to_string()));
                    headers.push(("retry-after".into(), delay.as_secs_f64().ceil().to_string()));
                }
            }
            error(status, &message, kind, param, code, &headers)
        }
        Reply::ModerationBlocked => {
            let body = json!({"error": {
                "message": format!(
                    "Your request was rejected by the safety system. If you believe this is an error, contact us at \
                     help.openai.com and include the request ID {request_id}. safety_violations=[sexual]."
                ),
                "type": "image_generation_user_error",
                "param": null,
                "code": "moderation_blocked",
                "moderation_details": {"moderation_stage": "input", "categories": ["sexual"]}
            }});
            json_response(400, &body, &[("x-request-id".into(), request_id)])
        }
        Reply::ContentPolicy => error(
            400,
            "Your request was rejected as a result of our safety system. Your prompt may contain text that is not \
             allowed by our safety system.",
            "invalid_request_error",
            None,
            json!("content_policy_violation"),
            &[("x-request-id".into(), request_id)],
        ),
        Reply::LocalAiError { status } => json_response(
            status,
            &json!({"error": {"code": status, "message": "could not load model: rpc error: code = Unknown desc = failed to load model", "type": ""}}),
            &[],
        ),
        Reply::Malformed => Response::builder()
            .status(StatusCode::OK)
            .content_type("application/json")
            .header("x-request-id", request_id)
            .body("{\n  \"created\": 1713833628,\n  \"data\": [\n    {\n      \"b64_json\": \"iVBORw0KGgo"),
        Reply::Oversized => Response::builder().status(StatusCode::OK).content_type("application/json").body(
            Body::from_async_read(OversizedBody::new(b"{\"created\":1713833628,\"data\":[{\"b64_json\":\"", b"\"}]}")),
        ),
    }
}

/// OpenAI's checks on a request, as far as the plugin's requests go; `None` when it passes.
fn check_request(recorded: &Recorded, edit: bool, model: &str, size: &str) -> Option<Response> {
    let invalid = |message: String, param: &str, code: &str| {
        Some(error(400, &message, "invalid_request_error", Some(param), json!(code), &[]))
    };
    if recorded.field("prompt").is_none_or(|p| p.trim().is_empty()) {
        return invalid("Missing required parameter: 'prompt'.".into(), "prompt", "missing_required_parameter");
    }
    if let Some(allowed) = allowed_sizes(model)
        && !allowed.contains(&size)
    {
        let list = allowed.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
        return invalid(format!("Invalid value: '{size}'. Supported values are: {list}."), "size", "invalid_value");
    }
    if model.starts_with("gpt-image-") && recorded.field("response_format").is_some() {
        return invalid("Unknown parameter: 'response_format'.".into(), "response_format", "unknown_parameter");
    }
    if !edit {
        return None;
    }
    let Some(image_part) = recorded.part("image").or_else(|| recorded.part("image[]")) else {
        return invalid("Missing required parameter: 'image'.".into(), "image", "missing_required_parameter");
    };
    let Ok(image) = image::load_from_memory(&image_part.data) else {
        return invalid(
            "Invalid image file or mode for image 1, please check your image file.".into(),
            "image",
            "invalid_image_file",
        );
    };
    if model == "dall-e-2" && image.width() != image.height() {
        return invalid("Uploaded image must be a PNG and less than 4 MB.".into(), "image", "invalid_image");
    }
    if let Some(mask_part) = recorded.part("mask") {
        let mask = image::load_from_memory_with_format(&mask_part.data, image::ImageFormat::Png);
        let Ok(mask) = mask else {
            return invalid("Invalid mask image file, please check your mask.".into(), "mask", "invalid_image_file");
        };
        if !mask.color().has_alpha() {
            return invalid(
                format!("Invalid input image - format must be in ['RGBA', 'LA', 'L'], got {:?}.", mask.color()),
                "mask",
                "invalid_image_format",
            );
        }
        if (mask.width(), mask.height()) != (image.width(), image.height()) {
            return invalid(
                format!(
                    "Invalid mask image - mask size ({}x{}) does not match image size ({}x{}).",
                    mask.width(),
                    mask.height(),
                    image.width(),
                    image.height()
                ),
                "mask",
                "invalid_mask_size",
            );
        }
    }
    None
}

/// The 200 answer with `count` images.
#[allow(clippy::too_many_arguments)]
fn success(
    state: &State,
    recorded: &Recorded,
    reply: &Reply,
    model: &str,
    size: &str,
    count: usize,
    call: u64,
    request_id: &str,
) -> Response {
    let (width, height) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .unwrap_or((1024, 1024));
    let (width, height) = ((width / 16).max(16), (height / 16).max(16));
    let gpt_image = model.starts_with("gpt-image-");
    let format = if gpt_image { recorded.field("output_format").unwrap_or_else(|| "png".into()) } else { "png".into() };
    let wants_url = !gpt_image && recorded.field("response_format").as_deref() == Some("url");
    let prompt = recorded.field("prompt").unwrap_or_default();
    let data: Vec<Value> = (0..count)
        .map(|i| {
            let bytes = encode(width, height, call as u32 * 16 + i as u32, &format);
            let mut item = match reply {
                Reply::UrlResult(url) => json!({"url": url}),
                Reply::Url => json!({"url": store(state, call, i, bytes)}),
                _ if wants_url => json!({"url": store(state, call, i, bytes)}),
                _ => json!({"b64_json": B64.encode(bytes)}),
            };
            if model == "dall-e-3" {
                item["revised_prompt"] = json!(format!("A detailed rendering of: {prompt}"));
            }
            item
        })
        .collect();
    let mut body = json!({"created": 1713833628u64 + call, "data": data});
    if gpt_image {
        let edit = !recorded.form.is_empty();
        let input_tokens = prompt.split_whitespace().count() as u64 + if edit { 323 } else { 0 };
        let output_tokens = 1056 * count as u64;
        body["background"] = json!(recorded.field("background").unwrap_or_else(|| "opaque".into()));
        body["output_format"] = json!(format);
        body["quality"] = json!(recorded.field("quality").unwrap_or_else(|| "medium".into()));
        body["size"] = json!(size);
        body["usage"] = json!({
            "input_tokens": input_tokens,
            "input_tokens_details": {"image_tokens": if edit { 323 } else { 0 }, "text_tokens": input_tokens - if edit { 323 } else { 0 }},
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens
        });
    }
    json_response(
        200,
        &body,
        &[("x-request-id".into(), request_id.to_string()), ("openai-processing-ms".into(), "1234".into())],
    )
}

/// Keep a PNG for `/files/` and return its URL.
fn store(state: &State, call: u64, i: usize, bytes: Vec<u8>) -> String {
    let name = format!("img-{call}-{i}.png");
    state.files.lock().unwrap().insert(name.clone(), bytes);
    format!("{}/files/{name}", state.base_url)
}

/// OpenAI's error envelope.
fn error(
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Value,
    headers: &[(String, String)],
) -> Response {
    json_response(status, &json!({"error": {"message": message, "type": kind, "param": param, "code": code}}), headers)
}

fn json_response(status: u16, body: &Value, headers: &[(String, String)]) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json");
    for (k, v) in headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(serde_json::to_string_pretty(body).unwrap())
}

/// How OpenAI quotes a wrong key: the start and the last four characters, the rest starred.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary_of(content_type: &str) -> Option<String> {
    if !content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.trim().split_once('=')?;
        key.trim().eq_ignore_ascii_case("boundary").then(|| value.trim().trim_matches('"').to_string())
    })
}

/// Split a `multipart/form-data` body into its parts; `None` when it is not well formed.
fn parse_multipart(body: &[u8], boundary: &str) -> Option<Vec<FormPart>> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut at = find(body, &delimiter, 0)? + delimiter.len();
    loop {
        if body[at..].starts_with(b"--") {
            return Some(parts);
        }
        at += if body[at..].starts_with(b"\r\n") { 2 } else { return None };
        let next = find(body, &[b"\r\n".as_slice(), &delimiter].concat(), at)?;
        let part = &body[at..next];
        let split = find(part, b"\r\n\r\n", 0)?;
        let head = String::from_utf8_lossy(&part[..split]);
        let mut form_part =
            FormPart { name: String::new(), filename: None, content_type: None, data: part[split + 4..].to_vec() };
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else { continue };
            match key.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    for param in value.split(';').skip(1) {
                        if let Some((k, v)) = param.trim().split_once('=') {
                            let v = v.trim().trim_matches('"').to_string();
                            match k.trim() {
                                "name" => form_part.name = v,
                                "filename" => form_part.filename = Some(v),
                                _ => {}
                            }
                        }
                    }
                }
                "content-type" => form_part.content_type = Some(value.trim().to_string()),
                _ => {}
            }
        }
        parts.push(form_part);
        at = next + 2 + delimiter.len();
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// A `width`×`height` image in `format` ("png", "jpeg" or "webp"): a gradient whose blue
/// channel comes from `tint`.
fn encode(width: u32, height: u32, tint: u32, format: &str) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, (tint.wrapping_mul(37) % 251) as u8])
    });
    let format = match format {
        "jpeg" => image::ImageFormat::Jpeg,
        "webp" => image::ImageFormat::WebP,
        _ => image::ImageFormat::Png,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode image");
    out.into_inner()
}

/// A body of [`OVERSIZED_BYTES`]: `head`, then 'A's, then `tail`, produced as it is read.
struct OversizedBody {
    head: &'static [u8],
    tail: &'static [u8],
    /// Bytes sent so far.
    sent: usize,
}

impl OversizedBody {
    fn new(head: &'static [u8], tail: &'static [u8]) -> Self {
        Self { head, tail, sent: 0 }
    }
}

impl tokio::io::AsyncRead for OversizedBody {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let tail_start = OVERSIZED_BYTES - self.tail.len();
        while buf.remaining() > 0 && self.sent < OVERSIZED_BYTES {
            let at = self.sent;
            let chunk: &[u8] = if at < self.head.len() {
                &self.head[at..]
            } else if at < tail_start {
                const FILLER: [u8; 8192] = [b'A'; 8192];
                &FILLER[..(tail_start - at).min(FILLER.len())]
            } else {
                &self.tail[at - tail_start..]
            };
            let take = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..take]);
            self.sent += take;
        }
        std::task::Poll::Ready(Ok(()))
    }
}
