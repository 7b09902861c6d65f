//! A stand-in for Google's Gemini API (`generateContent` with image output), served over real
//! HTTP on 127.0.0.1, for end-to-end tests of the `gemini` plugin.
//!
//! It answers `POST /v1beta/models/{model}:generateContent` in the documented wire format
//! (<https://ai.google.dev/api/generate-content>): it checks the `x-goog-api-key` header the way
//! Google does (missing → 403 `PERMISSION_DENIED`, wrong → 400 `INVALID_ARGUMENT` with
//! `ErrorInfo.reason` `API_KEY_INVALID`), checks the body's shape (JSON, `contents`, a known
//! `imageConfig.aspectRatio` and `imageSize`, decodable `inlineData`), then plays the next
//! scripted [`Reply`] (success when the script is empty). Every request is recorded.
//!
//! Dependencies: poem (server), tokio, serde_json, base64, image.

#![allow(dead_code)]

// Each fixture is its own module tree (a test may include any subset), so each takes its own
// copy of the shared harness.
#[path = "server.rs"]
#[allow(clippy::duplicate_mod)]
mod server;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use poem::http::{Method, StatusCode};
use poem::{Body, Request, Response};
use serde_json::{Value, json};

/// The API key a fixture from [`GeminiFixture::start`] accepts.
pub const DEFAULT_KEY: &str = "test-gemini-key";

/// Size of the body [`Reply::Oversized`] streams: larger than any plugin's `max_response_bytes`.
pub const OVERSIZED_BYTES: usize = 80 * 1024 * 1024;

/// The aspect ratios Gemini draws and their pixel sizes at 1K.
pub const NATIVE_SIZES: &[(&str, u32, u32)] = &[
    ("1:1", 1024, 1024),
    ("2:3", 832, 1248),
    ("3:2", 1248, 832),
    ("3:4", 768, 1024),
    ("4:3", 1024, 768),
    ("4:5", 896, 1120),
    ("5:4", 1120, 896),
    ("9:16", 768, 1344),
    ("16:9", 1344, 768),
    ("21:9", 1536, 672),
];

/// What the fixture does with the next authorised, well-formed `generateContent` request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with one PNG `inlineData` part (after a short text part): the requested aspect
    /// ratio's 1K size divided by 16 (64×64 for 1:1, 84×48 for 16:9…), coloured by the seed;
    /// `usageMetadata`, `modelVersion` (the model of the URL) and `responseId` "fx-gemini-N".
    Success,
    /// [`Reply::Success`] with a PNG of exactly this size.
    SuccessSized {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Google's error body for `status`: 400 `INVALID_ARGUMENT`, 403 `PERMISSION_DENIED`,
    /// 404 `NOT_FOUND`, 429 `RESOURCE_EXHAUSTED` (with `QuotaFailure` and `Help` details),
    /// 500 `INTERNAL`, 503 `UNAVAILABLE`, 504 `DEADLINE_EXCEEDED`, else `UNKNOWN`. With
    /// `retry_after`, a `google.rpc.RetryInfo` detail whose `retryDelay` is that duration
    /// ("15s", "1.5s"); Google sends no `Retry-After` header.
    Status {
        /// HTTP status.
        status: u16,
        /// The `retryDelay` to advertise.
        retry_after: Option<Duration>,
    },
    /// 200, one candidate with `finishReason` `IMAGE_SAFETY` and no content.
    SafetyBlock,
    /// 200, no candidates, `promptFeedback.blockReason` `SAFETY` with safety ratings.
    PromptBlocked,
    /// 200, one candidate with only a text part and `finishReason` `STOP` (the model answered in
    /// words instead of drawing).
    TextOnly,
    /// 200 with a truncated JSON body.
    Malformed,
    /// 200 streaming [`OVERSIZED_BYTES`] of (valid, if read to the end) JSON.
    Oversized,
    /// Wait this long, then answer as [`Reply::Success`].
    Hang(Duration),
}

/// One request the fixture received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// "POST", "GET"…
    pub method: String,
    /// Path and query, e.g. "/v1beta/models/gemini-2.5-flash-image:generateContent".
    pub path: String,
    /// Headers with lowercase names, in the order received.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
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

    /// The model named in the path of a `generateContent` request.
    pub fn model(&self) -> Option<&str> {
        self.path.split('?').next()?.strip_prefix("/v1beta/models/")?.strip_suffix(":generateContent")
    }

    /// The text parts of the request, joined with newlines.
    pub fn prompt_text(&self) -> String {
        self.parts().iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n")
    }

    /// The decoded `inlineData` parts of the request: (mime type, bytes).
    pub fn inline_images(&self) -> Vec<(String, Vec<u8>)> {
        self.parts()
            .iter()
            .filter_map(|p| {
                let blob = p.get("inlineData")?;
                Some((blob["mimeType"].as_str()?.to_string(), B64.decode(blob["data"].as_str()?).ok()?))
            })
            .collect()
    }

    fn parts(&self) -> Vec<Value> {
        self.json()["contents"][0]["parts"].as_array().cloned().unwrap_or_default()
    }
}

struct State {
    key: String,
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    counter: AtomicU64,
}

/// A running fixture; dropped = stopped.
pub struct GeminiFixture {
    /// `http://127.0.0.1:PORT`: the plugin's `base_url`.
    pub base_url: String,
    /// The API key the fixture accepts in `x-goog-api-key`.
    pub key: String,
    state: Arc<State>,
    _server: server::FixtureServer,
}

impl GeminiFixture {
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
            counter: AtomicU64::new(0),
        });
        let served = Arc::clone(&state);
        let server = server::FixtureServer::serve("gemini-fixture", listener, move |request: Request| {
            let state = Arc::clone(&served);
            async move { handle(&state, request).await }
        });
        Self { base_url, key: key.to_string(), state, _server: server }
    }

    /// Queue behaviours for the next `generateContent` calls, in order (appended to what is
    /// still queued). Requests refused for their key or shape do not use up a reply.
    pub fn script(&self, replies: Vec<Reply>) {
        self.state.replies.lock().unwrap().extend(replies);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many requests had a path starting with `path_prefix`.
    pub fn hits(&self, path_prefix: &str) -> usize {
        self.state.requests.lock().unwrap().iter().filter(|r| r.path.starts_with(path_prefix)).count()
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
    let recorded = Recorded { method: method.to_string(), path, headers, body };
    state.requests.lock().unwrap().push(recorded.clone());

    let Some(model) = recorded.model().map(str::to_string) else {
        return Response::builder().status(StatusCode::NOT_FOUND).content_type("text/html; charset=UTF-8").body(
            "<!DOCTYPE html><title>Error 404 (Not Found)!!1</title><p>The requested URL was not found on this server.",
        );
    };
    if method != Method::POST {
        return error(405, "METHOD_NOT_ALLOWED", "Method Not Allowed", vec![]);
    }
    match recorded.header("x-goog-api-key") {
        None => {
            return error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key \
                 or other form of API consumer identity to call this API.",
                vec![],
            );
        }
        Some(key) if key != state.key => {
            return error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                vec![
                    json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                           "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}),
                    json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                           "message": "API key not valid. Please pass a valid API key."}),
                ],
            );
        }
        Some(_) => {}
    }
    let request_json = match serde_json::from_slice::<Value>(&recorded.body) {
        Ok(v) if v.is_object() => v,
        _ => {
            return error(
                400,
                "INVALID_ARGUMENT",
                "Invalid JSON payload received. Unexpected token.",
                vec![json!({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
                    {"description": "Invalid JSON payload received. Unexpected token."}]})],
            );
        }
    };
    if let Err(message) = check_body(&request_json) {
        return error(400, "INVALID_ARGUMENT", &message, vec![]);
    }

    let reply = state.replies.lock().unwrap().pop_front().unwrap_or(Reply::Success);
    let n = state.counter.fetch_add(1, Ordering::Relaxed) + 1;
    let ratio = request_json["generationConfig"]["imageConfig"]["aspectRatio"].as_str().unwrap_or("1:1");
    let seed = request_json["generationConfig"]["seed"].as_i64().unwrap_or(0);
    let prompt_tokens = (recorded.prompt_text().split_whitespace().count() as u64).max(1);
    let envelope = |mut body: Value| {
        body["modelVersion"] = json!(model);
        body["responseId"] = json!(format!("fx-gemini-{n}"));
        body
    };
    match reply {
        Reply::Success | Reply::SuccessSized { .. } | Reply::Hang(_) => {
            if let Reply::Hang(delay) = reply {
                tokio::time::sleep(delay).await;
            }
            let (width, height) = match reply {
                Reply::SuccessSized { width, height } => (width, height),
                _ => {
                    let &(_, w, h) = NATIVE_SIZES.iter().find(|(r, _, _)| *r == ratio).unwrap_or(&NATIVE_SIZES[0]);
                    (w / 16, h / 16)
                }
            };
            let png = png_image(width, height, seed as u32);
            ok(envelope(json!({
                "candidates": [{
                    "content": {"role": "model", "parts": [
                        {"text": "Here is the image you asked for."},
                        {"inlineData": {"mimeType": "image/png", "data": B64.encode(png)}}
                    ]},
                    "finishReason": "STOP",
                    "index": 0
                }],
                "usageMetadata": {
                    "promptTokenCount": prompt_tokens,
                    "candidatesTokenCount": 1290,
                    "totalTokenCount": prompt_tokens + 1290,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
                    "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}]
                }
            })))
        }
        Reply::Status { status, retry_after } => {
            let (name, message) = match status {
                400 => ("INVALID_ARGUMENT", "Request contains an invalid argument.".to_string()),
                403 => ("PERMISSION_DENIED", "The caller does not have permission".to_string()),
                404 => (
                    "NOT_FOUND",
                    format!(
                        "models/{model} is not found for API version v1beta, or is not supported for generateContent. \
                         Call ListModels to see the list of available models and their supported methods."
                    ),
                ),
                429 => (
                    "RESOURCE_EXHAUSTED",
                    "You exceeded your current quota, please check your plan and billing details. For more information \
                     on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
                        .to_string(),
                ),
                500 => (
                    "INTERNAL",
                    "An internal error has occurred. Please retry or report in \
                     https://developers.generativeai.google/guide/troubleshooting"
                        .to_string(),
                ),
                503 => ("UNAVAILABLE", "The model is overloaded. Please try again later.".to_string()),
                504 => ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete.".to_string()),
                _ => ("UNKNOWN", "Unknown error.".to_string()),
            };
            let mut details = Vec::new();
            if status == 429 {
                details.push(json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": "10"}]}));
                details.push(json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}));
            }
            if let Some(delay) = retry_after {
                details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": google_duration(delay)}));
            }
            error(status, name, &message, details)
        }
        Reply::SafetyBlock => ok(envelope(json!({
            "candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
        }))),
        Reply::PromptBlocked => ok(envelope(json!({
            "promptFeedback": {
                "blockReason": "SAFETY",
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "HIGH", "blocked": true},
                    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"}
                ]
            },
            "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
        }))),
        Reply::TextOnly => ok(envelope(json!({
            "candidates": [{
                "content": {"role": "model", "parts": [{"text": "I can describe that scene, but I can't draw it."}]},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": 14, "totalTokenCount": prompt_tokens + 14}
        }))),
        Reply::Malformed => Response::builder()
            .status(StatusCode::OK)
            .content_type("application/json; charset=UTF-8")
            .body("{\n  \"candidates\": [\n    {\n      \"content\": {\n        \"parts\": [\n          {\n            \"inlineData\": {\"mimeType\": \"image/png\", \"data\": \"iVBORw0KGgo"),
        Reply::Oversized => Response::builder()
            .status(StatusCode::OK)
            .content_type("application/json; charset=UTF-8")
            .body(Body::from_async_read(OversizedBody::new(
                b"{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"",
                b"\"}]},\"finishReason\":\"STOP\",\"index\":0}]}",
            ))),
    }
}

/// Google's checks on the body, as far as the plugin's requests go.
fn check_body(body: &Value) -> Result<(), String> {
    let Some(parts) = body["contents"][0]["parts"].as_array().filter(|p| !p.is_empty()) else {
        return Err("* GenerateContentRequest.contents: contents is not specified\n".into());
    };
    for part in parts {
        if let Some(blob) = part.get("inlineData") {
            let mime = blob["mimeType"].as_str().unwrap_or("");
            let data = blob["data"].as_str().and_then(|d| B64.decode(d).ok());
            let decodes = data.is_some_and(|d| image::load_from_memory(&d).is_ok());
            if !mime.starts_with("image/") || !decodes {
                return Err("Unable to process input image. Please retry or report in \
                            https://developers.generativeai.google/guide/troubleshooting"
                    .into());
            }
        }
    }
    let config = &body["generationConfig"]["imageConfig"];
    if let Some(ratio) = config.get("aspectRatio")
        && !NATIVE_SIZES.iter().any(|(r, _, _)| ratio.as_str() == Some(r))
    {
        return Err(format!(
            "* GenerateContentRequest.generation_config.image_config.aspect_ratio: unsupported value {ratio}\n"
        ));
    }
    if let Some(size) = config.get("imageSize")
        && !matches!(size.as_str(), Some("1K" | "2K" | "4K"))
    {
        return Err(format!(
            "* GenerateContentRequest.generation_config.image_config.image_size: unsupported value {size}\n"
        ));
    }
    Ok(())
}

/// `{"error":{"code","message","status","details"}}` with `status`.
fn error(status: u16, name: &str, message: &str, details: Vec<Value>) -> Response {
    let mut error = json!({"code": status, "message": message, "status": name});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json; charset=UTF-8")
        .body(serde_json::to_string_pretty(&json!({"error": error})).unwrap())
}

fn ok(body: Value) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json; charset=UTF-8")
        .body(serde_json::to_string(&body).unwrap())
}

/// A protobuf `Duration` in JSON: "15s", "1.5s".
fn google_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 { format!("{}s", d.as_secs()) } else { format!("{}s", d.as_secs_f64()) }
}

/// A `width`×`height` PNG: a gradient whose blue channel comes from `seed`.
fn png_image(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let (width, height) = (width.max(1), height.max(1));
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, (seed % 251) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).expect("encode PNG");
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
