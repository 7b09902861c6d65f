//! `openai`: OpenAI's Images API (GPT Image, DALL·E) and OpenAI-compatible servers such as
//! LocalAI.
//!
//! Text-to-image is one `POST {base_url}/v1/images/generations` (JSON); with an input image
//! (image-to-image, or inpainting with a mask) it is one `POST {base_url}/v1/images/edits`
//! (`multipart/form-data`, see [`multipart`]). Our mask (white = repaint) is converted to
//! OpenAI's (transparent = edit). Base64 results come back as encoded bytes, URL results
//! (dall-e with `response_format` "url", LocalAI) as URLs the host fetches.
//!
//! - Images API: <https://platform.openai.com/docs/api-reference/images>
//! - Image generation guide: <https://platform.openai.com/docs/guides/image-generation>
//! - Error codes: <https://platform.openai.com/docs/guides/error-codes>
//! - LocalAI's image endpoint: <https://localai.io/features/image-generation/>
//!
//! **Settings** (`[plugins.openai] config`): `base_url` (default `https://api.openai.com`),
//! `models` (comma-separated ids replacing the default catalogue `gpt-image-1`,
//! `gpt-image-1-mini`, `gpt-image-1.5`, `dall-e-3`, `dall-e-2`; other ids are called as generic
//! models), `sizes` (the sizes of generic models, e.g. "512x512,1024x1024"; default 1024x1024),
//! `response_format` ("b64_json" (default) or "url", for dall-e and generic models) and
//! `request_timeout_ms` (each HTTP call, default 180000: GPT Image at high quality can take
//! well over a minute).
//!
//! **Secret**: `OPENAI_API_KEY`, sent only as `Authorization: Bearer {{secret:OPENAI_API_KEY}}`.

#![warn(missing_docs)]

pub mod catalogue;
pub mod multipart;
pub mod wire;

use catalogue::Family;
use easel_plugin_sdk::http::{self, HttpError, Request, Response};
use easel_plugin_sdk::provider::*;
use serde_json::{Value, json};

/// The official API origin, used when the operator sets no `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com";
/// Time limit of one HTTP call when the operator sets no `request_timeout_ms`.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u32 = 180_000;
/// The header value that makes the host insert the operator's (or caller's) key.
pub const AUTH_HEADER_VALUE: &str = "Bearer {{secret:OPENAI_API_KEY}}";

/// The operator's settings for this plugin, with defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// API origin without a trailing slash.
    pub base_url: String,
    /// Model ids to offer.
    pub models: Vec<String>,
    /// Sizes of generic (non-OpenAI) models; empty = 1024x1024.
    pub sizes: Vec<(u32, u32)>,
    /// `response_format` for dall-e and generic models: "b64_json" or "url".
    pub response_format: String,
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
        let sizes = get("sizes").map(|s| catalogue::parse_sizes(&s)).unwrap_or_default();
        let response_format = match get("response_format").as_deref().map(str::trim) {
            Some("url") => "url",
            _ => "b64_json",
        }
        .to_string();
        let request_timeout_ms = get("request_timeout_ms")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|&ms| ms > 0)
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
        Self { base_url, models, sizes, response_format, request_timeout_ms }
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

/// The `openai` provider.
pub struct OpenAi;

impl Provider for OpenAi {
    fn describe() -> ProviderInfo {
        let settings = Settings::from_host();
        ProviderInfo { models: settings.models.iter().map(|id| catalogue::model(id, &settings.sizes)).collect() }
    }

    fn generate(request: GenerateRequest) -> Result<GenerateResponse, PluginError> {
        generate_with(&request, &Settings::from_host(), &mut HostIo)
    }
}

/// Draw `request.n` images with one upstream call.
pub fn generate_with(
    request: &GenerateRequest,
    settings: &Settings,
    io: &mut impl Io,
) -> Result<GenerateResponse, PluginError> {
    let family = Family::of(&request.model);
    if !(1..=family.max_n()).contains(&request.n) {
        return Err(PluginError::InvalidInput(format!(
            "{} draws 1..={} images per call, asked for {}",
            request.model,
            family.max_n(),
            request.n
        )));
    }
    let edit = request.input_image.is_some();
    if request.mask.is_some() && !edit {
        return Err(PluginError::InvalidInput("a mask needs an input_image to apply to".into()));
    }
    let options = wire::options(&request.options_json, family, edit)?;
    let (width, height) = catalogue::size_for(&family.sizes(&settings.sizes), request.width, request.height);
    let prompt = wire::prompt_text(&request.prompt, request.negative_prompt.as_deref());
    let call = wire::Call {
        model: &request.model,
        family,
        prompt: &prompt,
        n: request.n,
        size: format!("{width}x{height}"),
        quality: family.quality(request.quality.as_deref()),
        response_format: &settings.response_format,
        options,
    };

    io.progress(0.0, "submitting");
    let (endpoint, content_type, body) = match &request.input_image {
        None => ("generations", "application/json".to_string(), wire::generation_body(&call).to_string().into_bytes()),
        Some(image) => {
            let (image_png, mask_png) = edit_inputs(request, family, image)?;
            let (content_type, body) = wire::edit_form(&call, image_png, mask_png).encode();
            ("edits", content_type, body)
        }
    };
    let http_request = Request {
        method: "POST".into(),
        url: format!("{}/v1/images/{endpoint}", settings.base_url),
        headers: vec![("content-type".into(), content_type), ("authorization".into(), AUTH_HEADER_VALUE.into())],
        body: Some(body),
        timeout_ms: Some(settings.request_timeout_ms),
    };
    io.progress(0.05, "generating");
    let response = io.fetch(&http_request).map_err(http::fetch_error)?;
    if !response.is_success() {
        return Err(wire::error_for(&response));
    }
    let (images, mut metadata) = wire::parse_success(&response.body, request.n)?;
    metadata.insert("model".into(), json!(request.model));
    metadata.insert("endpoint".into(), json!(endpoint));
    metadata.entry("size").or_insert_with(|| json!(call.size));
    if let Some(id) = response.header("x-request-id") {
        metadata.insert("request_id".into(), json!(id));
    }
    io.progress(1.0, "done");
    Ok(GenerateResponse {
        images: images
            .into_iter()
            .enumerate()
            .map(|(i, data)| GeneratedImage { data, seed: request.seed.wrapping_add(i as u32) })
            .collect(),
        metadata_json: Value::Object(metadata).to_string(),
    })
}

/// The PNGs the edits endpoint gets: the input image and, when there is one, the converted mask.
fn edit_inputs(
    request: &GenerateRequest,
    family: Family,
    image: &Image,
) -> Result<(Vec<u8>, Option<Vec<u8>>), PluginError> {
    match family {
        Family::GptImage => {}
        Family::DallE2 => {
            if request.mask.is_none() {
                return Err(PluginError::InvalidInput("dall-e-2 edits need a mask (white = repaint)".into()));
            }
            if image.width != image.height {
                return Err(PluginError::InvalidInput(format!(
                    "dall-e-2 edits need a square input_image, got {}x{}",
                    image.width, image.height
                )));
            }
        }
        Family::DallE3 | Family::Generic => {
            return Err(PluginError::Unsupported(format!("{} does not edit images", request.model)));
        }
    }
    let image_png = easel_plugin_sdk::image::encode_png(image).map_err(PluginError::InvalidInput)?;
    let mask_png = match &request.mask {
        None => None,
        Some(mask) if (mask.width, mask.height) != (image.width, image.height) => {
            return Err(PluginError::InvalidInput(format!(
                "the mask is {}x{} but the input_image is {}x{}",
                mask.width, mask.height, image.width, image.height
            )));
        }
        Some(mask) => Some(wire::mask_png(mask).map_err(PluginError::InvalidInput)?),
    };
    Ok((image_png, mask_png))
}

// Exported only in the wasm build (native builds exist for unit tests).
#[cfg(target_arch = "wasm32")]
easel_plugin_sdk::register_provider!(OpenAi);

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use std::collections::VecDeque;

    struct Script {
        replies: VecDeque<Result<Response, HttpError>>,
        sent: Vec<Request>,
        progress: Vec<String>,
    }

    impl Script {
        fn new(replies: Vec<Result<Response, HttpError>>) -> Self {
            Self { replies: replies.into(), sent: Vec::new(), progress: Vec::new() }
        }
        fn json(&self, i: usize) -> Value {
            serde_json::from_slice(self.sent[i].body.as_deref().unwrap()).unwrap()
        }
        fn header(&self, i: usize, name: &str) -> String {
            self.sent[i].headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
        }
    }

    impl Io for Script {
        fn fetch(&mut self, request: &Request) -> Result<Response, HttpError> {
            self.sent.push(request.clone());
            self.replies.pop_front().expect("an unexpected request")
        }
        fn progress(&mut self, _fraction: f32, stage: &str) {
            self.progress.push(stage.to_string());
        }
    }

    fn ok(body: Value) -> Result<Response, HttpError> {
        Ok(Response {
            status: 200,
            headers: vec![("x-request-id".into(), "req_123".into())],
            body: body.to_string().into_bytes(),
        })
    }

    fn images(n: usize) -> Value {
        json!({
            "created": 1713833628,
            "data": (0..n).map(|i| json!({"b64_json": B64.encode(format!("img{i}"))})).collect::<Vec<_>>(),
            "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210}
        })
    }

    fn settings(extra: &[(&str, &str)]) -> Settings {
        let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(move |k| {
            if k == "base_url" {
                return Some("http://127.0.0.1:9".into());
            }
            extra.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
        })
    }

    fn request(model: &str, n: u32, width: u32, height: u32) -> GenerateRequest {
        GenerateRequest {
            model: model.into(),
            prompt: "a fox in the snow".into(),
            negative_prompt: Some("blur".into()),
            width,
            height,
            n,
            seed: 7,
            steps: None,
            guidance_scale: None,
            quality: Some("draft".into()),
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
        assert_eq!(d.base_url, "https://api.openai.com");
        assert_eq!(d.models.len(), 5);
        assert_eq!((d.response_format.as_str(), d.request_timeout_ms), ("b64_json", 180_000));
        assert!(d.sizes.is_empty());
        let s = settings(&[("models", "sd-1.5"), ("sizes", "512x512,768x512"), ("response_format", "url")]);
        assert_eq!(s.models, ["sd-1.5"]);
        assert_eq!(s.sizes, [(512, 512), (768, 512)]);
        assert_eq!(s.response_format, "url");
    }

    #[test]
    fn text_to_image_posts_json_with_bearer_secret() {
        let mut io = Script::new(vec![ok(images(2))]);
        let out = generate_with(&request("gpt-image-1", 2, 1024, 1536), &settings(&[]), &mut io).unwrap();
        let sent = &io.sent[0];
        assert_eq!((sent.method.as_str(), sent.url.as_str()), ("POST", "http://127.0.0.1:9/v1/images/generations"));
        assert_eq!(io.header(0, "authorization"), "Bearer {{secret:OPENAI_API_KEY}}");
        assert_eq!(io.header(0, "content-type"), "application/json");
        assert_eq!(sent.timeout_ms, Some(180_000));
        assert_eq!(
            io.json(0),
            json!({"model": "gpt-image-1", "prompt": "a fox in the snow\n\nAvoid: blur", "n": 2, "size": "1024x1536",
                   "quality": "low", "output_format": "png"})
        );
        assert_eq!(out.images.iter().map(|i| i.seed).collect::<Vec<_>>(), [7, 8]);
        assert!(matches!(&out.images[1].data, ImageData::Encoded(b) if b == b"img1"));
        let meta: Value = serde_json::from_str(&out.metadata_json).unwrap();
        assert_eq!(meta["request_id"], "req_123");
        assert_eq!(meta["endpoint"], "generations");
        assert_eq!(meta["usage"]["total_tokens"], 4210);
        assert_eq!(io.progress, ["submitting", "generating", "done"]);
    }

    #[test]
    fn dall_e_and_generic_models_ask_for_the_configured_response_format() {
        let mut io = Script::new(vec![ok(json!({"created": 1, "data": [{"url": "http://127.0.0.1:9/files/a.png"}]}))]);
        let s = settings(&[("models", "sd"), ("sizes", "512x512"), ("response_format", "url")]);
        let out = generate_with(&request("sd", 1, 512, 512), &s, &mut io).unwrap();
        assert_eq!(
            io.json(0),
            json!({"model": "sd", "prompt": "a fox in the snow\n\nAvoid: blur", "n": 1, "size": "512x512", "response_format": "url"})
        );
        assert!(matches!(&out.images[0].data, ImageData::Url(u) if u == "http://127.0.0.1:9/files/a.png"));

        let mut io =
            Script::new(vec![ok(json!({"created": 1, "data": [{"b64_json": "eA==", "revised_prompt": "A fox."}]}))]);
        let mut req = request("dall-e-3", 1, 1792, 1024);
        req.quality = Some("high".into());
        let out = generate_with(&req, &settings(&[]), &mut io).unwrap();
        let body = io.json(0);
        assert_eq!(
            (body["size"].as_str(), body["quality"].as_str(), body["response_format"].as_str()),
            (Some("1792x1024"), Some("hd"), Some("b64_json"))
        );
        assert_eq!(serde_json::from_str::<Value>(&out.metadata_json).unwrap()["revised_prompts"], json!(["A fox."]));
    }

    #[test]
    fn inpainting_sends_a_multipart_edit_with_an_inverted_mask() {
        let mut req = request("gpt-image-1", 1, 1024, 1024);
        req.input_image = Some(Rgba::filled(8, 8, [9, 9, 9, 255]).into_image());
        let mut mask = Rgba::filled(8, 8, [0, 0, 0, 255]);
        mask.put(0, 0, [255, 255, 255, 255]);
        req.mask = Some(mask.into_image());
        req.options_json = r#"{"input_fidelity":"high"}"#.into();
        let mut io = Script::new(vec![ok(images(1))]);
        let out = generate_with(&req, &settings(&[]), &mut io).unwrap();
        assert_eq!(io.sent[0].url, "http://127.0.0.1:9/v1/images/edits");
        let content_type = io.header(0, "content-type");
        assert!(content_type.starts_with("multipart/form-data; boundary="), "{content_type}");
        let body = io.sent[0].body.as_deref().unwrap();
        let text = String::from_utf8_lossy(body);
        for field in ["model", "prompt", "n", "size", "quality", "output_format", "input_fidelity"] {
            assert!(text.contains(&format!("name=\"{field}\"\r\n")), "{field}");
        }
        assert!(text.contains("name=\"image\"; filename=\"image.png\""));
        assert!(text.contains("name=\"mask\"; filename=\"mask.png\""));
        assert_eq!(serde_json::from_str::<Value>(&out.metadata_json).unwrap()["endpoint"], "edits");
    }

    #[test]
    fn edits_that_the_model_cannot_do_are_refused_before_any_request() {
        let mut io = Script::new(vec![]);
        let square = Rgba::filled(4, 4, [0, 0, 0, 255]).into_image();
        let wide = Rgba::filled(6, 4, [0, 0, 0, 255]).into_image();

        let mut req = request("dall-e-3", 1, 1024, 1024);
        req.input_image = Some(square.clone());
        assert!(matches!(generate_with(&req, &settings(&[]), &mut io), Err(PluginError::Unsupported(_))));

        let mut req = request("dall-e-2", 1, 512, 512);
        req.input_image = Some(square.clone());
        assert!(
            matches!(generate_with(&req, &settings(&[]), &mut io), Err(PluginError::InvalidInput(m)) if m.contains("mask"))
        );
        req.input_image = Some(wide.clone());
        req.mask = Some(wide);
        assert!(
            matches!(generate_with(&req, &settings(&[]), &mut io), Err(PluginError::InvalidInput(m)) if m.contains("square"))
        );

        let mut req = request("gpt-image-1", 1, 1024, 1024);
        req.input_image = Some(square);
        req.mask = Some(Rgba::filled(2, 2, [255, 255, 255, 255]).into_image());
        assert!(
            matches!(generate_with(&req, &settings(&[]), &mut io), Err(PluginError::InvalidInput(m)) if m.contains("mask is 2x2"))
        );

        let req = request("dall-e-3", 2, 1024, 1024);
        assert!(matches!(generate_with(&req, &settings(&[]), &mut io), Err(PluginError::InvalidInput(_))));
        assert!(io.sent.is_empty());
    }

    #[test]
    fn upstream_errors_and_short_answers() {
        let blocked = r#"{"error":{"message":"Your request was rejected by the safety system.","type":"image_generation_user_error","param":null,"code":"moderation_blocked"}}"#;
        let mut io = Script::new(vec![Ok(Response { status: 400, headers: vec![], body: blocked.into() })]);
        assert!(matches!(
            generate_with(&request("gpt-image-1", 1, 1024, 1024), &settings(&[]), &mut io),
            Err(PluginError::ContentBlocked(_))
        ));

        let mut io = Script::new(vec![ok(images(1))]);
        assert!(
            matches!(generate_with(&request("gpt-image-1", 2, 1024, 1024), &settings(&[]), &mut io), Err(PluginError::Http(m)) if m.contains("1 images for n = 2"))
        );

        // An answer over the limit would be as large again: not worth a retry.
        let mut io = Script::new(vec![Err(HttpError::TooLarge("over 64 MiB".into()))]);
        assert!(matches!(
            generate_with(&request("gpt-image-1", 1, 1024, 1024), &settings(&[]), &mut io),
            Err(PluginError::Denied(m)) if m.contains("too large")
        ));
    }
}
