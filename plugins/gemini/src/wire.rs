//! Gemini's wire format: the `generateContent` request body, the answer, and the error body.
//!
//! Request and response shapes: <https://ai.google.dev/api/generate-content>; errors are
//! Google's `{"error":{"code","message","status","details":[…]}}` with `google.rpc.RetryInfo`
//! and `google.rpc.ErrorInfo` details (<https://ai.google.dev/gemini-api/docs/troubleshooting>).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use easel_plugin_sdk::http::{self, Response};
use easel_plugin_sdk::provider::RetryHint;
use easel_plugin_sdk::provider::{Image, PluginError};
use easel_plugin_sdk::text::clip;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Finish reasons (and prompt block reasons) that mean Gemini's safety or policy system
/// withheld the image: our `content_blocked`, not retried.
pub const BLOCKED_REASONS: &[&str] = &[
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "IMAGE_OTHER",
    "NO_IMAGE",
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
];

/// The caller's `provider_options`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    /// `imageConfig.imageSize` ("1K", "2K", "4K"), for models that take it.
    pub image_size: Option<String>,
    /// `generationConfig.temperature`.
    pub temperature: Option<f64>,
    /// `safetySettings`, passed through.
    pub safety_settings: Option<Value>,
}

impl Options {
    /// Parse and check the `provider_options` object; unknown keys are refused so that a typo
    /// does not pass silently.
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        let bad = |m: String| PluginError::InvalidInput(format!("provider_options: {m}"));
        let value: Value = serde_json::from_str(if json.trim().is_empty() { "{}" } else { json })
            .map_err(|e| bad(format!("not JSON: {e}")))?;
        let Value::Object(map) = value else { return Err(bad("must be a JSON object".into())) };
        let mut options = Options::default();
        for (key, value) in map {
            match key.as_str() {
                "image_size" => match value.as_str() {
                    Some(s @ ("1K" | "2K" | "4K")) => options.image_size = Some(s.to_string()),
                    _ => return Err(bad(format!("image_size must be \"1K\", \"2K\" or \"4K\", got {value}"))),
                },
                "temperature" => match value.as_f64() {
                    Some(t) if (0.0..=2.0).contains(&t) => options.temperature = Some(t),
                    _ => return Err(bad(format!("temperature must be a number in 0..=2, got {value}"))),
                },
                "safety_settings" => match &value {
                    Value::Array(items) if items.iter().all(Value::is_object) => options.safety_settings = Some(value),
                    _ => return Err(bad("safety_settings must be an array of {category, threshold} objects".into())),
                },
                other => {
                    return Err(bad(format!(
                        "unknown option {other:?} (accepted: image_size, temperature, safety_settings)"
                    )));
                }
            }
        }
        Ok(options)
    }
}

/// Everything one `generateContent` request carries.
pub struct Call<'a> {
    /// The text part.
    pub text: &'a str,
    /// The source image, PNG.
    pub image: Option<&'a [u8]>,
    /// The black-and-white mask, PNG (white = repaint).
    pub mask: Option<&'a [u8]>,
    /// `imageConfig.aspectRatio`.
    pub aspect_ratio: &'a str,
    /// `imageConfig.imageSize`, when the model takes it.
    pub image_size: Option<&'a str>,
    /// The seed, sent as `generationConfig.seed` (an int32: the same 32 bits, reinterpreted).
    pub seed: u32,
    /// The caller's options.
    pub options: &'a Options,
}

/// The text part: the prompt, with an explanation of the attached images when there is a mask,
/// and the negative prompt as an "Avoid: …" sentence (Gemini has no negative prompt).
pub fn prompt_text(prompt: &str, negative: Option<&str>, has_image: bool, has_mask: bool) -> String {
    let mut text = String::new();
    if has_image && has_mask {
        text.push_str(
            "Edit the first image. The second image is a mask of the same size: repaint only the areas that are \
             white in the mask and keep every black area exactly as it is in the first image. Return the whole \
             edited image, not the mask. Instruction: ",
        );
    }
    text.push_str(&easel_plugin_sdk::text::prompt_with_avoid(prompt.trim(), negative));
    text
}

/// The JSON body of one request.
pub fn request_body(call: &Call<'_>) -> Value {
    let mut parts = vec![json!({"text": call.text})];
    for png in [call.image, call.mask].into_iter().flatten() {
        parts.push(json!({"inlineData": {"mimeType": "image/png", "data": B64.encode(png)}}));
    }
    let mut image_config = Map::new();
    image_config.insert("aspectRatio".into(), json!(call.aspect_ratio));
    if let Some(size) = call.image_size {
        image_config.insert("imageSize".into(), json!(size));
    }
    let mut generation_config = Map::new();
    generation_config.insert("responseModalities".into(), json!(["TEXT", "IMAGE"]));
    generation_config.insert("imageConfig".into(), Value::Object(image_config));
    generation_config.insert("seed".into(), json!(call.seed as i32));
    if let Some(t) = call.options.temperature {
        generation_config.insert("temperature".into(), json!(t));
    }
    let mut body = Map::new();
    body.insert("contents".into(), json!([{"role": "user", "parts": parts}]));
    body.insert("generationConfig".into(), Value::Object(generation_config));
    if let Some(safety) = &call.options.safety_settings {
        body.insert("safetySettings".into(), safety.clone());
    }
    Value::Object(body)
}

/// Our mask (white, opaque = repaint) as an opaque black-and-white PNG, so the model sees the
/// same picture whether the caller drew the mask with colour or with alpha.
pub fn mask_png(mask: &Image) -> Result<Vec<u8>, String> {
    let pixels = mask
        .pixels
        .chunks_exact(4)
        .flat_map(|p| {
            let luma = (p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114) / 1000;
            let v = if luma >= 128 && p[3] >= 128 { 255 } else { 0 };
            [v, v, v, 255]
        })
        .collect();
    easel_plugin_sdk::image::encode_png(&Image { width: mask.width, height: mask.height, pixels })
}

/// An image from a successful answer, with what we keep of the rest.
#[derive(Debug)]
pub struct Generated {
    /// The image bytes (PNG or JPEG as Gemini sent them).
    pub image: Vec<u8>,
    /// `response_id`, `model_version`, `usage`, `finish_reason`, `text` (the model's text parts).
    pub metadata: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<Value>,
    model_version: Option<String>,
    response_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
    finish_message: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    inline_data: Option<Blob>,
    /// Gemini 3 models may send draft "thought" images before the final one.
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Blob {
    mime_type: String,
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
    block_reason_message: Option<String>,
}

/// Read a 2xx answer: the last non-thought image, or why there is none.
pub fn parse_success(body: &[u8]) -> Result<Generated, PluginError> {
    let answer: GenerateContentResponse =
        serde_json::from_slice(body).map_err(|e| PluginError::Http(format!("malformed response: {e}")))?;
    if let Some(reason) = answer.prompt_feedback.as_ref().and_then(|f| f.block_reason.as_deref()) {
        let detail = answer.prompt_feedback.as_ref().and_then(|f| f.block_reason_message.as_deref());
        return Err(PluginError::ContentBlocked(match detail {
            Some(d) => format!("Gemini blocked the prompt ({reason}): {d}"),
            None => format!("Gemini blocked the prompt ({reason})"),
        }));
    }
    let mut texts = Vec::new();
    let mut image = None;
    for part in answer.candidates.iter().filter_map(|c| c.content.as_ref()).flat_map(|c| &c.parts) {
        if part.thought {
            continue;
        }
        if let Some(text) = &part.text {
            texts.push(text.clone());
        }
        if let Some(blob) = part.inline_data.as_ref().filter(|b| b.mime_type.starts_with("image/")) {
            image = Some(blob);
        }
    }
    let finish_reason = answer.candidates.first().and_then(|c| c.finish_reason.clone());
    let Some(blob) = image else {
        let said = answer
            .candidates
            .first()
            .and_then(|c| c.finish_message.clone())
            .or_else(|| (!texts.is_empty()).then(|| texts.join(" ")));
        let reason = finish_reason.as_deref().unwrap_or("none");
        let message = match said {
            Some(s) => format!("Gemini returned no image (finishReason {reason}): {}", clip(&s, 500)),
            None => format!("Gemini returned no image (finishReason {reason})"),
        };
        return Err(if BLOCKED_REASONS.contains(&reason) {
            PluginError::ContentBlocked(message)
        } else {
            // A plain STOP with only text: the model chose to answer in words. Another
            // attempt usually draws, so let the host retry.
            PluginError::Http(message)
        });
    };
    let image = B64
        .decode(blob.data.trim())
        .map_err(|e| PluginError::Http(format!("malformed response: image data is not base64: {e}")))?;
    let mut metadata = Map::new();
    for (key, value) in [
        ("response_id", answer.response_id.map(Value::from)),
        ("model_version", answer.model_version.map(Value::from)),
        ("finish_reason", finish_reason.map(Value::from)),
        ("mime_type", Some(Value::from(blob.mime_type.clone()))),
        ("usage", answer.usage_metadata),
    ] {
        if let Some(value) = value {
            metadata.insert(key.into(), value);
        }
    }
    if !texts.is_empty() {
        metadata.insert("text".into(), json!(texts));
    }
    Ok(Generated { image, metadata: Value::Object(metadata) })
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

/// Turn a non-2xx answer into the error the host acts on:
///
/// | answer | error |
/// |---|---|
/// | 401, 403 (`PERMISSION_DENIED`), or 400 with `ErrorInfo.reason` `API_KEY_INVALID` | `unauthorized` |
/// | 429 (`RESOURCE_EXHAUSTED`), 408, 409, 5xx | `retryable`, after `RetryInfo.retryDelay` or `Retry-After` |
/// | 400, 404 and other 4xx | `invalid-input` with Google's message |
pub fn error_for(response: &Response) -> PluginError {
    let parsed = parse_error(&response.body);
    let message = match &parsed {
        Some(e) => format!(
            "{} {}: {}",
            response.status,
            e.status.as_deref().unwrap_or("ERROR"),
            clip(e.message.as_deref().unwrap_or("(no message)"), 1000)
        ),
        None => format!("{} {}", response.status, clip(response.text().trim(), 300)),
    };
    let details = parsed.as_ref().map(|e| e.details.as_slice()).unwrap_or_default();
    let key_invalid =
        details.iter().any(|d| d.get("reason").and_then(Value::as_str).is_some_and(|r| r.starts_with("API_KEY_")));
    if key_invalid || matches!(response.status, 401 | 403) {
        return PluginError::Unauthorized(message);
    }
    match response.status {
        408 | 409 | 425 | 429 | 500..=599 => {
            let retry_delay = details
                .iter()
                .filter(|d| d.get("@type").and_then(Value::as_str).is_some_and(|t| t.ends_with("google.rpc.RetryInfo")))
                .find_map(|d| d.get("retryDelay").and_then(Value::as_str).and_then(http::parse_duration_ms));
            PluginError::Retryable(RetryHint {
                message,
                retry_after_ms: retry_delay.or_else(|| response.retry_after_ms()),
            })
        }
        _ => PluginError::InvalidInput(message),
    }
}

/// Google's error object; also accepted wrapped in a one-element array, as some endpoints send.
fn parse_error(body: &[u8]) -> Option<ErrorDetail> {
    let value = match serde_json::from_slice::<Value>(body).ok()? {
        Value::Array(items) => items.into_iter().next()?,
        other => other,
    };
    // Only an object: serde would read a struct from a sequence too.
    value.is_object().then(|| serde_json::from_value::<ErrorBody>(value).ok()).flatten().map(|e| e.error)
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

    /// Width and RGBA pixels of a PNG.
    fn decode_png(png: &[u8]) -> (u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgba);
        pixels.truncate(info.buffer_size());
        (info.width, pixels)
    }

    #[test]
    fn prompt_text_adds_avoid_and_mask_explanation() {
        assert_eq!(prompt_text(" a cat ", None, false, false), "a cat");
        assert_eq!(prompt_text("a cat", Some("  "), false, false), "a cat");
        assert_eq!(prompt_text("a cat", Some("dogs"), true, false), "a cat\n\nAvoid: dogs");
        let masked = prompt_text("a red hat", Some("blur"), true, true);
        assert!(masked.starts_with("Edit the first image."));
        assert!(masked.contains("white in the mask"));
        assert!(masked.ends_with("Instruction: a red hat\n\nAvoid: blur"));
    }

    #[test]
    fn request_body_has_the_documented_shape() {
        let options = Options {
            temperature: Some(0.5),
            safety_settings: Some(json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}])),
            ..Options::default()
        };
        let body = request_body(&Call {
            text: "hello",
            image: Some(b"img"),
            mask: None,
            aspect_ratio: "3:2",
            image_size: Some("1K"),
            seed: 42,
            options: &options,
        });
        assert_eq!(
            body,
            json!({
                "contents": [{"role": "user", "parts": [
                    {"text": "hello"},
                    {"inlineData": {"mimeType": "image/png", "data": "aW1n"}}
                ]}],
                "generationConfig": {
                    "responseModalities": ["TEXT", "IMAGE"],
                    "imageConfig": {"aspectRatio": "3:2", "imageSize": "1K"},
                    "seed": 42,
                    "temperature": 0.5
                },
                "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
            })
        );
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(Options::parse("").unwrap(), Options::default());
        assert_eq!(Options::parse("{}").unwrap(), Options::default());
        assert_eq!(Options::parse(r#"{"image_size":"2K"}"#).unwrap().image_size.as_deref(), Some("2K"));
        for bad in [
            r#"{"image_size":"8K"}"#,
            r#"{"temperature":3}"#,
            r#"{"contents":[]}"#,
            "[]",
            "{",
            r#"{"safety_settings":{}}"#,
        ] {
            assert!(matches!(Options::parse(bad), Err(PluginError::InvalidInput(_))), "{bad}");
        }
    }

    #[test]
    fn mask_is_black_and_white_and_opaque() {
        let mask = Image {
            width: 4,
            height: 1,
            pixels: vec![255, 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 0, 200, 200, 200, 255],
        };
        let png = mask_png(&mask).unwrap();
        let (width, pixels) = decode_png(&png);
        assert_eq!(width, 4);
        // white → white; black → black; white but transparent → black (keep); light grey → white.
        assert_eq!(pixels, [255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255]);
        assert!(mask_png(&Image { width: 2, height: 2, pixels: vec![0; 3] }).is_err());
    }

    #[test]
    fn success_takes_the_last_final_image_and_keeps_metadata() {
        let body = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "thinking", "thought": true},
                {"inlineData": {"mimeType": "image/png", "data": B64.encode(b"draft")}, "thought": true},
                {"text": "Here is the lighthouse."},
                {"inlineData": {"mimeType": "image/png", "data": B64.encode(b"final")}}
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 1300},
            "modelVersion": "gemini-3.1-flash-image",
            "responseId": "abc"
        });
        let out = parse_success(body.to_string().as_bytes()).unwrap();
        assert_eq!(out.image, b"final");
        assert_eq!(
            out.metadata,
            json!({
                "response_id": "abc", "model_version": "gemini-3.1-flash-image", "finish_reason": "STOP",
                "mime_type": "image/png", "usage": {"promptTokenCount": 10, "totalTokenCount": 1300},
                "text": ["Here is the lighthouse."]
            })
        );
    }

    #[test]
    fn safety_finish_reasons_and_prompt_blocks_are_content_blocked() {
        for reason in [
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "NO_IMAGE",
            "IMAGE_RECITATION",
            "IMAGE_OTHER",
            "SAFETY",
            "PROHIBITED_CONTENT",
        ] {
            let body =
                json!({"candidates": [{"finishReason": reason, "index": 0}], "modelVersion": "m", "responseId": "r"});
            let err = parse_success(body.to_string().as_bytes()).unwrap_err();
            assert!(matches!(&err, PluginError::ContentBlocked(m) if m.contains(reason)), "{reason}: {err:?}");
        }
        let body = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8}});
        let err = parse_success(body.to_string().as_bytes()).unwrap_err();
        assert!(matches!(&err, PluginError::ContentBlocked(m) if m.contains("SAFETY")), "{err:?}");
    }

    #[test]
    fn text_only_answers_and_malformed_bodies_are_retryable_http_errors() {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "I can only describe it."}]}, "finishReason": "STOP"}]});
        let err = parse_success(body.to_string().as_bytes()).unwrap_err();
        assert!(matches!(&err, PluginError::Http(m) if m.contains("I can only describe it.")), "{err:?}");
        let err = parse_success(b"{\"candidates\": [{\"content\":").unwrap_err();
        assert!(matches!(&err, PluginError::Http(m) if m.starts_with("malformed response")), "{err:?}");
        let bad =
            json!({"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "%%%"}}]}}]});
        assert!(matches!(parse_success(bad.to_string().as_bytes()), Err(PluginError::Http(_))));
    }

    #[test]
    fn rate_limits_honour_retry_delay() {
        let body = r#"{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},
                       {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"15s"}]}}"#;
        match error_for(&response(429, &[], body)) {
            PluginError::Retryable(h) => {
                assert_eq!(h.retry_after_ms, Some(15_000));
                assert_eq!(h.message, "429 RESOURCE_EXHAUSTED: You exceeded your current quota.");
            }
            other => panic!("{other:?}"),
        }
        let body = r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#;
        match error_for(&response(503, &[("Retry-After", "7")], body)) {
            PluginError::Retryable(h) => assert_eq!(h.retry_after_ms, Some(7_000)),
            other => panic!("{other:?}"),
        }
        match error_for(&response(500, &[], "<html>oops</html>")) {
            PluginError::Retryable(h) => {
                assert_eq!((h.message.as_str(), h.retry_after_ms), ("500 <html>oops</html>", None))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auth_and_bad_requests() {
        let missing = r#"{"error":{"code":403,"message":"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.","status":"PERMISSION_DENIED"}}"#;
        assert!(
            matches!(error_for(&response(403, &[], missing)), PluginError::Unauthorized(m) if m.contains("PERMISSION_DENIED"))
        );
        let invalid = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        assert!(matches!(error_for(&response(400, &[], invalid)), PluginError::Unauthorized(_)));
        let bad = r#"[{"error":{"code":400,"message":"Unsupported aspect ratio.","status":"INVALID_ARGUMENT"}}]"#;
        let err = error_for(&response(400, &[], bad));
        assert!(
            matches!(&err, PluginError::InvalidInput(m) if m == "400 INVALID_ARGUMENT: Unsupported aspect ratio."),
            "{err:?}"
        );
        let gone =
            r#"{"error":{"code":404,"message":"models/x is not found for API version v1beta","status":"NOT_FOUND"}}"#;
        assert!(
            matches!(error_for(&response(404, &[], gone)), PluginError::InvalidInput(m) if m.contains("NOT_FOUND"))
        );
    }
}
