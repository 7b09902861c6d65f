//! `gemini`: Google's Gemini image models ("Nano Banana") through the Gemini API.
//!
//! One `POST {base_url}/v1beta/models/{model}:generateContent` per image, with the prompt as a
//! text part, the source image (and, for inpainting, a black-and-white mask) as `inlineData`
//! parts, and `generationConfig.imageConfig` carrying the aspect ratio (and the output size on
//! models that take one). The answer's `inlineData` image is returned as encoded bytes.
//!
//! - Image generation guide: <https://ai.google.dev/gemini-api/docs/image-generation>
//! - `generateContent` reference: <https://ai.google.dev/api/generate-content>
//! - Errors and their statuses: <https://ai.google.dev/gemini-api/docs/troubleshooting>
//!
//! **Settings** (`[plugins.gemini] config`): `base_url` (default
//! `https://generativelanguage.googleapis.com`), `models` (comma-separated ids replacing the
//! default catalogue `gemini-2.5-flash-image`, `gemini-3.1-flash-image`) and
//! `request_timeout_ms` (each HTTP call, default 60000).
//!
//! **Secret**: `GEMINI_API_KEY`, sent only in the `x-goog-api-key` header as
//! `{{secret:GEMINI_API_KEY}}`; the host substitutes it, so this plugin never sees the key.
//!
//! **Several images**: Gemini returns one image per request, so `n` (up to [`catalogue::MAX_N`])
//! makes `n` requests in turn, image *i* with seed `seed + i`. A failure part-way fails the whole
//! call (the host retries it as a whole); the images already drawn are lost, which is why `n` is
//! capped at 4 rather than left open.

#![warn(missing_docs)]

pub mod catalogue;
pub mod wire;

use easel_plugin_sdk::http::{self, HttpError, Request, Response};
use easel_plugin_sdk::provider::*;
use serde_json::{Map, Value, json};

/// The official API origin, used when the operator sets no `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// Time limit of one HTTP call when the operator sets no `request_timeout_ms`.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u32 = 60_000;
/// The header value that makes the host insert the operator's (or caller's) key.
pub const KEY_HEADER_VALUE: &str = "{{secret:GEMINI_API_KEY}}";

/// The operator's settings for this plugin, with defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// API origin without a trailing slash.
    pub base_url: String,
    /// Model ids to offer.
    pub models: Vec<String>,
    /// Time limit of each HTTP call, in milliseconds.
    pub request_timeout_ms: u32,
}

impl Settings {
    /// Read the settings through `get` (the host's `config` in the plugin, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let base_url = get("base_url")
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let models = get("models")
            .map(|list| list.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect::<Vec<_>>())
            .filter(|list| !list.is_empty())
            .unwrap_or_else(|| catalogue::DEFAULT_MODELS.iter().map(|m| m.to_string()).collect());
        let request_timeout_ms = get("request_timeout_ms")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|&ms| ms > 0)
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
        Self { base_url, models, request_timeout_ms }
    }

    /// Read the settings from the host.
    pub fn from_host() -> Self {
        Self::from_lookup(easel_plugin_sdk::host::config)
    }
}

/// What `generate` needs from the outside world: HTTP and progress reports. The plugin uses
/// the host ([`HostIo`]); unit tests use a script.
pub trait Io {
    /// Perform one HTTP request.
    fn fetch(&mut self, request: &Request) -> Result<Response, HttpError>;
    /// Report progress of the call.
    fn progress(&mut self, fraction: f32, stage: &str);
}

/// [`Io`] through the host's imports.
pub struct HostIo;

impl Io for HostIo {
    fn fetch(&mut self, request: &Request) -> Result<Response, HttpError> {
        http::fetch(request)
    }
    fn progress(&mut self, fraction: f32, stage: &str) {
        easel_plugin_sdk::host::progress(fraction, stage);
    }
}

/// The `gemini` provider.
pub struct Gemini;

impl Provider for Gemini {
    fn describe() -> ProviderInfo {
        ProviderInfo { models: Settings::from_host().models.iter().map(|id| catalogue::model(id)).collect() }
    }

    fn generate(request: GenerateRequest) -> Result<GenerateResponse, PluginError> {
        generate_with(&request, &Settings::from_host(), &mut HostIo)
    }
}

/// Draw `request.n` images, one `generateContent` call each.
pub fn generate_with(
    request: &GenerateRequest,
    settings: &Settings,
    io: &mut impl Io,
) -> Result<GenerateResponse, PluginError> {
    let options = wire::Options::parse(&request.options_json)?;
    if !(1..=catalogue::MAX_N).contains(&request.n) {
        return Err(PluginError::InvalidInput(format!("n must be 1..={}, got {}", catalogue::MAX_N, request.n)));
    }
    let aspect_ratio = catalogue::aspect_ratio_for(request.width, request.height);
    let image_size =
        catalogue::image_size_for(&request.model, request.quality.as_deref(), options.image_size.as_deref());
    let image = match &request.input_image {
        Some(image) => Some(easel_plugin_sdk::image::encode_png(image).map_err(PluginError::InvalidInput)?),
        None => None,
    };
    let mask = match (&request.mask, &request.input_image) {
        (Some(_), None) => return Err(PluginError::InvalidInput("a mask needs an input_image to apply to".into())),
        (Some(mask), Some(_)) => Some(wire::mask_png(mask).map_err(PluginError::InvalidInput)?),
        (None, _) => None,
    };
    let text = wire::prompt_text(&request.prompt, request.negative_prompt.as_deref(), image.is_some(), mask.is_some());
    let url = format!("{}/v1beta/models/{}:generateContent", settings.base_url, request.model);

    let mut images = Vec::with_capacity(request.n as usize);
    let mut calls = Vec::with_capacity(request.n as usize);
    for i in 0..request.n {
        let seed = request.seed.wrapping_add(i);
        let stage =
            if request.n == 1 { "generating".to_string() } else { format!("generating {}/{}", i + 1, request.n) };
        io.progress(i as f32 / request.n as f32, &stage);
        let body = wire::request_body(&wire::Call {
            text: &text,
            image: image.as_deref(),
            mask: mask.as_deref(),
            aspect_ratio,
            image_size,
            seed,
            options: &options,
        });
        let http_request = Request {
            method: "POST".into(),
            url: url.clone(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-goog-api-key".into(), KEY_HEADER_VALUE.into()),
            ],
            body: Some(body.to_string().into_bytes()),
            timeout_ms: Some(settings.request_timeout_ms),
        };
        let response = io.fetch(&http_request).map_err(http::fetch_error)?;
        if !response.is_success() {
            return Err(wire::error_for(&response));
        }
        let generated = wire::parse_success(&response.body)?;
        images.push(GeneratedImage { data: ImageData::Encoded(generated.image), seed });
        calls.push(generated.metadata);
    }
    io.progress(1.0, "done");

    let mut metadata = Map::new();
    metadata.insert("aspect_ratio".into(), json!(aspect_ratio));
    if let Some(size) = image_size {
        metadata.insert("image_size".into(), json!(size));
    }
    if let Some(version) = calls.iter().find_map(|c| c.get("model_version").cloned()) {
        metadata.insert("model_version".into(), version);
    }
    metadata.insert("calls".into(), Value::Array(calls));
    Ok(GenerateResponse { images, metadata_json: Value::Object(metadata).to_string() })
}

// Exported only in the wasm build (native builds exist for unit tests).
#[cfg(target_arch = "wasm32")]
easel_plugin_sdk::register_provider!(Gemini);

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use std::collections::VecDeque;

    /// Replays canned responses and records the requests.
    struct Script {
        replies: VecDeque<Result<Response, HttpError>>,
        sent: Vec<Request>,
        progress: Vec<(f32, String)>,
    }

    impl Script {
        fn new(replies: Vec<Result<Response, HttpError>>) -> Self {
            Self { replies: replies.into(), sent: Vec::new(), progress: Vec::new() }
        }
        fn body(&self, i: usize) -> Value {
            serde_json::from_slice(self.sent[i].body.as_deref().unwrap()).unwrap()
        }
    }

    impl Io for Script {
        fn fetch(&mut self, request: &Request) -> Result<Response, HttpError> {
            self.sent.push(request.clone());
            self.replies.pop_front().expect("an unexpected request")
        }
        fn progress(&mut self, fraction: f32, stage: &str) {
            self.progress.push((fraction, stage.to_string()));
        }
    }

    fn response(status: u16, body: &str) -> Result<Response, HttpError> {
        Ok(Response { status, headers: vec![("content-type".into(), "application/json".into())], body: body.into() })
    }

    fn success(image: &[u8], id: &str) -> Result<Response, HttpError> {
        let body = json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "Here you go."},
                    {"inlineData": {"mimeType": "image/png", "data": B64.encode(image)}}
                ]},
                "finishReason": "STOP", "index": 0
            }],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302},
            "modelVersion": "gemini-2.5-flash-image",
            "responseId": id
        });
        response(200, &body.to_string())
    }

    fn settings() -> Settings {
        Settings::from_lookup(|k| (k == "base_url").then(|| "http://127.0.0.1:9/".to_string()))
    }

    fn request(n: u32) -> GenerateRequest {
        GenerateRequest {
            model: "gemini-2.5-flash-image".into(),
            prompt: "a lighthouse at dusk".into(),
            negative_prompt: Some("people, text".into()),
            width: 1344,
            height: 768,
            n,
            seed: u32::MAX,
            steps: None,
            guidance_scale: None,
            quality: None,
            style_hint: None,
            input_image: None,
            mask: None,
            strength: None,
            loras: Vec::new(),
            options_json: "{}".into(),
        }
    }

    #[test]
    fn settings_defaults_and_overrides() {
        let d = Settings::from_lookup(|_| None);
        assert_eq!(d.base_url, DEFAULT_BASE_URL);
        assert_eq!(d.models, ["gemini-2.5-flash-image", "gemini-3.1-flash-image"]);
        assert_eq!(d.request_timeout_ms, 60_000);
        let s = Settings::from_lookup(|k| match k {
            "base_url" => Some("http://127.0.0.1:8080//".into()),
            "models" => Some(" gemini-x , ,gemini-y".into()),
            "request_timeout_ms" => Some("2500".into()),
            _ => None,
        });
        assert_eq!(s.base_url, "http://127.0.0.1:8080");
        assert_eq!(s.models, ["gemini-x", "gemini-y"]);
        assert_eq!(s.request_timeout_ms, 2500);
        let bad = Settings::from_lookup(|k| (k == "request_timeout_ms").then(|| "soon".to_string()));
        assert_eq!(bad.request_timeout_ms, 60_000);
    }

    #[test]
    fn n_images_make_n_calls_with_consecutive_seeds() {
        let mut io = Script::new(vec![success(b"png-1", "r1"), success(b"png-2", "r2")]);
        let out = generate_with(&request(2), &settings(), &mut io).expect("generate");
        assert_eq!(io.sent.len(), 2);
        let first = &io.sent[0];
        assert_eq!(first.method, "POST");
        assert_eq!(first.url, "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash-image:generateContent");
        assert!(first.headers.contains(&("x-goog-api-key".into(), "{{secret:GEMINI_API_KEY}}".into())));
        assert_eq!(first.timeout_ms, Some(60_000));
        let body = io.body(0);
        assert_eq!(body["contents"][0]["parts"][0]["text"], "a lighthouse at dusk\n\nAvoid: people, text");
        assert_eq!(body["generationConfig"]["imageConfig"], json!({"aspectRatio": "16:9"}));
        assert_eq!(body["generationConfig"]["responseModalities"], json!(["TEXT", "IMAGE"]));
        assert_eq!(body["generationConfig"]["seed"], json!(-1), "u32::MAX is sent as the int32 -1");
        assert_eq!(io.body(1)["generationConfig"]["seed"], json!(0));

        let seeds: Vec<u32> = out.images.iter().map(|i| i.seed).collect();
        assert_eq!(seeds, [u32::MAX, 0]);
        let bytes: Vec<&[u8]> = out
            .images
            .iter()
            .map(|i| match &i.data {
                ImageData::Encoded(b) => b.as_slice(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(bytes, [b"png-1".as_slice(), b"png-2".as_slice()]);
        let meta: Value = serde_json::from_str(&out.metadata_json).unwrap();
        assert_eq!(meta["model_version"], "gemini-2.5-flash-image");
        assert_eq!(meta["aspect_ratio"], "16:9");
        assert_eq!(meta["calls"][1]["response_id"], "r2");
        assert_eq!(meta["calls"][0]["usage"]["totalTokenCount"], 1302);
        assert_eq!(meta["calls"][0]["text"], json!(["Here you go."]));
        assert_eq!(io.progress.first().unwrap().1, "generating 1/2");
        assert_eq!(io.progress.last().unwrap(), &(1.0, "done".to_string()));
    }

    #[test]
    fn a_failure_part_way_fails_the_call() {
        let mut io = Script::new(vec![
            success(b"png-1", "r1"),
            response(503, r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#),
        ]);
        let err = generate_with(&request(2), &settings(), &mut io).unwrap_err();
        assert!(matches!(&err, PluginError::Retryable(h) if h.message.contains("UNAVAILABLE")), "{err:?}");
    }

    #[test]
    fn transport_failures_become_host_errors() {
        let mut io = Script::new(vec![Err(HttpError::Timeout("no answer".into()))]);
        assert!(matches!(generate_with(&request(1), &settings(), &mut io), Err(PluginError::Timeout(_))));
        let mut io = Script::new(vec![Err(HttpError::Denied("host not allowed".into()))]);
        assert!(matches!(generate_with(&request(1), &settings(), &mut io), Err(PluginError::Denied(_))));
    }

    #[test]
    fn inpainting_sends_image_and_mask_and_explains_the_mask() {
        let mut req = request(1);
        req.negative_prompt = None;
        req.input_image = Some(Rgba::filled(4, 2, [10, 20, 30, 255]).into_image());
        let mut mask = Rgba::filled(4, 2, [0, 0, 0, 255]);
        mask.put(1, 0, [255, 255, 255, 255]);
        req.mask = Some(mask.into_image());
        let mut io = Script::new(vec![success(b"png", "r")]);
        generate_with(&req, &settings(), &mut io).expect("generate");
        let body = io.body(0);
        let parts = body["contents"][0]["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 3);
        let text = parts[0]["text"].as_str().unwrap();
        assert!(
            text.contains("white") && text.contains("second image") && text.ends_with("a lighthouse at dusk"),
            "{text}"
        );
        for part in &parts[1..] {
            assert_eq!(part["inlineData"]["mimeType"], "image/png");
            let png = B64.decode(part["inlineData"]["data"].as_str().unwrap()).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        }
    }

    #[test]
    fn a_mask_without_an_image_is_refused() {
        let mut req = request(1);
        req.mask = Some(Rgba::filled(2, 2, [255, 255, 255, 255]).into_image());
        let mut io = Script::new(vec![]);
        assert!(matches!(generate_with(&req, &settings(), &mut io), Err(PluginError::InvalidInput(_))));
    }

    #[test]
    fn quality_high_asks_gemini_3_for_2k_and_options_can_choose() {
        let mut req = request(1);
        req.model = "gemini-3.1-flash-image".into();
        req.quality = Some("high".into());
        let mut io = Script::new(vec![success(b"png", "r")]);
        let out = generate_with(&req, &settings(), &mut io).unwrap();
        assert_eq!(io.body(0)["generationConfig"]["imageConfig"], json!({"aspectRatio": "16:9", "imageSize": "2K"}));
        assert_eq!(serde_json::from_str::<Value>(&out.metadata_json).unwrap()["image_size"], "2K");

        req.options_json = r#"{"image_size":"4K","temperature":0.4}"#.into();
        let mut io = Script::new(vec![success(b"png", "r")]);
        generate_with(&req, &settings(), &mut io).unwrap();
        assert_eq!(io.body(0)["generationConfig"]["imageConfig"]["imageSize"], "4K");
        assert_eq!(io.body(0)["generationConfig"]["temperature"], 0.4);

        req.options_json = r#"{"model":"other"}"#.into();
        let mut io = Script::new(vec![]);
        assert!(matches!(generate_with(&req, &settings(), &mut io), Err(PluginError::InvalidInput(_))));
    }
}
