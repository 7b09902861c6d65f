//! Replicate's wire format: a model's `input`, the prediction object, and RFC 7807 errors.
//! Pure functions, tested natively.

use easel_plugin_sdk::http::{self, Response};
use easel_plugin_sdk::provider::{GenerateRequest, Image, ImageData, PluginError};
use serde_json::{Map, Value, json};

use crate::catalogue::{Flavor, Size, Spec};
use easel_plugin_sdk::image::{decode_data_uri, png_data_uri};
use easel_plugin_sdk::text::{one_line as short, prompt_with_avoid};

/// Input keys Easel sets from request fields; `provider_options` may not set them.
pub const RESERVED_KEYS: &[&str] = &[
    "prompt",
    "negative_prompt",
    "aspect_ratio",
    "width",
    "height",
    "size",
    "resolution",
    "num_outputs",
    "seed",
    "num_inference_steps",
    "guidance",
    "guidance_scale",
    "cfg",
    "image",
    "mask",
    "prompt_strength",
    "disable_safety_checker",
];

/// The `input` of a prediction and the seed of its first image (when the model takes one).
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// The JSON input.
    pub input: Map<String, Value>,
    /// The seed sent (after wrapping into the model's range).
    pub seed: Option<u32>,
}

/// Build the `input` of `spec` (model `model`) for `req`.
pub fn build(spec: &Spec, model: &str, req: &GenerateRequest) -> Result<Input, PluginError> {
    if req.n == 0 || req.n > spec.max_n {
        return Err(PluginError::InvalidInput(format!(
            "{model} returns 1 to {} images a call, asked for {}",
            spec.max_n, req.n
        )));
    }
    if !req.loras.is_empty() {
        return Err(PluginError::Unsupported(format!("{model} takes no LoRAs through Easel")));
    }
    let mut input = Map::new();

    match (&req.input_image, &req.mask, spec.img2img, spec.inpaint) {
        (None, Some(_), _, _) => return Err(PluginError::InvalidInput("a mask needs an input image".into())),
        (Some(image), Some(mask), _, Some((image_field, mask_field, invert))) => {
            input.insert(image_field.into(), png_data_uri(image)?.into());
            let mask = if invert { inverted(mask) } else { mask.clone() };
            input.insert(mask_field.into(), png_data_uri(&mask)?.into());
        }
        (Some(_), Some(_), _, None) => {
            return Err(PluginError::Unsupported(format!("{model} does not do inpainting (no mask input)")));
        }
        (Some(image), None, Some((image_field, strength_field)), _) => {
            input.insert(image_field.into(), png_data_uri(image)?.into());
            if let Some(s) = req.strength {
                input.insert(strength_field.into(), json!(s.clamp(0.0, 1.0)));
            }
        }
        (Some(_), None, None, _) => {
            return Err(PluginError::Unsupported(format!("{model} takes no input image without a mask")));
        }
        (None, None, _, _) => {}
    }

    if spec.negative_prompt {
        input.insert("prompt".into(), req.prompt.clone().into());
        if let Some(n) = req.negative_prompt.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            input.insert("negative_prompt".into(), n.into());
        }
    } else {
        input.insert("prompt".into(), prompt_with_avoid(&req.prompt, req.negative_prompt.as_deref()).into());
    }

    match spec.size {
        Size::Ratios(list) => {
            input.insert("aspect_ratio".into(), nearest(list, req.width, req.height, ':').into());
        }
        Size::Sizes(list) => {
            input.insert("size".into(), nearest(list, req.width, req.height, 'x').into());
        }
        Size::Custom { min, max, multiple } => {
            let round = |v: u32| ((v + multiple / 2) / multiple * multiple).clamp(min, max);
            input.insert("aspect_ratio".into(), "custom".into());
            input.insert("width".into(), round(req.width).into());
            input.insert("height".into(), round(req.height).into());
        }
    }

    if spec.num_outputs {
        input.insert("num_outputs".into(), req.n.into());
    }
    let seed = spec.seed_max.map(|max| if max == u32::MAX { req.seed } else { req.seed % (max + 1) });
    if let Some(seed) = seed {
        input.insert("seed".into(), seed.into());
    }
    if let Some((field, default, min, max)) = spec.steps {
        let steps = req.steps.unwrap_or_else(|| match req.quality.as_deref() {
            Some("draft") => (default * 3 / 5).max(min),
            Some("high") => (default * 3 / 2).min(max),
            _ => default,
        });
        input.insert(field.into(), steps.clamp(min, max).into());
    }
    if let (Some((field, min, max)), Some(g)) = (spec.guidance, req.guidance_scale) {
        input.insert(field.into(), json!(g.clamp(min, max)));
    }
    if spec.png {
        input.insert("output_format".into(), "png".into());
    }
    match (spec.flavor, req.style_hint.as_deref()) {
        (Flavor::Recraft, Some(hint)) => {
            if let Some(style) = recraft_style(hint) {
                input.insert("style".into(), style.into());
            }
        }
        (Flavor::Ideogram, Some(hint)) => {
            input.insert("style_type".into(), ideogram_style(hint).into());
        }
        _ => {}
    }
    easel_plugin_sdk::provider::merge_options(&mut input, &req.options_json, RESERVED_KEYS)?;
    Ok(Input { input, seed })
}

/// Easel's masks repaint white; some models repaint black.
fn inverted(mask: &Image) -> Image {
    let mut pixels = mask.pixels.clone();
    for px in pixels.chunks_exact_mut(4) {
        px[0] = 255 - px[0];
        px[1] = 255 - px[1];
        px[2] = 255 - px[2];
        px[3] = 255;
    }
    Image { width: mask.width, height: mask.height, pixels }
}

/// The `list` entry drawing `width`×`height`, or the one of nearest ratio, as `"W:H"` (`sep`
/// `:`, ratio) or `"WxH"` (`sep` `x`, pixels).
pub fn nearest(list: &[(u32, u32, u32, u32)], width: u32, height: u32, sep: char) -> String {
    let target = (f64::from(width.max(1)) / f64::from(height.max(1))).ln();
    let pick = list.iter().find(|&&(_, _, w, h)| w == width && h == height).or_else(|| {
        list.iter().min_by(|a, b| {
            let da = ((f64::from(a.2) / f64::from(a.3)).ln() - target).abs();
            let db = ((f64::from(b.2) / f64::from(b.3)).ln() - target).abs();
            da.total_cmp(&db)
        })
    });
    match (pick, sep) {
        (Some(&(_, _, w, h)), 'x') => format!("{w}x{h}"),
        (Some(&(rw, rh, _, _)), _) => format!("{rw}:{rh}"),
        (None, _) => "1:1".into(),
    }
}

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

fn ideogram_style(hint: &str) -> &'static str {
    let h = hint.to_ascii_lowercase();
    if ["photo", "realistic", "cinematic", "portrait"].iter().any(|k| h.contains(k)) {
        "Realistic"
    } else if ["vector", "icon", "logo", "design", "poster", "typograph", "flat"].iter().any(|k| h.contains(k)) {
        "Design"
    } else {
        "General"
    }
}

/// Where a prediction stands.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    /// `starting` (booting a model) or `processing`.
    Running {
        /// True once `processing`.
        processing: bool,
    },
    /// `succeeded`.
    Succeeded,
    /// `failed`, with the error text.
    Failed(String),
    /// `canceled` (or `aborted`).
    Canceled,
}

/// A prediction object.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Its id.
    pub id: String,
    /// Where it stands.
    pub state: State,
    /// `urls.get`.
    pub get_url: Option<String>,
    /// `urls.cancel`.
    pub cancel_url: Option<String>,
    /// The whole object, for the output and the metadata.
    pub raw: Value,
}

/// Parse a prediction.
pub fn parse_prediction(body: &[u8]) -> Result<Prediction, PluginError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| PluginError::Http(format!("malformed response: {e}")))?;
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| PluginError::Http("malformed response: the prediction has no id".into()))?
        .to_string();
    let state = match v.get("status").and_then(Value::as_str) {
        Some("starting") => State::Running { processing: false },
        Some("processing") => State::Running { processing: true },
        Some("succeeded") => State::Succeeded,
        Some("failed") => State::Failed(match v.get("error") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => "the prediction failed without an error message".into(),
            Some(other) => other.to_string(),
        }),
        Some("canceled") | Some("aborted") => State::Canceled,
        other => return Err(PluginError::Http(format!("malformed response: unknown prediction status {other:?}"))),
    };
    let url = |k: &str| v.get("urls").and_then(|u| u.get(k)).and_then(Value::as_str).map(str::to_string);
    Ok(Prediction { id, state, get_url: url("get"), cancel_url: url("cancel"), raw: v })
}

/// The last non-empty line of the logs, and the percentage of a progress bar on it
/// (`" 50%|█████     | 14/28"`).
pub fn log_progress(raw: &Value) -> Option<(String, Option<f32>)> {
    let logs = raw.get("logs").and_then(Value::as_str)?;
    let line = logs.rsplit(['\n', '\r']).map(str::trim).find(|l| !l.is_empty())?;
    let percent = line
        .split_once("%|")
        .and_then(|(before, _)| before.rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<f32>().ok())
        .filter(|p| (0.0..=100.0).contains(p));
    Some((short(line, 60), percent))
}

/// The seed the logs report (`Using seed: 1234`), if any.
pub fn logged_seed(raw: &Value) -> Option<u32> {
    let logs = raw.get("logs").and_then(Value::as_str)?;
    let at = logs.find("Using seed:")?;
    logs[at + "Using seed:".len()..].split_whitespace().next()?.parse::<u64>().ok().map(|s| s as u32)
}

/// The images of a succeeded prediction: `output` as one URL or a list of URLs (data URIs are
/// decoded), with `seed + i` (the logged seed when the model reports one).
pub fn outputs(
    p: &Prediction,
    req: &GenerateRequest,
    sent_seed: Option<u32>,
) -> Result<Vec<(ImageData, u32)>, PluginError> {
    let urls: Vec<&str> = match p.raw.get("output") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().ok_or_else(|| PluginError::Http("malformed response: output items are not URLs".into()))
            })
            .collect::<Result<_, _>>()?,
        Some(Value::Null) | None => Vec::new(),
        Some(_) => {
            return Err(PluginError::Http("malformed response: output is neither a URL nor a list of URLs".into()));
        }
    };
    if urls.len() < req.n as usize {
        return Err(PluginError::Http(format!("Replicate returned {} images for n = {}", urls.len(), req.n)));
    }
    let seed = logged_seed(&p.raw).or(sent_seed).unwrap_or(req.seed);
    urls.into_iter()
        .take(req.n as usize)
        .enumerate()
        .map(|(i, url)| {
            let data = match decode_data_uri(url) {
                Some(bytes) => ImageData::Encoded(bytes),
                None if url.starts_with("https://") || url.starts_with("http://") => ImageData::Url(url.to_string()),
                None => {
                    return Err(PluginError::Http(format!("malformed response: output[{i}] is not an http(s) URL")));
                }
            };
            Ok((data, seed.wrapping_add(i as u32)))
        })
        .collect()
}

/// Metadata of a finished prediction: id, model, version, metrics, timestamps.
pub fn metadata(p: &Prediction) -> Value {
    let mut meta = Map::new();
    meta.insert("provider".into(), "replicate".into());
    meta.insert("prediction_id".into(), p.id.clone().into());
    for key in ["model", "version", "metrics", "created_at", "started_at", "completed_at"] {
        if let Some(value) = p.raw.get(key).filter(|x| !x.is_null()) {
            meta.insert(key.into(), value.clone());
        }
    }
    if let Some(seed) = logged_seed(&p.raw) {
        meta.insert("seed".into(), seed.into());
    }
    Value::Object(meta)
}

/// The error of a failed prediction: safety refusals are `content-blocked`, input complaints
/// `invalid-input`, anything else `http` (the host may retry: most failures are transient).
pub fn error_from_failure(error: &str) -> PluginError {
    let e = error.to_ascii_lowercase();
    let message = short(error, 500);
    if ["nsfw", "safety", "sensitive", "flagged", "content policy", "moderation"].iter().any(|k| e.contains(k)) {
        PluginError::ContentBlocked(message)
    } else if ["invalid", "must be", "validation", "not a valid", "is required", "out of range"]
        .iter()
        .any(|k| e.contains(k))
    {
        PluginError::InvalidInput(message)
    } else {
        PluginError::Http(format!("prediction failed: {message}"))
    }
}

/// Replicate's words from an RFC 7807 body (`detail`, else `title`, plus `invalid_fields`).
pub fn problem(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return if text.trim().is_empty() { "no details".into() } else { short(&text, 300) };
    };
    let main = v
        .get("detail")
        .and_then(Value::as_str)
        .or_else(|| v.get("title").and_then(Value::as_str))
        .map_or_else(|| short(&v.to_string(), 300), |s| short(s, 500));
    let fields: Vec<&str> = v
        .get("invalid_fields")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(|x| x.get("field").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    if fields.is_empty() || fields.iter().all(|f| main.contains(f)) {
        main
    } else {
        format!("{main} (fields: {})", fields.join(", "))
    }
}

/// The plugin error for a non-2xx answer: 402 (no credit) is `denied`; otherwise the SDK's
/// status mapping (401/403 unauthorized, 429/5xx retryable with `Retry-After`, 400/404/422
/// invalid-input) with Replicate's `detail`.
pub fn error_from_response(response: &Response) -> PluginError {
    let message = problem(&response.body);
    if response.status == 402 {
        return PluginError::Denied(format!("402 {message}"));
    }
    http::status_error(response, message)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalogue::spec;
    use crate::util::parse_model_id;

    pub(crate) fn request(model: &str) -> GenerateRequest {
        GenerateRequest {
            model: model.into(),
            prompt: "a red fox".into(),
            negative_prompt: None,
            width: 1344,
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

    fn build_for(req: &GenerateRequest) -> Result<Input, PluginError> {
        let id = parse_model_id(&req.model).unwrap();
        build(spec(&id), &req.model, req)
    }

    fn tiny() -> Image {
        Image { width: 1, height: 1, pixels: vec![255, 255, 255, 255] }
    }

    #[test]
    fn flux_dev() {
        let mut req = request("black-forest-labs/flux-dev");
        req.n = 3;
        req.guidance_scale = Some(3.0);
        req.negative_prompt = Some("blur".into());
        req.quality = Some("draft".into());
        let i = build_for(&req).unwrap();
        let v = Value::Object(i.input);
        assert_eq!(v["aspect_ratio"], "16:9");
        assert_eq!(v["num_outputs"], 3);
        assert_eq!(v["seed"], 7);
        assert_eq!(v["guidance"], 3.0);
        assert_eq!(v["num_inference_steps"], 16);
        assert_eq!(v["output_format"], "png");
        assert_eq!(v["prompt"], "a red fox\n\nAvoid: blur");
        req.input_image = Some(tiny());
        req.strength = Some(0.7);
        let v = Value::Object(build_for(&req).unwrap().input);
        assert!(v["image"].as_str().unwrap().starts_with("data:image/png;base64,"));
        assert_eq!(v["prompt_strength"], json!(0.7f32));
    }

    #[test]
    fn custom_sizes_sizes_and_seeds() {
        let mut req = request("black-forest-labs/flux-1.1-pro");
        req.width = 1000;
        req.height = 250;
        let v = Value::Object(build_for(&req).unwrap().input);
        assert_eq!(
            (v["aspect_ratio"].as_str(), v["width"].as_u64(), v["height"].as_u64()),
            (Some("custom"), Some(992), Some(256))
        );
        assert!(v.get("num_outputs").is_none());
        let mut req = request("recraft-ai/recraft-v3");
        req.width = 1820;
        req.height = 1024;
        req.style_hint = Some("photo".into());
        let i = build_for(&req).unwrap();
        assert_eq!(i.input["size"], "1820x1024");
        assert_eq!(i.input["style"], "realistic_image");
        assert_eq!(i.seed, None);
        assert!(!i.input.contains_key("seed"));
        let mut req = request("ideogram-ai/ideogram-v3-turbo");
        req.seed = u32::MAX;
        req.width = 1280;
        req.height = 800;
        let i = build_for(&req).unwrap();
        assert_eq!(i.seed, Some(u32::MAX % 2_147_483_648));
        assert_eq!(i.input["aspect_ratio"], "16:10");
        assert_eq!(nearest(crate::catalogue::FLUX_RATIOS, 1920, 1080, ':'), "16:9");
    }

    #[test]
    fn ideogram_inpainting_inverts_the_mask() {
        let mut req = request("ideogram-ai/ideogram-v3-turbo");
        req.input_image = Some(tiny());
        req.mask = Some(tiny());
        let i = build_for(&req).unwrap();
        let mask = decode_data_uri(i.input["mask"].as_str().unwrap()).unwrap();
        assert!(mask.starts_with(b"\x89PNG"));
        assert_eq!(inverted(&tiny()).pixels, vec![0, 0, 0, 255]);
        req.mask = None;
        assert!(matches!(build_for(&req), Err(PluginError::Unsupported(_))));
        let mut req = request("black-forest-labs/flux-schnell");
        req.input_image = Some(tiny());
        assert!(matches!(build_for(&req), Err(PluginError::Unsupported(_))));
    }

    #[test]
    fn native_negative_and_options() {
        let mut req = request("stability-ai/stable-diffusion-3.5-large");
        req.negative_prompt = Some("text".into());
        req.guidance_scale = Some(40.0);
        req.options_json = r#"{"output_format":"webp"}"#.into();
        let i = build_for(&req).unwrap();
        assert_eq!(i.input["negative_prompt"], "text");
        assert_eq!(i.input["cfg"], 10.0);
        assert_eq!(i.input["output_format"], "webp");
        req.options_json = r#"{"image":"https://elsewhere/x.png"}"#.into();
        assert!(matches!(build_for(&req), Err(PluginError::InvalidInput(_))));
        let mut req = request("black-forest-labs/flux-schnell");
        req.n = 5;
        assert!(build_for(&req).is_err());
    }

    #[test]
    fn predictions() {
        let body = br#"{"id":"p1","model":"black-forest-labs/flux-dev","status":"processing","logs":"Using seed: 99\n 50%|#####     | 14/28 [00:01<00:01]\n","urls":{"get":"https://api.replicate.com/v1/predictions/p1","cancel":"https://api.replicate.com/v1/predictions/p1/cancel"}}"#;
        let p = parse_prediction(body).unwrap();
        assert_eq!(p.state, State::Running { processing: true });
        assert_eq!(p.cancel_url.as_deref(), Some("https://api.replicate.com/v1/predictions/p1/cancel"));
        let (line, pct) = log_progress(&p.raw).unwrap();
        assert!(line.starts_with("50%"));
        assert_eq!(pct, Some(50.0));
        assert_eq!(logged_seed(&p.raw), Some(99));
        assert_eq!(
            parse_prediction(br#"{"id":"p","status":"failed","error":"NSFW content detected"}"#).unwrap().state,
            State::Failed("NSFW content detected".into())
        );
        assert_eq!(parse_prediction(br#"{"id":"p","status":"canceled"}"#).unwrap().state, State::Canceled);
        assert!(parse_prediction(b"<html>").is_err());
    }

    #[test]
    fn outputs_as_string_or_list() {
        let mut req = request("black-forest-labs/flux-dev");
        req.n = 2;
        let p = parse_prediction(br#"{"id":"p","status":"succeeded","output":["https://replicate.delivery/a/out-0.png","https://replicate.delivery/a/out-1.png"]}"#).unwrap();
        let out = outputs(&p, &req, Some(7)).unwrap();
        assert_eq!(out.iter().map(|o| o.1).collect::<Vec<_>>(), vec![7, 8]);
        let p =
            parse_prediction(br#"{"id":"p","status":"succeeded","output":"https://replicate.delivery/a/out.webp"}"#)
                .unwrap();
        assert!(matches!(outputs(&p, &req, None), Err(PluginError::Http(_))));
        req.n = 1;
        assert!(matches!(&outputs(&p, &req, None).unwrap()[0].0, ImageData::Url(u) if u.ends_with(".webp")));
        let p = parse_prediction(br#"{"id":"p","status":"succeeded","output":{"x":1}}"#).unwrap();
        assert!(outputs(&p, &req, None).is_err());
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
            429,
            &[("retry-after", "3")],
            r#"{"title":"Request was throttled.","detail":"Request was throttled. Your rate limit resets in ~3s.","status":429}"#,
        ));
        assert!(
            matches!(e, PluginError::Retryable(ref h) if h.retry_after_ms == Some(3000) && h.message.contains("throttled"))
        );
        let e = error_from_response(&response(
            401,
            &[],
            r#"{"title":"Unauthenticated","detail":"You did not pass a valid authentication token","status":401}"#,
        ));
        assert!(matches!(e, PluginError::Unauthorized(_)));
        let e = error_from_response(&response(
            422,
            &[],
            r#"{"title":"Input validation failed","detail":"- input.aspect_ratio: must be one of …","status":422,"invalid_fields":[{"type":"enum","field":"input.aspect_ratio","description":"…"}]}"#,
        ));
        assert!(matches!(e, PluginError::InvalidInput(ref m) if m.contains("input.aspect_ratio")));
        let e = error_from_response(&response(
            404,
            &[],
            r#"{"title":"Not found","detail":"The requested resource could not be found.","status":404}"#,
        ));
        assert!(matches!(e, PluginError::InvalidInput(_)));
        assert!(matches!(error_from_response(&response(502, &[], "")), PluginError::Retryable(_)));
        assert!(matches!(
            error_from_response(&response(402, &[], r#"{"title":"Insufficient credit"}"#)),
            PluginError::Denied(_)
        ));
        assert!(matches!(
            error_from_failure("NSFW content detected. Try running it again, or try a different prompt."),
            PluginError::ContentBlocked(_)
        ));
        assert!(matches!(error_from_failure("CUDA out of memory"), PluginError::Http(_)));
        assert!(matches!(error_from_failure("prompt_strength must be between 0 and 1"), PluginError::InvalidInput(_)));
    }
}
