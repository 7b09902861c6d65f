//! fal's wire format: the input body of an endpoint, and the answers of the queue (submit,
//! status, result, errors). Pure functions, tested natively.

use easel_plugin_sdk::http::{self, Response};
use easel_plugin_sdk::provider::{GenerateRequest, ImageData, PluginError};
use serde_json::{Map, Value, json};

use crate::catalogue::{Flavor, ImageField, PRESETS, Size, Spec};
use easel_plugin_sdk::image::{decode_data_uri, png_data_uri};
use easel_plugin_sdk::text::{one_line as short, prompt_with_avoid};

/// Input keys Easel sets from request fields; `provider_options` may not set them.
pub const RESERVED_KEYS: &[&str] = &[
    "prompt",
    "negative_prompt",
    "image_size",
    "aspect_ratio",
    "num_images",
    "seed",
    "num_inference_steps",
    "guidance_scale",
    "image_url",
    "image_urls",
    "mask_url",
    "strength",
    "loras",
    "enable_safety_checker",
    "sync_mode",
];

/// What to submit: the endpoint id and its input.
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    /// The endpoint that takes this request (an image-to-image or inpainting sibling when the
    /// request has an input image or a mask).
    pub endpoint: String,
    /// The JSON input.
    pub body: Map<String, Value>,
}

/// Build the input of `spec` (endpoint `model`) for `req`.
pub fn build(spec: &Spec, model: &str, req: &GenerateRequest) -> Result<Submission, PluginError> {
    if req.n == 0 || req.n > spec.max_n {
        return Err(PluginError::InvalidInput(format!(
            "{model} returns 1 to {} images a call, asked for {}",
            spec.max_n, req.n
        )));
    }
    if !req.loras.is_empty() && !spec.loras {
        return Err(PluginError::Unsupported(format!("{model} takes no LoRAs (use fal-ai/flux-lora)")));
    }
    let mut body = Map::new();

    // Which endpoint, and the image inputs it takes.
    let endpoint = match (&req.input_image, &req.mask) {
        (_, Some(_)) if spec.inpaint.is_none() => {
            return Err(PluginError::Unsupported(format!("{model} does not do inpainting (no mask input)")));
        }
        (None, Some(_)) => return Err(PluginError::InvalidInput("a mask needs an input image".into())),
        (Some(image), Some(mask)) => {
            body.insert("image_url".into(), png_data_uri(image)?.into());
            body.insert("mask_url".into(), png_data_uri(mask)?.into());
            if let Some(s) = req.strength {
                body.insert("strength".into(), json!(s.clamp(0.01, 1.0)));
            }
            spec.inpaint.unwrap_or(model).to_string()
        }
        (Some(image), None) => {
            if let Some(field) = spec.requires_image {
                insert_image(&mut body, field, png_data_uri(image)?);
                model.to_string()
            } else if let Some((endpoint, field, strength)) = spec.img2img {
                insert_image(&mut body, field, png_data_uri(image)?);
                if let (true, Some(s)) = (strength, req.strength) {
                    body.insert("strength".into(), json!(s.clamp(0.01, 1.0)));
                }
                endpoint.to_string()
            } else {
                return Err(PluginError::Unsupported(format!("{model} takes no input image")));
            }
        }
        (None, None) => {
            if spec.requires_image.is_some() {
                return Err(PluginError::InvalidInput(format!("{model} edits an image: input_image is required")));
            }
            model.to_string()
        }
    };
    let image_input = req.input_image.is_some();

    // Prompt and negative prompt.
    if spec.negative_prompt {
        body.insert("prompt".into(), req.prompt.clone().into());
        if let Some(n) = req.negative_prompt.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            body.insert("negative_prompt".into(), n.into());
        }
    } else {
        body.insert("prompt".into(), prompt_with_avoid(&req.prompt, req.negative_prompt.as_deref()).into());
    }

    // Size: image-to-image endpoints draw at the input's size (the host scales the result).
    let sized = !image_input || spec.requires_image.is_some() || matches!(spec.size, Size::Ratios(_));
    if sized {
        match spec.size {
            Size::Any { .. } => {
                body.insert("image_size".into(), image_size(req.width, req.height));
            }
            Size::Presets => {
                body.insert("image_size".into(), nearest_preset(req.width, req.height).into());
            }
            Size::Ratios(list) => {
                body.insert("aspect_ratio".into(), nearest_ratio(list, req.width, req.height).into());
            }
        }
    }

    if spec.num_images {
        body.insert("num_images".into(), req.n.into());
    }
    if spec.seed {
        body.insert("seed".into(), req.seed.into());
    }
    if let Some((default, min, max)) = spec.steps {
        let steps = req.steps.unwrap_or_else(|| match req.quality.as_deref() {
            Some("draft") => (default * 3 / 5).max(min),
            Some("high") => (default * 3 / 2).min(max),
            _ => default,
        });
        body.insert("num_inference_steps".into(), steps.clamp(min, max).into());
    }
    if let (Some((min, max)), Some(g)) = (spec.guidance, req.guidance_scale) {
        body.insert("guidance_scale".into(), json!(g.clamp(min, max)));
    }
    if spec.safety_checker {
        body.insert("enable_safety_checker".into(), true.into());
    }
    if spec.png {
        body.insert("output_format".into(), "png".into());
    }
    if spec.loras && !req.loras.is_empty() {
        let loras: Vec<Value> = req.loras.iter().map(|l| json!({"path": l.path, "scale": l.scale})).collect();
        body.insert("loras".into(), loras.into());
    }
    match spec.flavor {
        Flavor::Plain => {}
        Flavor::Recraft => {
            if let Some(style) = req.style_hint.as_deref().and_then(recraft_style) {
                body.insert("style".into(), style.into());
            }
        }
        Flavor::Ideogram => {
            if let Some(style) = req.style_hint.as_deref().map(ideogram_style) {
                body.insert("style".into(), style.into());
            }
            let speed = match req.quality.as_deref() {
                Some("draft") => Some("TURBO"),
                Some("high") => Some("QUALITY"),
                Some(_) => Some("BALANCED"),
                None => None,
            };
            if let Some(speed) = speed {
                body.insert("rendering_speed".into(), speed.into());
            }
        }
    }

    easel_plugin_sdk::provider::merge_options(&mut body, &req.options_json, RESERVED_KEYS)?;
    if spec.flavor == Flavor::Recraft
        && body.get("style").and_then(Value::as_str).is_some_and(|s| s.starts_with("vector_illustration"))
    {
        return Err(PluginError::Unsupported(
            "Recraft vector_illustration styles answer SVG, which Easel does not store; pick a raster style".into(),
        ));
    }
    Ok(Submission { endpoint, body })
}

fn insert_image(body: &mut Map<String, Value>, field: ImageField, uri: String) {
    match field {
        ImageField::Url => body.insert("image_url".into(), uri.into()),
        ImageField::Urls => body.insert("image_urls".into(), json!([uri])),
    };
}

/// `image_size` for an any-size endpoint: the preset name when the size is one, else the object.
pub fn image_size(width: u32, height: u32) -> Value {
    match PRESETS.iter().find(|&&(_, w, h)| w == width && h == height) {
        Some((name, _, _)) => Value::from(*name),
        None => json!({"width": width, "height": height}),
    }
}

/// The preset whose ratio is nearest `width`×`height` (larger preset on ties).
pub fn nearest_preset(width: u32, height: u32) -> &'static str {
    let target = (f64::from(width.max(1)) / f64::from(height.max(1))).ln();
    PRESETS
        .iter()
        .min_by(|a, b| {
            let da = ((f64::from(a.1) / f64::from(a.2)).ln() - target).abs();
            let db = ((f64::from(b.1) / f64::from(b.2)).ln() - target).abs();
            da.total_cmp(&db).then((b.1 * b.2).cmp(&(a.1 * a.2)))
        })
        .map(|p| p.0)
        .unwrap_or("square_hd")
}

/// The `"W:H"` entry of `list` that draws `width`×`height`, or the nearest ratio.
pub fn nearest_ratio(list: &[(u32, u32, u32, u32)], width: u32, height: u32) -> String {
    if let Some(&(rw, rh, _, _)) = list.iter().find(|&&(_, _, w, h)| w == width && h == height) {
        return format!("{rw}:{rh}");
    }
    let target = (f64::from(width.max(1)) / f64::from(height.max(1))).ln();
    list.iter()
        .min_by(|a, b| {
            let da = ((f64::from(a.0) / f64::from(a.1)).ln() - target).abs();
            let db = ((f64::from(b.0) / f64::from(b.1)).ln() - target).abs();
            da.total_cmp(&db)
        })
        .map_or_else(|| "1:1".to_string(), |&(rw, rh, _, _)| format!("{rw}:{rh}"))
}

/// Recraft `style` for a style hint (vector hints map to a raster illustration style: the
/// vector styles answer SVG).
fn recraft_style(hint: &str) -> Option<&'static str> {
    let h = hint.to_ascii_lowercase();
    if ["photo", "realistic", "cinematic", "portrait"].iter().any(|k| h.contains(k)) {
        Some("realistic_image")
    } else if h.contains("pixel") {
        Some("digital_illustration/pixel_art")
    } else if ["vector", "icon", "logo", "flat", "illustration", "cartoon", "anime", "art", "sketch"]
        .iter()
        .any(|k| h.contains(k))
    {
        Some("digital_illustration")
    } else {
        None
    }
}

/// Ideogram `style` for a style hint.
fn ideogram_style(hint: &str) -> &'static str {
    let h = hint.to_ascii_lowercase();
    if ["photo", "realistic", "cinematic", "portrait"].iter().any(|k| h.contains(k)) {
        "REALISTIC"
    } else if ["vector", "icon", "logo", "design", "poster", "typograph", "flat"].iter().any(|k| h.contains(k)) {
        "DESIGN"
    } else {
        "GENERAL"
    }
}

/// The queue's answer to a submission.
#[derive(Clone, Debug, PartialEq)]
pub struct Queued {
    /// fal's request id.
    pub request_id: String,
    /// `GET` for the status.
    pub status_url: String,
    /// `GET` for the result.
    pub response_url: String,
    /// `PUT` to cancel.
    pub cancel_url: String,
}

/// Parse the submit answer.
pub fn parse_queued(body: &[u8]) -> Result<Queued, PluginError> {
    let v = parse_json(body)?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| PluginError::Http(format!("malformed response: the submit answer has no {k}")))
    };
    Ok(Queued {
        request_id: field("request_id")?,
        status_url: field("status_url")?,
        response_url: field("response_url")?,
        cancel_url: field("cancel_url")?,
    })
}

/// One status answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Waiting for a runner, at this position (0 = next).
    InQueue(Option<u64>),
    /// Running; the last log line if any.
    InProgress(Option<String>),
    /// Done (the result may still be an error); `error` when the status says so, `metrics`.
    Completed {
        /// The error message and `error_type`, when the status reports one.
        error: Option<(String, Option<String>)>,
        /// fal's `metrics` (e.g. `inference_time`).
        metrics: Option<Value>,
    },
}

/// Parse a status answer.
pub fn parse_status(body: &[u8]) -> Result<Status, PluginError> {
    let v = parse_json(body)?;
    let last_log = || {
        v.get("logs")
            .and_then(Value::as_array)
            .and_then(|logs| logs.iter().rev().find_map(|l| l.get("message").and_then(Value::as_str)))
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
    };
    match v.get("status").and_then(Value::as_str) {
        Some("IN_QUEUE") => Ok(Status::InQueue(v.get("queue_position").and_then(Value::as_u64))),
        Some("IN_PROGRESS") => Ok(Status::InProgress(last_log())),
        Some("COMPLETED") => {
            let error = match v.get("error") {
                None | Some(Value::Null) => None,
                Some(e) => Some((
                    e.as_str().map_or_else(|| e.to_string(), str::to_string),
                    v.get("error_type").and_then(Value::as_str).map(str::to_string),
                )),
            };
            Ok(Status::Completed { error, metrics: v.get("metrics").cloned() })
        }
        Some(other) => Err(PluginError::Http(format!("malformed response: unknown queue status {other:?}"))),
        None => Err(PluginError::Http("malformed response: the status answer has no status".into())),
    }
}

/// One image of a result, with the seed that made it.
pub type Images = Vec<(ImageData, u32)>;

/// Parse a result: `images[].url` (URLs, or data URIs in `sync_mode`), `seed`,
/// `has_nsfw_concepts`, `timings`, `prompt`. Returns the images and the metadata object.
///
/// Safety: fal replaces an image its checker flags with a black one and says so in
/// `has_nsfw_concepts`. A black image is no answer, so any flagged image fails the whole call
/// with `content-blocked` (naming how many were flagged).
pub fn parse_result(
    body: &[u8],
    req: &GenerateRequest,
    endpoint: &str,
    request_id: &str,
) -> Result<(Images, Value), PluginError> {
    let v = parse_json(body)?;
    let nsfw: Vec<bool> = v
        .get("has_nsfw_concepts")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.as_bool().unwrap_or(false)).collect())
        .unwrap_or_default();
    let flagged = nsfw.iter().filter(|f| **f).count();
    if flagged > 0 {
        return Err(PluginError::ContentBlocked(format!(
            "fal's safety checker flagged {flagged} of {} images (has_nsfw_concepts)",
            nsfw.len().max(req.n as usize)
        )));
    }
    let images = v
        .get("images")
        .and_then(Value::as_array)
        .ok_or_else(|| PluginError::Http("malformed response: the result has no images".into()))?;
    let seed = v.get("seed").and_then(Value::as_u64).map(|s| s as u32).unwrap_or(req.seed);
    let mut out = Vec::with_capacity(images.len());
    for (i, image) in images.iter().enumerate() {
        let url = image
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| PluginError::Http(format!("malformed response: images[{i}] has no url")))?;
        let data = match decode_data_uri(url) {
            Some(bytes) => ImageData::Encoded(bytes),
            None if url.starts_with("https://") || url.starts_with("http://") => ImageData::Url(url.to_string()),
            None => {
                return Err(PluginError::Http(format!("malformed response: images[{i}].url is not an http(s) URL")));
            }
        };
        out.push((data, seed.wrapping_add(i as u32)));
    }
    if out.len() < req.n as usize {
        return Err(PluginError::Http(format!("fal returned {} images for n = {}", out.len(), req.n)));
    }
    out.truncate(req.n as usize);
    let mut meta = Map::new();
    meta.insert("provider".into(), "fal".into());
    meta.insert("endpoint".into(), endpoint.into());
    meta.insert("request_id".into(), request_id.into());
    meta.insert("seed".into(), seed.into());
    for key in ["timings", "has_nsfw_concepts", "prompt", "description"] {
        if let Some(value) = v.get(key).filter(|x| !x.is_null()) {
            meta.insert(key.into(), value.clone());
        }
    }
    let sizes: Vec<Value> =
        images.iter().filter_map(|i| Some(json!([i.get("width")?.as_u64()?, i.get("height")?.as_u64()?]))).collect();
    if !sizes.is_empty() {
        meta.insert("image_sizes".into(), sizes.into());
    }
    Ok((out, Value::Object(meta)))
}

fn parse_json(body: &[u8]) -> Result<Value, PluginError> {
    serde_json::from_slice(body).map_err(|e| PluginError::Http(format!("malformed response: {e}")))
}

/// fal's words from an error body: `{"detail":"…"}` or `{"detail":[{"loc","msg","type"}]}`
/// (naming the field), and whether fal called it a content-policy violation.
pub fn detail(body: &[u8]) -> (String, bool) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return (if text.trim().is_empty() { "no details".into() } else { short(&text, 300) }, false);
    };
    match v.get("detail") {
        Some(Value::String(s)) => (short(s, 500), false),
        Some(Value::Array(items)) => {
            let mut policy = false;
            let parts: Vec<String> = items
                .iter()
                .map(|item| {
                    let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
                    policy |= kind.contains("content_policy");
                    let field = item
                        .get("loc")
                        .and_then(Value::as_array)
                        .map(|loc| {
                            loc.iter()
                                .filter(|p| p.as_str() != Some("body"))
                                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .filter(|f| !f.is_empty());
                    let msg = item.get("msg").and_then(Value::as_str).unwrap_or("invalid");
                    match field {
                        Some(f) => format!("{f}: {msg}"),
                        None => msg.to_string(),
                    }
                })
                .collect();
            (short(&parts.join("; "), 500), policy)
        }
        Some(other) => (short(&other.to_string(), 300), false),
        None => (short(&v.to_string(), 300), false),
    }
}

/// The plugin error for a non-2xx answer: content-policy violations are `content-blocked`;
/// otherwise the SDK's status mapping (401/403 unauthorized, 429/5xx retryable with
/// `Retry-After`, other 4xx invalid-input) with fal's detail.
pub fn error_from_response(response: &Response) -> PluginError {
    let (message, policy) = detail(&response.body);
    if policy {
        return PluginError::ContentBlocked(message);
    }
    http::status_error(response, message)
}

/// The plugin error for a status that completed with an error.
pub fn error_from_status(message: &str, error_type: Option<&str>) -> PluginError {
    let text = format!("{message} {}", error_type.unwrap_or("")).to_ascii_lowercase();
    if ["content_policy", "nsfw", "safety", "flagged"].iter().any(|k| text.contains(k)) {
        PluginError::ContentBlocked(short(message, 500))
    } else {
        PluginError::Http(format!("fal request failed: {}", short(message, 500)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalogue::spec;
    use easel_plugin_sdk::bindings::provider::exports::easel::plugin::provider::Lora;
    use easel_plugin_sdk::provider::Image;

    pub(crate) fn request(model: &str) -> GenerateRequest {
        GenerateRequest {
            model: model.into(),
            prompt: "a red fox".into(),
            negative_prompt: None,
            width: 1024,
            height: 768,
            n: 1,
            seed: 7,
            steps: None,
            guidance_scale: None,
            quality: None,
            style_hint: None,
            input_image: None,
            mask: None,
            strength: None,
            loras: vec![],
            options_json: "{}".into(),
        }
    }

    fn tiny() -> Image {
        Image { width: 2, height: 2, pixels: vec![255; 16] }
    }

    #[test]
    fn flux_dev_text_to_image() {
        let mut req = request("fal-ai/flux/dev");
        req.negative_prompt = Some("blur".into());
        req.n = 2;
        req.guidance_scale = Some(50.0);
        req.quality = Some("high".into());
        let s = build(spec("fal-ai/flux/dev"), "fal-ai/flux/dev", &req).unwrap();
        assert_eq!(s.endpoint, "fal-ai/flux/dev");
        let b = Value::Object(s.body);
        assert_eq!(b["prompt"], "a red fox\n\nAvoid: blur");
        assert_eq!(b["image_size"], "landscape_4_3");
        assert_eq!(b["num_images"], 2);
        assert_eq!(b["seed"], 7);
        assert_eq!(b["num_inference_steps"], 42);
        assert_eq!(b["guidance_scale"], 20.0);
        assert_eq!(b["enable_safety_checker"], true);
        assert_eq!(b["output_format"], "png");
        assert!(b.get("negative_prompt").is_none());
    }

    #[test]
    fn custom_sizes_and_presets() {
        assert_eq!(image_size(1000, 600), json!({"width": 1000, "height": 600}));
        assert_eq!(image_size(576, 1024), json!("portrait_16_9"));
        assert_eq!(nearest_preset(1920, 1080), "landscape_16_9");
        assert_eq!(nearest_preset(700, 700), "square_hd");
        assert_eq!(nearest_ratio(crate::catalogue::KONTEXT_RATIOS, 1344, 768), "16:9");
        assert_eq!(nearest_ratio(crate::catalogue::KONTEXT_RATIOS, 1000, 1000), "1:1");
    }

    #[test]
    fn img2img_goes_to_the_sibling_endpoint_without_a_size() {
        let mut req = request("fal-ai/flux/dev");
        req.input_image = Some(tiny());
        req.strength = Some(0.6);
        let s = build(spec("fal-ai/flux/dev"), "fal-ai/flux/dev", &req).unwrap();
        assert_eq!(s.endpoint, "fal-ai/flux/dev/image-to-image");
        assert!(s.body["image_url"].as_str().unwrap().starts_with("data:image/png;base64,"));
        assert_eq!(s.body["strength"], json!(0.6f32));
        assert!(s.body.get("image_size").is_none());
    }

    #[test]
    fn inpainting_and_loras() {
        let mut req = request("fal-ai/flux-lora");
        req.input_image = Some(tiny());
        req.mask = Some(tiny());
        req.loras = vec![Lora { path: "https://x/y.safetensors".into(), scale: 0.8 }];
        let s = build(spec("fal-ai/flux-lora"), "fal-ai/flux-lora", &req).unwrap();
        assert_eq!(s.endpoint, "fal-ai/flux-lora/inpainting");
        assert!(s.body.contains_key("mask_url"));
        assert_eq!(s.body["loras"], json!([{"path": "https://x/y.safetensors", "scale": 0.8f32}]));
        let err = build(spec("fal-ai/flux/dev"), "fal-ai/flux/dev", &req).unwrap_err();
        assert!(matches!(err, PluginError::Unsupported(_)));
    }

    #[test]
    fn editing_endpoints_require_an_image() {
        let req = request("fal-ai/flux-pro/kontext");
        assert!(matches!(
            build(spec("fal-ai/flux-pro/kontext"), "fal-ai/flux-pro/kontext", &req),
            Err(PluginError::InvalidInput(_))
        ));
        let mut req = request("fal-ai/nano-banana");
        req.input_image = Some(tiny());
        req.width = 1344;
        req.height = 768;
        let s = build(spec("fal-ai/nano-banana"), "fal-ai/nano-banana", &req).unwrap();
        assert_eq!(s.endpoint, "fal-ai/nano-banana/edit");
        assert_eq!(s.body["image_urls"].as_array().unwrap().len(), 1);
        assert_eq!(s.body["aspect_ratio"], "16:9");
    }

    #[test]
    fn native_negative_prompt_and_flavors() {
        let mut req = request("fal-ai/ideogram/v3");
        req.negative_prompt = Some("text".into());
        req.quality = Some("draft".into());
        req.style_hint = Some("logo".into());
        let s = build(spec("fal-ai/ideogram/v3"), "fal-ai/ideogram/v3", &req).unwrap();
        assert_eq!(s.body["negative_prompt"], "text");
        assert_eq!(s.body["prompt"], "a red fox");
        assert_eq!(s.body["rendering_speed"], "TURBO");
        assert_eq!(s.body["style"], "DESIGN");
        let mut req = request("fal-ai/recraft/v3/text-to-image");
        req.style_hint = Some("vector".into());
        let s = build(spec("fal-ai/recraft/v3/text-to-image"), "fal-ai/recraft/v3/text-to-image", &req).unwrap();
        assert_eq!(s.body["style"], "digital_illustration");
        assert!(s.body.get("seed").is_none() && s.body.get("num_images").is_none());
        req.options_json = r#"{"style":"vector_illustration/line_art"}"#.into();
        assert!(build(spec("fal-ai/recraft/v3/text-to-image"), "fal-ai/recraft/v3/text-to-image", &req).is_err());
    }

    #[test]
    fn options_merge_but_cannot_override_request_fields() {
        let mut req = request("fal-ai/flux/dev");
        req.options_json = r#"{"output_format":"jpeg","acceleration":"high"}"#.into();
        let s = build(spec("fal-ai/flux/dev"), "fal-ai/flux/dev", &req).unwrap();
        assert_eq!(s.body["output_format"], "jpeg");
        assert_eq!(s.body["acceleration"], "high");
        for bad in [r#"{"seed":1}"#, r#"{"enable_safety_checker":false}"#, "[1]", "nope"] {
            req.options_json = bad.into();
            assert!(
                matches!(build(spec("fal-ai/flux/dev"), "fal-ai/flux/dev", &req), Err(PluginError::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn n_is_checked() {
        let mut req = request("fal-ai/recraft/v3/text-to-image");
        req.n = 2;
        assert!(build(spec(&req.model), "fal-ai/recraft/v3/text-to-image", &req).is_err());
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status(br#"{"status":"IN_QUEUE","queue_position":2}"#).unwrap(), Status::InQueue(Some(2)));
        assert_eq!(
            parse_status(br#"{"status":"IN_PROGRESS","logs":[{"message":"a"},{"message":" step 3/28 "}]}"#).unwrap(),
            Status::InProgress(Some("step 3/28".into()))
        );
        assert!(matches!(
            parse_status(br#"{"status":"COMPLETED","error":"boom","error_type":"x"}"#).unwrap(),
            Status::Completed { error: Some(_), .. }
        ));
        assert!(matches!(parse_status(b"{oops"), Err(PluginError::Http(_))));
    }

    #[test]
    fn results() {
        let mut req = request("fal-ai/flux/dev");
        req.n = 2;
        let body = br#"{"images":[{"url":"https://v3.fal.media/files/a.png","width":8,"height":6},{"url":"https://v3.fal.media/files/b.png"}],"seed":42,"has_nsfw_concepts":[false,false],"timings":{"inference":1.2},"prompt":"a red fox"}"#;
        let (images, meta) = parse_result(body, &req, "fal-ai/flux/dev", "r1").unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images[1].1, 43);
        assert!(matches!(&images[0].0, ImageData::Url(u) if u.ends_with("a.png")));
        assert_eq!(meta["request_id"], "r1");
        assert_eq!(meta["timings"]["inference"], 1.2);
        let blocked =
            br#"{"images":[{"url":"https://x/a.png"},{"url":"https://x/b.png"}],"has_nsfw_concepts":[false,true]}"#;
        assert!(matches!(parse_result(blocked, &req, "e", "r"), Err(PluginError::ContentBlocked(_))));
        let short = br#"{"images":[{"url":"https://x/a.png"}]}"#;
        assert!(matches!(parse_result(short, &req, "e", "r"), Err(PluginError::Http(_))));
        req.n = 1;
        let inline = br#"{"images":[{"url":"data:image/png;base64,iVBORw=="}]}"#;
        let (images, _) = parse_result(inline, &req, "e", "r").unwrap();
        assert!(matches!(&images[0].0, ImageData::Encoded(b) if b.starts_with(b"\x89PNG")));
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn errors() {
        let e = error_from_response(&response(
            422,
            &[],
            r#"{"detail":[{"loc":["body","prompt"],"msg":"field required","type":"value_error.missing"}]}"#,
        ));
        assert!(matches!(e, PluginError::InvalidInput(ref m) if m.contains("prompt: field required")), "{e:?}");
        let e = error_from_response(&response(401, &[], r#"{"detail":"No user found for Key ID and Secret"}"#));
        assert!(matches!(e, PluginError::Unauthorized(ref m) if m.contains("No user found")));
        let e = error_from_response(&response(429, &[("Retry-After", "7")], r#"{"detail":"rate limited"}"#));
        assert!(matches!(e, PluginError::Retryable(ref h) if h.retry_after_ms == Some(7000)));
        let e = error_from_response(&response(503, &[], "<html>bad gateway</html>"));
        assert!(matches!(e, PluginError::Retryable(_)));
        let e = error_from_response(&response(
            422,
            &[],
            r#"{"detail":[{"loc":["body","prompt"],"msg":"flagged","type":"content_policy_violation"}]}"#,
        ));
        assert!(matches!(e, PluginError::ContentBlocked(_)));
        assert!(matches!(error_from_status("NSFW content detected", None), PluginError::ContentBlocked(_)));
        assert!(matches!(error_from_status("CUDA out of memory", None), PluginError::Http(_)));
    }
}
