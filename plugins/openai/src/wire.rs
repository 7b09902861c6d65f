//! OpenAI's Images wire format: the generations body, the edits form, the answer and the
//! error body.
//!
//! - Create image: <https://platform.openai.com/docs/api-reference/images/create>
//! - Create image edit: <https://platform.openai.com/docs/api-reference/images/createEdit>
//! - Errors: <https://platform.openai.com/docs/guides/error-codes>

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use easel_plugin_sdk::http::Response;
use easel_plugin_sdk::provider::RetryHint;
use easel_plugin_sdk::provider::{Image, ImageData, PluginError};
use easel_plugin_sdk::text::clip;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::catalogue::Family;
use crate::multipart::Form;

/// Fields this plugin sets itself; `provider_options` cannot replace them.
pub const RESERVED: &[&str] =
    &["model", "prompt", "n", "size", "response_format", "image", "image[]", "mask", "stream"];

/// The caller's `provider_options` that go upstream, checked against what the model takes.
pub fn options(json: &str, family: Family, edit: bool) -> Result<Map<String, Value>, PluginError> {
    let bad = |m: String| PluginError::InvalidInput(format!("provider_options: {m}"));
    let value: Value = serde_json::from_str(if json.trim().is_empty() { "{}" } else { json })
        .map_err(|e| bad(format!("not JSON: {e}")))?;
    let Value::Object(map) = value else { return Err(bad("must be a JSON object".into())) };
    let allowed = if edit { Some(family.edit_options()) } else { family.generation_options() };
    for key in map.keys() {
        if RESERVED.contains(&key.as_str()) {
            return Err(bad(format!("{key:?} is set by Easel and cannot be overridden")));
        }
        if let Some(allowed) = allowed
            && !allowed.contains(&key.as_str())
        {
            let list = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
            return Err(bad(format!("unknown option {key:?} for this model (accepted: {list})")));
        }
    }
    if let Some(format) = map.get("output_format")
        && !matches!(format.as_str(), Some("png" | "jpeg" | "webp"))
    {
        return Err(bad(format!("output_format must be \"png\", \"jpeg\" or \"webp\", got {format}")));
    }
    Ok(map)
}

/// What one call asks for, in upstream terms.
pub struct Call<'a> {
    /// Model id.
    pub model: &'a str,
    /// The model's family.
    pub family: Family,
    /// The prompt, with the negative prompt folded in.
    pub prompt: &'a str,
    /// Number of images.
    pub n: u32,
    /// `"{width}x{height}"`.
    pub size: String,
    /// Upstream quality, when we send one.
    pub quality: Option<&'static str>,
    /// `response_format` for dall-e and generic models ("b64_json" or "url").
    pub response_format: &'a str,
    /// Checked `provider_options`.
    pub options: Map<String, Value>,
}

/// The prompt with the negative prompt as an "Avoid: …" sentence (OpenAI has no negative prompt).
pub fn prompt_text(prompt: &str, negative: Option<&str>) -> String {
    easel_plugin_sdk::text::prompt_with_avoid(prompt.trim(), negative)
}

/// The fields both endpoints share (sorted by name); options are applied last, so they may
/// replace our `quality`, as the options schema documents, but nothing in [`RESERVED`].
fn fields(call: &Call<'_>) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("model".into(), json!(call.model));
    body.insert("prompt".into(), json!(call.prompt));
    body.insert("n".into(), json!(call.n));
    body.insert("size".into(), json!(call.size));
    if let Some(quality) = call.quality {
        body.insert("quality".into(), json!(quality));
    }
    match call.family {
        // GPT Image models always answer in base64 and refuse `response_format`.
        Family::GptImage => {
            body.insert("output_format".into(), json!("png"));
        }
        Family::DallE3 | Family::DallE2 | Family::Generic => {
            body.insert("response_format".into(), json!(call.response_format));
        }
    }
    for (key, value) in &call.options {
        body.insert(key.clone(), value.clone());
    }
    body
}

/// The JSON body of `POST /v1/images/generations`.
pub fn generation_body(call: &Call<'_>) -> Value {
    Value::Object(fields(call))
}

/// The form of `POST /v1/images/edits`: the shared fields as text, then `image` and `mask`.
pub fn edit_form(call: &Call<'_>, image_png: Vec<u8>, mask_png: Option<Vec<u8>>) -> Form {
    let mut form = Form::new();
    for (key, value) in fields(call) {
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        form = form.text(&key, text);
    }
    form = form.file("image", "image.png", "image/png", image_png);
    if let Some(mask) = mask_png {
        form = form.file("mask", "mask.png", "image/png", mask);
    }
    form
}

/// Our mask (white, opaque = repaint) in OpenAI's convention (transparent = edit): alpha 0
/// where ours is bright and opaque, 255 elsewhere.
pub fn mask_png(mask: &Image) -> Result<Vec<u8>, String> {
    let pixels = mask
        .pixels
        .chunks_exact(4)
        .flat_map(|p| {
            let luma = (p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114) / 1000;
            if luma >= 128 && p[3] >= 128 { [0, 0, 0, 0] } else { [0, 0, 0, 255] }
        })
        .collect();
    easel_plugin_sdk::image::encode_png(&Image { width: mask.width, height: mask.height, pixels })
}

#[derive(Deserialize)]
struct ImagesResponse {
    created: Option<i64>,
    #[serde(default)]
    data: Vec<ImageItem>,
    usage: Option<Value>,
    background: Option<String>,
    output_format: Option<String>,
    quality: Option<String>,
    size: Option<String>,
}

#[derive(Deserialize)]
struct ImageItem {
    b64_json: Option<String>,
    url: Option<String>,
    revised_prompt: Option<String>,
}

/// The images of a 2xx answer (exactly `n`) and its metadata.
pub fn parse_success(body: &[u8], n: u32) -> Result<(Vec<ImageData>, Map<String, Value>), PluginError> {
    let answer: ImagesResponse =
        serde_json::from_slice(body).map_err(|e| PluginError::Http(format!("malformed response: {e}")))?;
    if answer.data.len() < n as usize {
        return Err(PluginError::Http(format!("OpenAI returned {} images for n = {n}", answer.data.len())));
    }
    let mut images = Vec::with_capacity(n as usize);
    let mut revised = Vec::new();
    for item in answer.data.iter().take(n as usize) {
        images.push(match (&item.b64_json, &item.url) {
            (Some(b64), _) => ImageData::Encoded(
                B64.decode(b64.trim())
                    .map_err(|e| PluginError::Http(format!("malformed response: b64_json is not base64: {e}")))?,
            ),
            (None, Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {
                ImageData::Url(url.clone())
            }
            _ => {
                return Err(PluginError::Http(
                    "malformed response: an image with neither b64_json nor an http(s) url".into(),
                ));
            }
        });
        revised.push(item.revised_prompt.clone());
    }
    let mut metadata = Map::new();
    for (key, value) in [
        ("created", answer.created.map(Value::from)),
        ("usage", answer.usage),
        ("background", answer.background.map(Value::from)),
        ("output_format", answer.output_format.map(Value::from)),
        ("quality", answer.quality.map(Value::from)),
        ("size", answer.size.map(Value::from)),
    ] {
        if let Some(value) = value {
            metadata.insert(key.into(), value);
        }
    }
    if revised.iter().any(Option::is_some) {
        metadata.insert("revised_prompts".into(), json!(revised));
    }
    Ok((images, metadata))
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    param: Option<String>,
    /// A string at OpenAI, an integer at LocalAI, often null.
    code: Option<Value>,
}

/// Codes and types that mean OpenAI's safety system refused the request.
const BLOCKED: &[&str] = &["moderation_blocked", "content_policy_violation", "content_filter"];

/// Turn a non-2xx answer into the error the host acts on:
///
/// | answer | error |
/// |---|---|
/// | 400 with code `moderation_blocked` / `content_policy_violation` (or a "safety system" message) | `content-blocked` |
/// | 401, 403 | `unauthorized` (401's message is not repeated: OpenAI quotes part of the key in it) |
/// | 408, 409, 429, 5xx | `retryable`, after `retry-after-ms` or `retry-after` |
/// | other 4xx | `invalid-input`, naming `param` |
pub fn error_for(response: &Response) -> PluginError {
    let parsed = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .filter(|v| v.get("error").is_some_and(Value::is_object))
        .and_then(|v| serde_json::from_value::<ErrorBody>(v).ok())
        .map(|b| b.error);
    let status = response.status;
    let Some(error) = parsed else {
        let text = redact(&clip(response.text().trim(), 300));
        return easel_plugin_sdk::http::status_error(response, if text.is_empty() { "(no body)".into() } else { text });
    };
    let code = match &error.code {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let kind = error.kind.clone().filter(|k| !k.is_empty());
    let message = redact(&clip(error.message.as_deref().unwrap_or("(no message)"), 1000));
    // LocalAI's integer codes repeat the status; only a string code says something.
    let named_code = matches!(error.code, Some(Value::String(_))).then_some(code.as_deref()).flatten();
    let label = [named_code, kind.as_deref()].into_iter().flatten().next().unwrap_or("error").to_string();
    let blocked = [code.as_deref(), kind.as_deref()].into_iter().flatten().any(|c| BLOCKED.contains(&c))
        || (status == 400 && message.contains("safety system"));
    if blocked && (400..500).contains(&status) {
        return PluginError::ContentBlocked(format!("{status} {label}: {message}"));
    }
    match status {
        401 => PluginError::Unauthorized(format!(
            "401 {label}: the server refused the API key (set OPENAI_API_KEY or send X-Provider-Key)"
        )),
        403 => PluginError::Unauthorized(format!("403 {label}: {message}")),
        // Out of credit or over the monthly budget: waiting will not help, so ask for an hour,
        // which the host reads as "exhausted" and hands the job to its fallback at once.
        429 if named_code == Some("insufficient_quota") => PluginError::Retryable(RetryHint {
            message: format!("429 {label}: {message}"),
            retry_after_ms: Some(3_600_000),
        }),
        408 | 409 | 425 | 429 | 500..=599 => PluginError::Retryable(RetryHint {
            message: format!("{status} {label}: {message}"),
            retry_after_ms: response.retry_after_ms(),
        }),
        _ => PluginError::InvalidInput(match error.param.as_deref().filter(|p| !p.is_empty()) {
            Some(param) => format!("{status} {label} (param {param}): {message}"),
            None => format!("{status} {label}: {message}"),
        }),
    }
}

/// Hide anything that looks like an OpenAI key (`sk-…`), should a message quote one.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("sk-") {
        out.push_str(&rest[..at]);
        out.push_str("sk-…");
        let tail = &rest[at + 3..];
        let end =
            tail.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*'))).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn call(family: Family, options: Map<String, Value>) -> Call<'static> {
        Call {
            model: "gpt-image-1",
            family,
            prompt: "a fox",
            n: 2,
            size: "1536x1024".into(),
            quality: family.quality(Some("high")),
            response_format: "b64_json",
            options,
        }
    }

    #[test]
    fn generation_bodies_per_family() {
        assert_eq!(
            generation_body(&call(Family::GptImage, Map::new())),
            json!({"model": "gpt-image-1", "prompt": "a fox", "n": 2, "size": "1536x1024", "quality": "high", "output_format": "png"})
        );
        let mut dalle = call(Family::DallE3, options(r#"{"style":"natural"}"#, Family::DallE3, false).unwrap());
        dalle.model = "dall-e-3";
        dalle.n = 1;
        assert_eq!(
            generation_body(&dalle),
            json!({"model": "dall-e-3", "prompt": "a fox", "n": 1, "size": "1536x1024", "quality": "hd",
                   "response_format": "b64_json", "style": "natural"})
        );
        let opts = options(r#"{"quality":"medium","background":"transparent"}"#, Family::GptImage, false).unwrap();
        let body = generation_body(&call(Family::GptImage, opts));
        assert_eq!((body["quality"].as_str(), body["background"].as_str()), (Some("medium"), Some("transparent")));
    }

    #[test]
    fn options_are_checked_per_family() {
        assert!(options("", Family::GptImage, false).unwrap().is_empty());
        for (json, family, edit) in [
            (r#"{"model":"dall-e-2"}"#, Family::Generic, false),
            (r#"{"size":"256x256"}"#, Family::GptImage, false),
            (r#"{"style":"vivid"}"#, Family::GptImage, false),
            (r#"{"moderation":"low"}"#, Family::GptImage, true),
            (r#"{"output_format":"gif"}"#, Family::GptImage, false),
            (r#"{"user":"u"}"#, Family::DallE3, true),
            ("[1]", Family::GptImage, false),
            ("{", Family::GptImage, false),
        ] {
            assert!(matches!(options(json, family, edit), Err(PluginError::InvalidInput(_))), "{json}");
        }
        let generic = options(r#"{"step":25,"negative_prompt":"x"}"#, Family::Generic, false).unwrap();
        assert_eq!(generic.len(), 2, "generic servers get any option");
        assert!(options(r#"{"input_fidelity":"high"}"#, Family::GptImage, true).is_ok());
    }

    #[test]
    fn edit_form_carries_fields_and_files() {
        let form = edit_form(&call(Family::GptImage, Map::new()), b"img".to_vec(), Some(b"msk".to_vec()));
        assert_eq!(form.names(), ["model", "n", "output_format", "prompt", "quality", "size", "image", "mask"]);
        let (content_type, body) = form.encode();
        assert!(content_type.starts_with("multipart/form-data; boundary="));
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains("name=\"n\"\r\n\r\n2\r\n"));
        assert!(body.contains("name=\"image\"; filename=\"image.png\"\r\nContent-Type: image/png\r\n\r\nimg\r\n"));
        assert!(body.contains("name=\"mask\"; filename=\"mask.png\"\r\nContent-Type: image/png\r\n\r\nmsk\r\n"));
    }

    #[test]
    fn mask_is_inverted_into_alpha() {
        // white opaque → transparent (edit); black → opaque (keep); white but transparent → keep.
        let mask = Image { width: 3, height: 1, pixels: vec![255, 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 0] };
        let png = mask_png(&mask).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height, info.color_type), (3, 1, png::ColorType::Rgba));
        assert_eq!(&pixels[..info.buffer_size()], [0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 255]);
    }

    #[test]
    fn success_with_base64_and_urls() {
        let body = json!({
            "created": 1713833628,
            "data": [{"b64_json": B64.encode(b"one"), "revised_prompt": "A fox, detailed"}, {"url": "https://x.blob.core.windows.net/a.png"}],
            "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210},
            "size": "1024x1024", "quality": "high", "output_format": "png", "background": "opaque"
        });
        let (images, meta) = parse_success(body.to_string().as_bytes(), 2).unwrap();
        assert!(matches!(&images[0], ImageData::Encoded(b) if b == b"one"));
        assert!(matches!(&images[1], ImageData::Url(u) if u == "https://x.blob.core.windows.net/a.png"));
        assert_eq!(
            Value::Object(meta),
            json!({"created": 1713833628, "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210},
                   "background": "opaque", "output_format": "png", "quality": "high", "size": "1024x1024",
                   "revised_prompts": ["A fox, detailed", null]})
        );
    }

    #[test]
    fn too_few_images_or_broken_bodies_are_http_errors() {
        let body = json!({"created": 1, "data": [{"b64_json": "b25l"}]});
        assert!(
            matches!(parse_success(body.to_string().as_bytes(), 2), Err(PluginError::Http(m)) if m.contains("1 images for n = 2"))
        );
        assert!(
            matches!(parse_success(b"{\"data\": [", 1), Err(PluginError::Http(m)) if m.starts_with("malformed response"))
        );
        let body = json!({"data": [{"url": "file:///etc/passwd"}]});
        assert!(matches!(parse_success(body.to_string().as_bytes(), 1), Err(PluginError::Http(_))));
    }

    #[test]
    fn safety_refusals_are_content_blocked() {
        let moderation = r#"{"error":{"message":"Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID req_1.","type":"image_generation_user_error","param":null,"code":"moderation_blocked"}}"#;
        assert!(
            matches!(error_for(&response(400, &[], moderation)), PluginError::ContentBlocked(m) if m.starts_with("400 moderation_blocked"))
        );
        let policy = r#"{"error":{"code":"content_policy_violation","message":"Your request was rejected as a result of our safety system.","param":null,"type":"invalid_request_error"}}"#;
        assert!(matches!(error_for(&response(400, &[], policy)), PluginError::ContentBlocked(_)));
    }

    #[test]
    fn auth_errors_never_repeat_the_key() {
        let wrong = r#"{"error":{"message":"Incorrect API key provided: sk-abc***wxyz. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        match error_for(&response(401, &[], wrong)) {
            PluginError::Unauthorized(m) => {
                assert!(m.starts_with("401 invalid_api_key") && !m.contains("sk-") && !m.contains("wxyz"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        let region = r#"{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}"#;
        assert!(
            matches!(error_for(&response(403, &[], region)), PluginError::Unauthorized(m) if m.contains("not supported"))
        );
        assert_eq!(redact("key sk-proj-AB_c*** and sk-x."), "key sk-… and sk-….");
    }

    #[test]
    fn retryable_statuses_honour_retry_hints() {
        let limit = r#"{"error":{"message":"Rate limit reached for images per minute.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        match error_for(&response(429, &[("retry-after-ms", "1500"), ("retry-after", "2")], limit)) {
            PluginError::Retryable(h) => {
                assert_eq!(h.retry_after_ms, Some(1500));
                assert_eq!(h.message, "429 rate_limit_exceeded: Rate limit reached for images per minute.");
            }
            other => panic!("{other:?}"),
        }
        let server = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;
        assert!(
            matches!(error_for(&response(500, &[("retry-after", "3")], server)), PluginError::Retryable(h) if h.retry_after_ms == Some(3000) && h.message.starts_with("500 server_error"))
        );
        // LocalAI: integer code, empty type.
        let local = r#"{"error":{"code":500,"message":"could not load model","type":""}}"#;
        assert!(
            matches!(error_for(&response(500, &[], local)), PluginError::Retryable(h) if h.message == "500 error: could not load model")
        );
        assert!(matches!(error_for(&response(502, &[], "<html>Bad gateway</html>")), PluginError::Retryable(_)));
        assert!(matches!(error_for(&response(409, &[], "{}")), PluginError::Retryable(_)));
        let quota = r#"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert!(
            matches!(error_for(&response(429, &[], quota)), PluginError::Retryable(h) if h.retry_after_ms == Some(3_600_000)),
            "an exhausted quota goes straight to the fallback"
        );
    }

    #[test]
    fn other_client_errors_name_the_param() {
        let size = r#"{"error":{"message":"Invalid value: '512x512'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.","type":"invalid_request_error","param":"size","code":"invalid_value"}}"#;
        match error_for(&response(400, &[], size)) {
            PluginError::InvalidInput(m) => {
                assert!(m.starts_with("400 invalid_value (param size): Invalid value"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        let missing = r#"{"error":{"message":"The model `gpt-image-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
        assert!(
            matches!(error_for(&response(404, &[], missing)), PluginError::InvalidInput(m) if m.contains("model_not_found"))
        );
    }
}
