//! Creating, reading and listing generations.

use serde::{Deserialize, Serialize};

use super::{App, new_id, now_ms};
use crate::auth::Principal;
use crate::auth::gcra::{Counted, RateState};
use crate::db::accounts::{Admission, Reservation};
use crate::db::{GenerationQuery, GenerationRow, ImageRow};
use crate::error::{AppError, AppResult, ErrorCode, FieldError};
use crate::imaging::{self, DEFAULT_PIXELS, MAX_SIDE, MIN_SIDE, Ratio};
use crate::plugins::runtime::abi;

/// A generation request as the client sent it, before validation. Numbers are wide so that
/// an out-of-range value gets a message naming the field, not a parse error.
#[derive(Clone, Debug, Default)]
pub struct NewGeneration {
    /// 1..=4000 characters.
    pub prompt: Option<String>,
    /// ≤ 2000 characters.
    pub negative_prompt: Option<String>,
    /// `provider/model`; default from config.
    pub model: Option<String>,
    /// `"W:H"`.
    pub aspect_ratio: Option<String>,
    /// Preset name or `"WxH"`.
    pub size: Option<String>,
    /// 64..=4096, with `height`.
    pub width: Option<i64>,
    /// 64..=4096, with `width`.
    pub height: Option<i64>,
    /// 1..=4.
    pub n: Option<i64>,
    /// 0..=4294967295.
    pub seed: Option<i64>,
    /// 1..=100.
    pub steps: Option<i64>,
    /// 0..=20.
    pub guidance_scale: Option<f64>,
    /// `draft`, `standard`, `high`.
    pub quality: Option<String>,
    /// `png`, `jpeg`, `webp`.
    pub output_format: Option<String>,
    /// Object of string → JSON.
    pub metadata: Option<serde_json::Value>,
    /// Style template id (`/v1/styles`).
    pub style: Option<String>,
    /// Archetype id (`/v1/archetypes`).
    pub archetype: Option<String>,
    /// `center`, `top`, `bottom`, `left`, `right` or `smart`.
    pub crop_anchor: Option<String>,
    /// Make a transparent variant (default from the archetype).
    pub remove_background: Option<bool>,
    /// Include image bytes inline in the finished generation.
    pub return_base64: Option<bool>,
    /// The caller's own provider key, used for this generation only (never stored).
    pub provider_key: Option<crate::config::Secret>,
    /// Source image for img2img / editing / inpainting.
    pub input_image: Option<ImageSource>,
    /// Inpainting mask (white = repaint), the size of the input image.
    pub mask: Option<ImageSource>,
    /// img2img strength 0..=1 (how much of the input may change).
    pub strength: Option<f64>,
    /// LoRA adapters for models that take them.
    pub loras: Option<Vec<Lora>>,
    /// Provider-specific options (a JSON object, ≤ 16 KiB).
    pub provider_options: Option<serde_json::Value>,
}

/// What styling decided before validation: the prompt the provider gets and the hints.
#[derive(Clone, Debug, Default)]
struct Styling {
    /// The judged parameters ([`JUDGED_PARAMETERS`]) the request itself set, as opposed to
    /// the user's settings, the server's defaults or a style template.
    requested: Vec<&'static str>,
    provider_prompt: Option<String>,
    provider_negative_prompt: Option<String>,
    style_hint: Option<String>,
    remove_background_default: bool,
}

/// Request parameters a model takes only when its description lists them in
/// `supported_parameters`. The rest are the host's own work and every model takes them: the
/// size forms, `n` (up to `max_n`), `style` and `archetype` (prompt templates and crops),
/// `negative_prompt` (merged into the prompt as "Avoid: …" for a model that does not list
/// it), the output options; `input_image` and `mask` are judged by the model's `kinds`.
pub const JUDGED_PARAMETERS: &[&str] = &["seed", "steps", "guidance_scale", "quality", "strength", "loras"];

/// A request parameter the model does not take, dropped from a generation accepted under
/// `strict_parameters = false`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ParameterWarning {
    /// The request field.
    pub field: String,
    /// What happened to it.
    pub message: String,
}

/// The judged parameters ([`JUDGED_PARAMETERS`]) `input` sets.
fn given_parameters(input: &NewGeneration) -> Vec<&'static str> {
    JUDGED_PARAMETERS
        .iter()
        .copied()
        .filter(|p| match *p {
            "seed" => input.seed.is_some(),
            "steps" => input.steps.is_some(),
            "guidance_scale" => input.guidance_scale.is_some(),
            "quality" => input.quality.is_some(),
            "strength" => input.strength.is_some(),
            "loras" => input.loras.as_ref().is_some_and(|l| !l.is_empty()),
            _ => false,
        })
        .collect()
}

/// What a fallback model `used` (which takes `supported`) ignored of the parameters sent for
/// the model asked for: the request was judged against that one, so the generation says so.
/// `seed` is left out (every generation has one) and so are LoRAs (a fallback without them
/// is never used).
fn fallback_warnings(spec: &GenerationSpec, used: &str, supported: &[String]) -> Vec<ParameterWarning> {
    let given = [
        ("steps", spec.steps.is_some()),
        ("guidance_scale", spec.guidance_scale.is_some()),
        ("quality", spec.quality.is_some()),
        ("strength", spec.strength.is_some()),
    ];
    given
        .into_iter()
        .filter(|(p, given)| *given && !supported.iter().any(|s| s == p))
        .map(|(p, _)| ParameterWarning {
            field: p.into(),
            message: format!("ignored: {used}, the fallback model that drew the images, does not take {p}"),
        })
        .collect()
}

/// Crop anchors.
pub const ANCHORS: &[&str] = &["center", "top", "bottom", "left", "right", "smart"];

/// A validated request: what the job runs, stored as `request_json` and echoed to clients.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GenerationSpec {
    /// The prompt.
    pub prompt: String,
    /// The negative prompt.
    pub negative_prompt: Option<String>,
    /// `provider/model`.
    pub model: String,
    /// Exact ratio of the delivered images, reduced (`"2:7"`).
    pub aspect_ratio: String,
    /// Width of the delivered images.
    pub width: u32,
    /// Height of the delivered images.
    pub height: u32,
    /// Width the provider draws (a native size, or `width`).
    pub draw_width: u32,
    /// Height the provider draws.
    pub draw_height: u32,
    /// Images to make.
    pub n: u32,
    /// Seed of the first image.
    pub seed: u32,
    /// Sampling steps.
    pub steps: Option<u32>,
    /// Classifier-free guidance.
    pub guidance_scale: Option<f32>,
    /// `draft`, `standard`, `high`.
    pub quality: Option<String>,
    /// Stored format.
    pub output_format: String,
    /// Style template applied.
    #[serde(default)]
    pub style: Option<String>,
    /// Archetype applied.
    #[serde(default)]
    pub archetype: Option<String>,
    /// Crop anchor.
    #[serde(default = "center")]
    pub crop_anchor: String,
    /// Make a transparent variant.
    #[serde(default)]
    pub remove_background: bool,
    /// Inline the image bytes in the finished generation.
    #[serde(default)]
    pub return_base64: bool,
    /// Hint for the provider (from the style or archetype).
    #[serde(default)]
    pub style_hint: Option<String>,
    /// The prompt as sent to the provider (after style and archetype).
    #[serde(default)]
    pub provider_prompt: Option<String>,
    /// The negative prompt as sent to the provider.
    #[serde(default)]
    pub provider_negative_prompt: Option<String>,
    /// The caller supplied their own provider key (the key itself is never stored).
    #[serde(default)]
    pub uses_caller_key: bool,
    /// The caller's tier may not spend the operator's provider keys (`tiers.<t>.bring_own_key`).
    #[serde(default)]
    pub bring_own_key: bool,
    /// Models to try, in order, when `model` is unavailable or exhausted (`[fallbacks]`,
    /// filtered by what the caller's tier may use).
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Blob key of the stored input image (img2img, editing, inpainting).
    #[serde(default)]
    pub input_image_key: Option<String>,
    /// Blob key of the stored inpainting mask (same size as the input image; white = repaint).
    #[serde(default)]
    pub mask_key: Option<String>,
    /// img2img strength 0..=1.
    #[serde(default)]
    pub strength: Option<f32>,
    /// LoRA adapters.
    #[serde(default)]
    pub loras: Vec<Lora>,
    /// `provider_options`, passed to the provider plugin as given.
    #[serde(default)]
    pub provider_options: Option<serde_json::Value>,
    /// Request parameters the model does not take, dropped under `strict_parameters = false`.
    #[serde(default)]
    pub warnings: Vec<ParameterWarning>,
    /// `X-Request-Id` of the request that created the generation: every log line of its job,
    /// on whichever replica runs it, carries it. Not shown to clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A LoRA adapter: weights (URL or provider path) and strength.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lora {
    /// URL or provider-specific path of the weights.
    pub path: String,
    /// Strength, -4..=4 (1 = as trained).
    pub scale: f32,
}

/// An input image as a request gives it: exactly one of the three.
#[derive(Clone, Debug, Default)]
pub struct ImageSource {
    /// An image of yours in the gallery (`img_…`).
    pub image_id: Option<String>,
    /// A public http(s) URL, fetched by the server (no private addresses except the
    /// operator's `[inputs] allowed_private_origins`, at most `limits.max_upload_bytes`).
    pub url: Option<String>,
    /// Base64 PNG, JPEG or WebP bytes (a `data:` URI prefix is accepted).
    pub data: Option<String>,
}

fn center() -> String {
    "center".into()
}

/// A generation as clients see it, with its images.
#[derive(Clone, Debug)]
pub struct GenerationView {
    /// Stored row.
    pub row: GenerationRow,
    /// Parsed request.
    pub spec: GenerationSpec,
    /// Parsed metadata.
    pub metadata: serde_json::Value,
    /// Images when succeeded.
    pub images: Vec<ImageRow>,
    /// Jobs ahead when queued.
    pub queue_position: Option<i64>,
}

impl GenerationView {
    /// Is the generation in a final state?
    pub fn is_finished(&self) -> bool {
        is_final(&self.row.status)
    }
}

/// `succeeded`, `failed` and `canceled` are final.
pub fn is_final(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "canceled")
}

const QUALITIES: &[&str] = &["draft", "standard", "high"];

impl App {
    /// Fetch, check and store the input image and mask of a generation under
    /// `inputs/<id>/`; returns their blob keys (image first). The image must decode as PNG,
    /// JPEG or WebP within `limits.max_pixels`; a mask must have the image's size. An
    /// `image_id` must be one of the caller's images; a `url` is fetched with
    /// the SSRF-safe client (public addresses only, `limits.max_upload_bytes` at most, 20 s).
    async fn store_inputs(
        &self,
        principal: &Principal,
        id: &str,
        (image, mask): (Option<ImageSource>, Option<ImageSource>),
    ) -> AppResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut size = None;
        for (field, source) in [("input_image", image), ("mask", mask)] {
            let Some(source) = source else { continue };
            let bytes = self.read_source(principal, field, source).await?;
            let max_pixels = self.config.limits.max_pixels;
            let probe = bytes.clone();
            let decoded = tokio::task::spawn_blocking(move || imaging::decode(&probe, max_pixels))
                .await
                .map_err(anyhow::Error::from)?
                .map_err(|e| AppError::field(field, format!("is not a readable PNG, JPEG or WebP image: {e}")))?;
            let dims = decoded.dimensions();
            match size {
                None => size = Some(dims),
                Some(expected) if expected != dims => {
                    return Err(AppError::field(
                        "mask",
                        format!(
                            "is {}x{} but the input image is {}x{}; they must be the same size",
                            dims.0, dims.1, expected.0, expected.1
                        ),
                    ));
                }
                Some(_) => {}
            }
            let key = format!("inputs/{id}/{field}");
            self.blobs.put(&key, bytes::Bytes::from(bytes)).await?;
            keys.push(key);
        }
        Ok(keys)
    }

    /// The bytes of one input image; any form over `limits.max_upload_bytes` is a 413 naming
    /// the field.
    async fn read_source(&self, principal: &Principal, field: &str, source: ImageSource) -> AppResult<Vec<u8>> {
        let limit = self.config.limits.max_upload_bytes;
        let too_large = |field: &str, what: String| {
            AppError::coded(
                ErrorCode::PayloadTooLarge,
                format!("{field}: {what}; the largest upload is {limit} bytes (limits.max_upload_bytes)"),
            )
        };
        if let Some(image_id) = source.image_id {
            let row = self.db.get_image(&image_id).await?.filter(|row| principal.sees(row.owner_id.as_deref()));
            let Some(row) = row else {
                return Err(AppError::field(format!("{field}.image_id"), format!("no image {image_id:?} of yours")));
            };
            return Ok(self.blobs.get(&row.blob_key).await?.to_vec());
        }
        if let Some(data) = source.data {
            use base64::Engine as _;
            let payload = match data.split_once(";base64,") {
                Some((prefix, rest)) if prefix.starts_with("data:") => rest,
                _ => data.as_str(),
            };
            let field = format!("{field}.data");
            // Refused before decoding: the decoded size is known from the text's length.
            let payload = payload.trim();
            let decoded_len = payload.trim_end_matches('=').len() * 3 / 4;
            if decoded_len > limit {
                return Err(too_large(&field, format!("the decoded image is {decoded_len} bytes")));
            }
            return base64::engine::general_purpose::STANDARD
                .decode(payload)
                .map_err(|e| AppError::field(&field, format!("is not valid base64: {e}")));
        }
        let url = source.url.unwrap_or_default();
        let field = format!("{field}.url");
        let private_origins = self.config.inputs.private_origins();
        crate::plugins::http::fetch_public(&url, limit as u64, std::time::Duration::from_secs(20), &private_origins)
            .await
            .map_err(|e| match e {
                crate::plugins::http::HttpFailure::TooLarge(_) => {
                    too_large(&field, "the image at this URL is larger".to_string())
                }
                other => AppError::field(&field, crate::plugins::http::describe_error(&other)),
            })
    }

    /// Validate `input` against the request rules and the model's description.
    /// Every judged parameter `input` sets counts as the caller's own (see
    /// [`JUDGED_PARAMETERS`] and `strict_parameters`).
    pub fn validate(&self, input: NewGeneration) -> AppResult<(GenerationSpec, serde_json::Value)> {
        let styling = Styling { requested: given_parameters(&input), ..Styling::default() };
        self.validate_styled(input, styling, Vec::new())
    }

    fn validate_styled(
        &self,
        mut input: NewGeneration,
        styling: Styling,
        mut errors: Vec<FieldError>,
    ) -> AppResult<(GenerationSpec, serde_json::Value)> {
        // Honest parameters: what the model does not take is refused (strict) or dropped with
        // a warning, when the caller asked for it; a value from the user's settings, the
        // server's defaults or a style template is only a default, dropped without a word.
        // Judged against the model asked for; fallbacks take what they can (see `plan_call`).
        let model_id = input.model.clone().unwrap_or_else(|| self.config.default_model().to_string());
        let model = self.plugins.find_model(&model_id).map(|(_, m)| m);
        let mut warnings = Vec::new();
        let mut dropped = Vec::new();
        if let Some(m) = &model {
            for p in given_parameters(&input) {
                if m.supported_parameters.iter().any(|s| s == p) {
                    continue;
                }
                if styling.requested.contains(&p) {
                    let takes = m.supported_parameters.join(", ");
                    if self.config.strict_parameters {
                        errors.push(FieldError {
                            field: p.into(),
                            message: format!(
                                "{model_id} does not take {p} (it takes: {takes}); leave it out or choose a model \
                                 whose supported_parameters in GET /v1/models list it"
                            ),
                        });
                        continue;
                    }
                    warnings.push(ParameterWarning {
                        field: p.into(),
                        message: format!("dropped: {model_id} does not take {p} (it takes: {takes})"),
                    });
                }
                // Dropped once its value is checked: a bad value is an error either way.
                dropped.push(p);
            }
        }
        let mut err = |field: &str, message: String| errors.push(FieldError { field: field.into(), message });

        let prompt = input.prompt.unwrap_or_default();
        if prompt.trim().is_empty() {
            err("prompt", "is required and must not be blank".into());
        } else if prompt.chars().count() > 4000 {
            err("prompt", format!("is {} characters; the limit is 4000", prompt.chars().count()));
        }
        let negative_prompt = input.negative_prompt.filter(|s| !s.trim().is_empty());
        if let Some(np) = &negative_prompt
            && np.chars().count() > 2000
        {
            err("negative_prompt", format!("is {} characters; the limit is 2000", np.chars().count()));
        }

        if model.is_none() {
            err("model", format!("{model_id:?} is not a known model; GET /v1/models lists them"));
        }

        let n = input.n.unwrap_or(1);
        let max_n = model.as_ref().map_or(4, |m| m.max_n.min(4));
        if !(1..=i64::from(max_n)).contains(&n) {
            err("n", format!("must be 1 to {max_n} for this model, got {n}"));
        }
        let mut seed = match input.seed {
            None => rand::random::<u32>(),
            Some(s) => u32::try_from(s).unwrap_or_else(|_| {
                err("seed", format!("must be 0 to 4294967295, got {s}"));
                0
            }),
        };
        let mut steps = input.steps.and_then(|s| {
            let ok = (1..=100).contains(&s);
            if !ok {
                err("steps", format!("must be 1 to 100, got {s}"));
            }
            ok.then_some(s as u32)
        });
        let mut guidance_scale = input.guidance_scale.and_then(|g| {
            let ok = g.is_finite() && (0.0..=20.0).contains(&g);
            if !ok {
                err("guidance_scale", format!("must be 0 to 20, got {g}"));
            }
            ok.then_some(g as f32)
        });
        if let Some(q) = &input.quality
            && !QUALITIES.contains(&q.as_str())
        {
            err("quality", format!("must be one of draft, standard, high; got {q:?}"));
        }
        let crop_anchor = input.crop_anchor.unwrap_or_else(|| "center".into());
        if !ANCHORS.contains(&crop_anchor.as_str()) {
            err("crop_anchor", format!("must be one of {}; got {crop_anchor:?}", ANCHORS.join(", ")));
        }
        let remove_background = input.remove_background.unwrap_or(styling.remove_background_default);
        if (remove_background || crop_anchor != "center") && self.plugins.catalog().default_cropper().is_none() {
            let field = if remove_background { "remove_background" } else { "crop_anchor" };
            err(field, "needs a cropper plugin, and none is loaded".into());
        }
        let output_format = input.output_format.unwrap_or_else(|| "png".into());
        let format = imaging::Format::parse(&output_format);
        if format.is_none() {
            err("output_format", format!("must be png, jpeg or webp; got {output_format:?}"));
        }
        let metadata = input.metadata.unwrap_or_else(|| serde_json::json!({}));
        match &metadata {
            serde_json::Value::Object(map) => {
                if map.len() > 64 || metadata.to_string().len() > 16 * 1024 {
                    err("metadata", "must have at most 64 keys and 16 KiB of JSON".into());
                }
            }
            _ => err("metadata", "must be a JSON object".into()),
        }

        let mut strength = input.strength.and_then(|v| {
            let ok = v.is_finite() && (0.0..=1.0).contains(&v);
            if !ok {
                err("strength", format!("must be 0 to 1, got {v}"));
            }
            ok.then_some(v as f32)
        });
        for (field, source) in [("input_image", &input.input_image), ("mask", &input.mask)] {
            if let Some(source) = source {
                let given = [source.image_id.is_some(), source.url.is_some(), source.data.is_some()];
                if given.iter().filter(|g| **g).count() != 1 {
                    err(field, "give exactly one of image_id, url or data".into());
                }
            }
        }
        if input.input_image.is_none() {
            if strength.is_some() {
                err("strength", "applies to an input_image; none was given".into());
            }
            if input.mask.is_some() {
                err("mask", "needs the input_image it masks".into());
            }
        }
        if let Some(m) = &model {
            use abi::ModelKind;
            let takes_image = m.kinds.iter().any(|k| matches!(k, ModelKind::ImageToImage | ModelKind::Inpainting));
            if input.input_image.is_some() && !takes_image {
                err("input_image", format!("{model_id} does not take an input image (text-to-image only)"));
            }
            if input.mask.is_some() && !m.kinds.contains(&ModelKind::Inpainting) {
                err("mask", format!("{model_id} does not do inpainting"));
            }
            if input.input_image.is_none() && !m.kinds.contains(&ModelKind::TextToImage) {
                err("input_image", format!("is required: {model_id} edits or transforms an image"));
            }
        }
        let mut loras = input.loras.unwrap_or_default();
        if !loras.is_empty() {
            if loras.len() > 8 {
                err("loras", format!("at most 8, got {}", loras.len()));
            }
            for (i, l) in loras.iter().enumerate() {
                if l.path.trim().is_empty() || l.path.len() > 2048 || l.path.chars().any(char::is_control) {
                    err(&format!("loras[{i}].path"), "must be 1 to 2048 printable characters".into());
                }
                if !(l.scale.is_finite() && (-4.0..=4.0).contains(&l.scale)) {
                    err(&format!("loras[{i}].scale"), format!("must be -4 to 4, got {}", l.scale));
                }
            }
        }
        let provider_options = match input.provider_options {
            None => None,
            Some(serde_json::Value::Object(map)) if map.is_empty() => None,
            Some(options @ serde_json::Value::Object(_)) => {
                if options.to_string().len() > 16 * 1024 {
                    err("provider_options", "must be at most 16 KiB of JSON".into());
                } else if model.as_ref().is_some_and(|m| m.options_schema.trim().is_empty()) {
                    err("provider_options", format!("{model_id} accepts no provider options"));
                }
                Some(options)
            }
            Some(_) => {
                err("provider_options", "must be a JSON object".into());
                None
            }
        };

        // Exactly one way to give the size.
        let forms =
            [input.aspect_ratio.is_some(), input.size.is_some(), input.width.is_some() || input.height.is_some()];
        let target = if forms.iter().filter(|f| **f).count() > 1 {
            err("aspect_ratio", "give at most one of aspect_ratio, size, or width and height".into());
            None
        } else if let Some(ar) = &input.aspect_ratio {
            match Ratio::parse(ar) {
                Ok(r) => Some((r.size_for_pixels(DEFAULT_PIXELS), false)),
                Err(m) => {
                    err("aspect_ratio", m);
                    None
                }
            }
        } else if let Some(size) = &input.size {
            match imaging::parse_size(size) {
                Ok(wh) => Some((wh, true)),
                Err(m) => {
                    err("size", m);
                    None
                }
            }
        } else if input.width.is_some() || input.height.is_some() {
            match (input.width, input.height) {
                (Some(w), Some(h)) => {
                    Some(((w.clamp(0, u32::MAX as i64) as u32, h.clamp(0, u32::MAX as i64) as u32), true))
                }
                (None, _) => {
                    err("width", "is required together with height".into());
                    None
                }
                (_, None) => {
                    err("height", "is required together with width".into());
                    None
                }
            }
        } else {
            Some((Ratio::new(1, 1).size_for_pixels(DEFAULT_PIXELS), false))
        };

        let mut sizes = None;
        if let Some(((w, h), explicit)) = target {
            let field = if input.size.is_some() { "size" } else { "width" };
            let side_ok = |v: u32| (MIN_SIDE..=MAX_SIDE).contains(&v);
            if explicit && (!side_ok(w) || !side_ok(h)) {
                err(
                    if input.size.is_some() {
                        "size"
                    } else if side_ok(w) {
                        "height"
                    } else {
                        "width"
                    },
                    format!("each side must be {MIN_SIDE} to {MAX_SIDE} pixels, got {w}x{h}"),
                );
            } else if u64::from(w) * u64::from(h) > self.config.limits.max_pixels {
                err(field, format!("{w}x{h} exceeds the limit of {} pixels", self.config.limits.max_pixels));
            } else if let Some(m) = &model {
                match draw_size(m, w, h) {
                    Ok(draw) => sizes = Some(((w, h), draw, explicit)),
                    Err(msg) => err(field, msg),
                }
            }
        }

        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        for p in dropped {
            match p {
                "seed" => seed = rand::random::<u32>(),
                "steps" => steps = None,
                "guidance_scale" => guidance_scale = None,
                "quality" => input.quality = None,
                "strength" => strength = None,
                "loras" => loras.clear(),
                _ => {}
            }
        }
        let ((w, h), (dw, dh), explicit) = sizes.expect("sizes are set when there are no errors");
        let ratio = Ratio::new(w, h);
        // Without an explicit size, a native provider's crop decides the final pixels.
        let (w, h) = if explicit || (dw, dh) == (w, h) {
            (w, h)
        } else {
            let (_, _, cw, ch) = imaging::center_crop(dw, dh, ratio);
            (cw, ch)
        };
        let spec = GenerationSpec {
            prompt,
            negative_prompt,
            model: model_id,
            aspect_ratio: ratio.to_string(),
            width: w,
            height: h,
            draw_width: dw,
            draw_height: dh,
            n: n as u32,
            seed,
            steps,
            guidance_scale,
            quality: input.quality,
            output_format: format.expect("checked").as_str().to_string(),
            style: input.style,
            archetype: input.archetype,
            crop_anchor,
            remove_background,
            return_base64: input.return_base64.unwrap_or(false),
            style_hint: styling.style_hint,
            provider_prompt: styling.provider_prompt,
            provider_negative_prompt: styling.provider_negative_prompt,
            uses_caller_key: input.provider_key.is_some(),
            bring_own_key: false,
            fallbacks: Vec::new(),
            input_image_key: None,
            mask_key: None,
            strength,
            loras,
            provider_options,
            warnings,
            request_id: None,
        };
        Ok((spec, metadata))
    }

    /// Validate and queue a generation for `principal`; returns its view (status `queued`).
    ///
    /// The caller's tier decides: the model must be allowed (403 `forbidden`), `n` and the
    /// size must stay within its `max_n` / `max_pixels` (422 naming the field), and admission
    /// reserves against its limits atomically: generations at once (429 `rate_limited`),
    /// images today (429 `quota_exceeded`, `Retry-After` until 00:00 UTC), generations per
    /// minute (429 `rate_limited`, `Retry-After` until one more fits) and credits (402
    /// `insufficient_credits`); a refused creation stores and reserves nothing. A retry with
    /// the same `Idempotency-Key` is never charged again.
    #[tracing::instrument(skip_all, fields(generation_id))]
    pub async fn create_generation(
        &self,
        principal: &Principal,
        mut input: NewGeneration,
        idempotency: Option<&super::Idempotency>,
    ) -> AppResult<GenerationView> {
        if let Some(key) = &input.provider_key
            && (key.expose().is_empty() || key.expose().len() > 4096 || key.expose().chars().any(char::is_control))
        {
            return Err(AppError::field("X-Provider-Key", "must be 1 to 4096 printable characters"));
        }
        if let Some(idem) = idempotency
            && let Some(replay) = self.db.idempotent_replay(&idem.db_key(now_ms())).await?
        {
            return self.get_generation(principal, &idem.check(replay)?).await;
        }
        let user = match &principal.user_id {
            Some(id) => self.db.user_by_id(id).await?,
            None => None,
        };
        let requested = given_parameters(&input);
        if let Some(user) = &user {
            apply_settings(&mut input, &user.settings_json);
        }
        self.apply_defaults(&mut input);
        // Authorize the model before validating anything else: a tier learns what it may not
        // use whether or not that model is installed.
        let model = input.model.clone().unwrap_or_else(|| self.config.default_model().to_string());
        let plausible = !model.is_empty()
            && model.len() <= 200
            && model.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b));
        if !plausible {
            return Err(AppError::field(
                "model",
                "must be provider/model: letters, digits and . _ - / : @ (at most 200)",
            ));
        }
        if !self.auth.policies.current().allows_model(&principal.tier, &model) {
            return Err(AppError::coded(
                ErrorCode::Forbidden,
                format!("the {} tier may not use the model {model:?}", principal.tier),
            ));
        }
        let style = input.style.clone();
        let (input, mut styling, errors) = self.style_request(input).await?;
        styling.requested = requested;
        let caller_key = input.provider_key.clone();
        let sources = (input.input_image.clone(), input.mask.clone());
        let (mut spec, metadata) = self.validate_styled(input, styling, errors)?;
        let tier = crate::auth::tier(&self.config, &principal.tier).clone();
        self.check_tier(principal, &tier, &spec)?;
        let policy = self.auth.policies.current();
        spec.bring_own_key = tier.bring_own_key;
        spec.fallbacks = self
            .config
            .fallbacks
            .get(&spec.model)
            .map(|chain| chain.iter().filter(|m| policy.allows_model(&principal.tier, m)).cloned().collect())
            .unwrap_or_default();
        if let Some((plugin, _)) = self.plugins.find_model(&spec.model)
            && plugin.needs_key()
            && caller_key.is_none()
            && spec.fallbacks.is_empty()
        {
            if tier.bring_own_key {
                return Err(AppError::coded(
                    ErrorCode::Forbidden,
                    format!(
                        "the {} tier brings its own key for {}: send it in the X-Provider-Key header",
                        principal.tier, spec.model
                    ),
                ));
            }
            if !plugin.operator_key_configured() {
                return Err(AppError::field(
                    "model",
                    format!(
                        "{} needs an API key and the server has none configured for the {} plugin; \
                         send your own in the X-Provider-Key header",
                        spec.model, plugin.manifest.id
                    ),
                ));
            }
        }
        let credits = match (tier.credits_per_image, &user) {
            (Some(per_image), Some(user)) => {
                self.refill_credits(user, &tier).await?;
                Some((user.id.clone(), (per_image * u64::from(spec.n)) as i64))
            }
            (Some(_), None) => {
                return Err(AppError::coded(
                    ErrorCode::InsufficientCredits,
                    format!("the {} tier pays with credits, which need an account", principal.tier),
                ));
            }
            (None, _) => None,
        };
        let id = new_id("gen");
        let stored_inputs = match self.store_inputs(principal, &id, sources).await {
            Ok(keys) => keys,
            Err(e) => {
                // The image may be stored already when the mask is refused.
                self.remove_inputs(&id).await;
                return Err(e);
            }
        };
        spec.input_image_key = stored_inputs.first().cloned();
        spec.mask_key = stored_inputs.get(1).cloned();
        let now = now_ms();
        let day_start = now - now.rem_euclid(86_400_000);
        let reservation = Reservation {
            subject: principal.quota_subject(),
            day_start,
            images_per_day: tier.images_per_day.map(|n| n as i64),
            max_concurrent: tier.max_concurrent.map(|n| n as i64),
            credits: credits.clone(),
            generations_per_minute: super::limits::generation_windows(&tier).minute,
        };
        let pinned_to = caller_key.is_some().then(|| self.replica_id.clone());
        if let Some(key) = caller_key {
            self.caller_keys
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone(), (key, std::time::Instant::now()));
        }
        tracing::Span::current().record("generation_id", id.as_str());
        spec.request_id = Some(crate::api::request_id()).filter(|r| !r.is_empty());
        let row = GenerationRow {
            id: id.clone(),
            owner_id: Some(principal.owner.clone()),
            status: "queued".into(),
            model: spec.model.clone(),
            request_json: serde_json::to_string(&spec).map_err(anyhow::Error::from)?,
            metadata_json: metadata.to_string(),
            progress: 0.0,
            stage: Some("queued".into()),
            attempts: 0,
            max_attempts: i64::from(self.config.jobs.max_attempts),
            error_code: None,
            error_message: None,
            provider_metadata_json: None,
            timings_json: None,
            created_at: now_ms(),
            started_at: None,
            completed_at: None,
            pinned_to,
            quota_subject: Some(reservation.subject.clone()),
            images_reserved: i64::from(spec.n),
            credits_charged: credits.map_or(0, |(_, cost)| cost),
            style,
            retries: 0,
            last_error_code: None,
            last_error_message: None,
            model_used: None,
        };
        // The caller's key is in memory before the row exists (a worker may claim the job at
        // once); it leaves again whenever no job of ours was stored.
        let key = idempotency.map(|idem| idem.db_key(now_ms()));
        let admitted = self.db.admit_generation(&row, &reservation, key.as_ref()).await;
        if !matches!(admitted, Ok(Admission::Accepted { .. })) {
            self.caller_keys.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            if !stored_inputs.is_empty()
                && let Err(e) = self.blobs.delete_prefix(&format!("inputs/{id}/")).await
            {
                tracing::warn!(error = ?e, "removing the inputs of a refused generation failed");
            }
        }
        match admitted? {
            Admission::Accepted { images_today, generations_tat } => {
                if let Some(limit) = tier.images_per_day {
                    crate::api::note_daily_remaining(limit as i64 - images_today);
                }
                let state = RateState { minute_tat: generations_tat.unwrap_or(0), hour_tat: 0 };
                if let Some(window) =
                    super::limits::generation_windows(&tier).status(Counted::Generations, state, true, row.created_at)
                {
                    crate::api::note_rate_window(window);
                }
            }
            Admission::Replay(replay) => {
                // A concurrent request with the same key won; this one stored nothing.
                let idem = idempotency.expect("a replay comes from an idempotency key");
                return self.get_generation(principal, &idem.check(replay)?).await;
            }
            Admission::Concurrency { active } => {
                return Err(AppError::Limited {
                    code: ErrorCode::RateLimited,
                    message: format!(
                        "the {} tier allows {active} generations queued or running at once; wait for one to finish",
                        principal.tier
                    ),
                    retry_after: 5,
                });
            }
            Admission::DailyQuota { used } => {
                let limit = tier.images_per_day.unwrap_or(0);
                crate::api::note_daily_remaining(limit as i64 - used);
                return Err(AppError::Limited {
                    code: ErrorCode::QuotaExceeded,
                    message: format!(
                        "the {} tier allows {limit} images per day; {used} are used and this request asks for {}",
                        principal.tier, spec.n
                    ),
                    retry_after: ((day_start + 86_400_000 - now) / 1000).max(1) as u64,
                });
            }
            Admission::Credits { balance } => {
                return Err(AppError::coded(
                    ErrorCode::InsufficientCredits,
                    format!("this generation costs {} credits and the balance is {balance}", row.credits_charged),
                ));
            }
            Admission::GenerationRate { tat } => {
                let state = RateState { minute_tat: tat, hour_tat: 0 };
                let Some(window) =
                    super::limits::generation_windows(&tier).status(Counted::Generations, state, false, row.created_at)
                else {
                    return Err(AppError::Internal(anyhow::anyhow!("refused by a generations window the tier lacks")));
                };
                crate::api::note_rate_window(window);
                return Err(window.refusal(&principal.tier));
            }
        }
        crate::metrics::METRICS.generations_created.with_label_values(&[spec.model.as_str()]).inc();
        tracing::info!(model = %spec.model, width = spec.width, height = spec.height, n = spec.n, "generation queued");
        self.publish(&id, "queued", 0.0, "queued");
        self.wake.notify_waiters();
        self.wake.notify_one();
        self.view(row).await
    }

    /// Apply the style template and the archetype: expand the prompt (style-pack plugin), fill
    /// in their default parameters where the request is silent, and collect provider hints.
    async fn style_request(&self, mut input: NewGeneration) -> AppResult<(NewGeneration, Styling, Vec<FieldError>)> {
        let mut errors = Vec::new();
        let mut styling = Styling::default();
        let catalog = self.plugins.catalog();
        let size_given =
            input.aspect_ratio.is_some() || input.size.is_some() || input.width.is_some() || input.height.is_some();
        let prompt = input.prompt.clone().unwrap_or_default();
        let mut provider_prompt = prompt.clone();
        let mut provider_negative = input.negative_prompt.clone().filter(|s| !s.trim().is_empty());
        if let Some(style_id) = &input.style {
            match catalog.style(style_id) {
                None => errors.push(FieldError {
                    field: "style".into(),
                    message: format!("{style_id:?} is not a known style; GET /v1/styles lists them"),
                }),
                Some((plugin, template)) if !prompt.trim().is_empty() => {
                    let request = crate::plugins::runtime::style_abi::StyleRequest {
                        prompt: prompt.clone(),
                        negative_prompt: provider_negative.clone(),
                    };
                    match plugin.apply_style(style_id.clone(), request).await {
                        Ok(styled) => {
                            provider_prompt = styled.prompt;
                            provider_negative = styled.negative_prompt;
                        }
                        Err(e) => {
                            return Err(AppError::coded(
                                crate::error::ErrorCode::PluginError,
                                format!("style {style_id:?} failed: {e}"),
                            ));
                        }
                    }
                    styling.style_hint = template.style_hint.clone();
                    let defaults: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&template.defaults_json).unwrap_or_default();
                    if !size_given && let Some(ar) = defaults.get("aspect_ratio").and_then(|v| v.as_str()) {
                        input.aspect_ratio = Some(ar.to_string());
                    }
                    if input.quality.is_none() {
                        input.quality = defaults.get("quality").and_then(|v| v.as_str()).map(str::to_string);
                    }
                    if input.steps.is_none() {
                        input.steps = defaults.get("steps").and_then(|v| v.as_i64());
                    }
                    if input.guidance_scale.is_none() {
                        input.guidance_scale = defaults.get("guidance_scale").and_then(|v| v.as_f64());
                    }
                }
                Some(_) => {}
            }
        }
        if let Some(archetype_id) = &input.archetype {
            match catalog.archetype(archetype_id) {
                None => errors.push(FieldError {
                    field: "archetype".into(),
                    message: format!("{archetype_id:?} is not a known archetype; GET /v1/archetypes lists them"),
                }),
                Some((_, archetype)) => {
                    if let Some(suffix) = archetype.prompt_suffix.as_deref().filter(|s| !s.is_empty()) {
                        provider_prompt = format!("{provider_prompt}, {suffix}");
                    }
                    if styling.style_hint.is_none() {
                        styling.style_hint = archetype.style_hint.clone();
                    }
                    styling.remove_background_default = archetype.remove_background;
                    if !size_given
                        && input.aspect_ratio.is_none()
                        && let Some(r) = archetype.preferred_ratio
                    {
                        input.aspect_ratio = Some(format!("{}:{}", r.width, r.height));
                    }
                }
            }
        }
        if provider_prompt != prompt || provider_negative != input.negative_prompt {
            styling.provider_prompt = Some(provider_prompt);
            styling.provider_negative_prompt = provider_negative;
        }
        Ok((input, styling, errors))
    }

    /// The tier's `n` and size limits for a validated request (the model was authorized
    /// before validation).
    fn check_tier(
        &self,
        principal: &Principal,
        tier: &crate::config::TierConfig,
        spec: &GenerationSpec,
    ) -> AppResult<()> {
        if let Some(max) = tier.max_n
            && spec.n > max
        {
            return Err(AppError::field(
                "n",
                format!("the {} tier allows at most {max} images per request", principal.tier),
            ));
        }
        if let Some(max) = tier.max_pixels
            && u64::from(spec.width) * u64::from(spec.height) > max
        {
            return Err(AppError::field(
                "size",
                format!(
                    "{}x{} is {} pixels; the {} tier allows at most {max}",
                    spec.width,
                    spec.height,
                    u64::from(spec.width) * u64::from(spec.height),
                    principal.tier
                ),
            ));
        }
        Ok(())
    }

    /// One generation with its images; 404 when it does not exist or is not the caller's.
    pub async fn get_generation(&self, principal: &Principal, id: &str) -> AppResult<GenerationView> {
        let row = self
            .db
            .get_generation(id)
            .await?
            .filter(|row| principal.sees(row.owner_id.as_deref()))
            .ok_or_else(|| AppError::not_found("generation", id))?;
        self.view(row).await
    }

    /// Cancel a generation that is queued, running or retrying; returns it, now `canceled`.
    ///
    /// A queued job never starts. A running one is abandoned by its worker (on this replica at
    /// once, on another within a heartbeat or at once where the database relays events); what
    /// it was making is not stored. 404 for an unknown id; 409 `invalid_state` when it has
    /// already finished.
    pub async fn cancel_generation(&self, principal: &Principal, id: &str) -> AppResult<GenerationView> {
        self.get_generation(principal, id).await?;
        if !self.db.cancel(id, now_ms()).await? {
            let view = self.get_generation(principal, id).await?;
            return Err(AppError::coded(
                crate::error::ErrorCode::InvalidState,
                format!("generation {id:?} has already {} and cannot be canceled", view.row.status),
            ));
        }
        self.caller_keys.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        tracing::info!(generation_id = %id, "generation canceled");
        self.publish(id, "canceled", 0.0, "canceled");
        if let Err(e) = self.db.refund_credits(Some(id)).await {
            tracing::warn!(error = ?e, generation_id = %id, "refunding credits failed; the periodic sweep will");
        }
        let view = self.get_generation(principal, id).await?;
        if view.spec.input_image_key.is_some() {
            self.remove_inputs(id).await;
        }
        crate::metrics::METRICS.generations_finished.with_label_values(&[view.row.model.as_str(), "canceled"]).inc();
        Ok(view)
    }

    /// Remove the stored input image and mask of a generation that reached its final state.
    pub(crate) async fn remove_inputs(&self, id: &str) {
        if let Err(e) = self.blobs.delete_prefix(&format!("inputs/{id}/")).await {
            tracing::warn!(error = ?e, generation_id = %id, "removing a generation's inputs failed");
        }
    }

    /// Newest first; returns the page and the cursor of the next page.
    pub async fn list_generations(
        &self,
        principal: &Principal,
        status: Option<String>,
        cursor: Option<String>,
        limit: u32,
    ) -> AppResult<(Vec<GenerationView>, Option<String>)> {
        const STATUSES: &[&str] = &["queued", "running", "retrying", "succeeded", "failed", "canceled"];
        if let Some(s) = &status
            && !STATUSES.contains(&s.as_str())
        {
            return Err(AppError::field("status", format!("must be one of {}; got {s:?}", STATUSES.join(", "))));
        }
        if !(1..=100).contains(&limit) {
            return Err(AppError::field("limit", format!("must be 1 to 100, got {limit}")));
        }
        if let Some(c) = &cursor
            && (!c.starts_with("gen_") || c.len() > 40)
        {
            return Err(AppError::field("cursor", "is not a cursor this server handed out"));
        }
        let mut rows = self
            .db
            .list_generations(&GenerationQuery { status, before: cursor, limit, owner: principal.owner_filter() })
            .await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id.clone())
        } else {
            None
        };
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.view(row).await?);
        }
        Ok((views, next))
    }

    /// One image row; 404 when it does not exist or is not the caller's.
    pub async fn get_image(&self, principal: &Principal, id: &str) -> AppResult<ImageRow> {
        self.db
            .get_image(id)
            .await?
            .filter(|row| principal.sees(row.owner_id.as_deref()))
            .ok_or_else(|| AppError::not_found("image", id))
    }

    /// The bytes of an image, converted to `format` when it differs from the stored one.
    pub async fn image_file(
        &self,
        principal: &Principal,
        id: &str,
        variant: Option<&str>,
        format: Option<&str>,
    ) -> AppResult<(Vec<u8>, imaging::Format)> {
        let wanted = match format {
            None => None,
            Some(f) => Some(
                imaging::Format::parse(f)
                    .ok_or_else(|| AppError::field("format", format!("must be png, jpeg or webp; got {f:?}")))?,
            ),
        };
        let image = self.get_image(principal, id).await?;
        let (key, stored_format) = match variant {
            None | Some("cropped") => (image.blob_key.clone(), image.format.clone()),
            Some(name @ ("original" | "transparent")) => {
                let variants: std::collections::BTreeMap<String, super::pipeline::StoredVariant> =
                    serde_json::from_str(&image.variants_json).unwrap_or_default();
                let v = variants.get(name).ok_or_else(|| {
                    AppError::coded(crate::error::ErrorCode::NotFound, format!("image {id:?} has no {name} variant"))
                })?;
                (v.key.clone(), v.format.clone())
            }
            Some(other) => {
                return Err(AppError::field(
                    "variant",
                    format!("must be original, cropped or transparent; got {other:?}"),
                ));
            }
        };
        let stored = imaging::Format::parse(&stored_format).unwrap_or(imaging::Format::Png);
        let bytes = self.blobs.get(&key).await?;
        let target = wanted.unwrap_or(stored);
        if target == stored {
            return Ok((bytes.to_vec(), stored));
        }
        let max_pixels = self.config.limits.max_pixels;
        let converted = tokio::task::spawn_blocking(move || {
            let img = imaging::decode(&bytes, max_pixels)?;
            imaging::encode(&img, target, 90)
        })
        .await
        .map_err(anyhow::Error::from)??;
        Ok((converted, target))
    }

    async fn view(&self, row: GenerationRow) -> AppResult<GenerationView> {
        let mut spec: GenerationSpec = serde_json::from_str(&row.request_json)
            .map_err(|e| anyhow::anyhow!("generation {} has an unreadable request: {e}", row.id))?;
        if let Some(used) = row.model_used.as_deref().filter(|used| *used != spec.model)
            && let Some((_, described)) = self.plugins.find_model(used)
        {
            spec.warnings.extend(fallback_warnings(&spec, used, &described.supported_parameters));
        }
        let metadata = serde_json::from_str(&row.metadata_json).unwrap_or_else(|_| serde_json::json!({}));
        let images = if row.status == "succeeded" { self.db.images_of(&row.id).await? } else { Vec::new() };
        let queue_position = if row.status == "queued" { Some(self.db.queue_position(&row.id).await?) } else { None };
        Ok(GenerationView { row, spec, metadata, images, queue_position })
    }
}

impl App {
    /// Fill what the request and the user's settings leave out from the server's `[defaults]`
    /// (`model`, `aspect_ratio`, `style`, `archetype`, `output_format`). A default ratio counts
    /// as a size given, so it wins over a style's or an archetype's preferred ratio; a default
    /// style or archetype that no loaded plugin offers is skipped.
    fn apply_defaults(&self, input: &mut NewGeneration) {
        let defaults = &self.config.defaults;
        if input.model.is_none() {
            input.model = Some(self.config.default_model().to_string());
        }
        if input.aspect_ratio.is_none() && input.size.is_none() && input.width.is_none() && input.height.is_none() {
            input.aspect_ratio = defaults.aspect_ratio.clone();
        }
        if input.output_format.is_none() {
            input.output_format = defaults.output_format.clone();
        }
        let catalog = self.plugins.catalog();
        if input.style.is_none() {
            input.style = defaults.style.clone().filter(|s| catalog.style(s).is_some());
        }
        if input.archetype.is_none() {
            input.archetype = defaults.archetype.clone().filter(|a| catalog.archetype(a).is_some());
        }
    }
}

/// Fill what the request leaves out from the user's settings (`default_model`,
/// `default_style`, `default_aspect_ratio`, `default_quality`). An explicit size or
/// `width`/`height` wins over a default aspect ratio.
fn apply_settings(input: &mut NewGeneration, settings_json: &str) {
    let settings: serde_json::Map<String, serde_json::Value> = serde_json::from_str(settings_json).unwrap_or_default();
    let get = |k: &str| settings.get(k).and_then(|v| v.as_str()).map(str::to_string);
    if input.model.is_none() {
        input.model = get("default_model");
    }
    if input.style.is_none() {
        input.style = get("default_style");
    }
    if input.aspect_ratio.is_none() && input.size.is_none() && input.width.is_none() && input.height.is_none() {
        input.aspect_ratio = get("default_aspect_ratio");
    }
    if input.quality.is_none() {
        input.quality = get("default_quality");
    }
}

/// The size the model draws for a delivered `w`×`h`: exactly that for any-size models,
/// otherwise the native size whose ratio is nearest (the host crops to the exact ratio).
pub fn draw_size(model: &abi::Model, w: u32, h: u32) -> Result<(u32, u32), String> {
    if model.any_size {
        let range = model.min_side..=model.max_side;
        return if range.contains(&w) && range.contains(&h) {
            Ok((w, h))
        } else {
            Err(format!("this model draws sides of {} to {} pixels, got {w}x{h}", model.min_side, model.max_side))
        };
    }
    let target = (f64::from(w) / f64::from(h)).ln();
    model
        .native_sizes
        .iter()
        .filter(|s| s.width > 0 && s.height > 0)
        .min_by(|a, b| {
            let da = ((f64::from(a.width) / f64::from(a.height)).ln() - target).abs();
            let db = ((f64::from(b.width) / f64::from(b.height)).ln() - target).abs();
            da.total_cmp(&db).then((b.width * b.height).cmp(&(a.width * a.height)))
        })
        .map(|s| (s.width, s.height))
        .ok_or_else(|| "this model lists no native sizes".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::runtime::types::AspectRatio;

    fn native_model() -> abi::Model {
        let s =
            |w: u32, h: u32| abi::NativeSize { aspect_ratio: AspectRatio { width: w, height: h }, width: w, height: h };
        abi::Model {
            id: "m".into(),
            name: "m".into(),
            description: String::new(),
            kinds: vec![abi::ModelKind::TextToImage],
            native_sizes: vec![s(1024, 1024), s(1344, 768), s(768, 1344), s(832, 1248)],
            any_size: false,
            min_side: 0,
            max_side: 0,
            max_n: 1,
            supported_parameters: vec![],
            options_schema: String::new(),
            deterministic: false,
            info: abi::ModelInfo { what_is: String::new(), use_cases: vec![], tips: vec![] },
        }
    }

    #[test]
    fn nearest_native_size() {
        let m = native_model();
        assert_eq!(draw_size(&m, 1920, 1080).unwrap(), (1344, 768));
        assert_eq!(draw_size(&m, 100, 350).unwrap(), (768, 1344));
        assert_eq!(draw_size(&m, 512, 512).unwrap(), (1024, 1024));
        assert_eq!(draw_size(&m, 2, 3).unwrap(), (832, 1248));
    }
}
