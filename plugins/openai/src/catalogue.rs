//! The models this plugin offers: OpenAI's image models, each with its own sizes, count and
//! parameters, and a generic entry for any other id (an OpenAI-compatible server's model).

use easel_plugin_sdk::provider::*;

/// Models offered when the operator sets no `models`.
pub const DEFAULT_MODELS: &[&str] = &["gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "dall-e-3", "dall-e-2"];

/// How a model is called: which sizes, parameters and endpoints it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `gpt-image-*`: always base64, `quality` low|medium|high, `output_format`, edits with masks.
    GptImage,
    /// `dall-e-3`: one image a call, `quality` standard|hd, `style`, no edits.
    DallE3,
    /// `dall-e-2`: square sizes, edits of square PNGs with a mask.
    DallE2,
    /// Any other id: an OpenAI-compatible server (LocalAI…): sizes from the `sizes` setting.
    Generic,
}

impl Family {
    /// The family of a model id.
    pub fn of(id: &str) -> Self {
        match id {
            "dall-e-3" => Family::DallE3,
            "dall-e-2" => Family::DallE2,
            _ if id.starts_with("gpt-image-") => Family::GptImage,
            _ => Family::Generic,
        }
    }

    /// The sizes the model draws, `(width, height)`; `generic` is the operator's `sizes`.
    pub fn sizes(self, generic: &[(u32, u32)]) -> Vec<(u32, u32)> {
        match self {
            Family::GptImage => vec![(1024, 1024), (1536, 1024), (1024, 1536)],
            Family::DallE3 => vec![(1024, 1024), (1792, 1024), (1024, 1792)],
            Family::DallE2 => vec![(256, 256), (512, 512), (1024, 1024)],
            Family::Generic if generic.is_empty() => vec![(1024, 1024)],
            Family::Generic => generic.to_vec(),
        }
    }

    /// Most images one call returns (the API allows 10 for gpt-image and dall-e-2; 4 keeps a
    /// call's time and response size in bounds).
    pub fn max_n(self) -> u32 {
        match self {
            Family::GptImage | Family::DallE2 => 4,
            Family::DallE3 | Family::Generic => 1,
        }
    }

    /// What the model does through this plugin.
    pub fn kinds(self) -> &'static [ModelKind] {
        match self {
            Family::GptImage => &[ModelKind::TextToImage, ModelKind::ImageToImage, ModelKind::Inpainting],
            // dall-e-2 edits repaint the mask's area only: without a mask there is nothing to edit.
            Family::DallE2 => &[ModelKind::TextToImage, ModelKind::Inpainting],
            Family::DallE3 | Family::Generic => &[ModelKind::TextToImage],
        }
    }

    /// The request fields the model honours.
    pub fn supported_parameters(self) -> &'static [&'static str] {
        match self {
            Family::GptImage => &["prompt", "negative_prompt", "quality", "input_image", "mask"],
            Family::DallE3 => &["prompt", "negative_prompt", "quality"],
            Family::DallE2 => &["prompt", "negative_prompt", "input_image", "mask"],
            Family::Generic => &["prompt", "negative_prompt"],
        }
    }

    /// The upstream `quality` for our `quality` ("draft" | "standard" | "high"); `None` leaves
    /// the API's default ("auto" for gpt-image, "standard" for dall-e-3).
    pub fn quality(self, ours: Option<&str>) -> Option<&'static str> {
        match (self, ours?) {
            (Family::GptImage, "draft") => Some("low"),
            (Family::GptImage, "standard") => Some("medium"),
            (Family::GptImage, "high") => Some("high"),
            (Family::DallE3, "high") => Some("hd"),
            (Family::DallE3, _) => Some("standard"),
            _ => None,
        }
    }

    /// The `provider_options` keys passed through to the generations endpoint (`None`: any key
    /// but the ones this plugin sets itself).
    pub fn generation_options(self) -> Option<&'static [&'static str]> {
        match self {
            Family::GptImage => {
                Some(&["background", "moderation", "output_format", "output_compression", "quality", "user"])
            }
            Family::DallE3 => Some(&["style", "quality", "user"]),
            Family::DallE2 => Some(&["user"]),
            Family::Generic => None,
        }
    }

    /// The `provider_options` keys passed through to the edits endpoint.
    pub fn edit_options(self) -> &'static [&'static str] {
        match self {
            Family::GptImage => {
                &["background", "input_fidelity", "output_format", "output_compression", "quality", "user"]
            }
            Family::DallE2 => &["user"],
            Family::DallE3 | Family::Generic => &[],
        }
    }

    /// JSON schema of the accepted `provider_options`.
    pub fn options_schema(self) -> &'static str {
        match self {
            Family::GptImage => GPT_IMAGE_OPTIONS,
            Family::DallE3 => DALL_E_3_OPTIONS,
            Family::DallE2 => DALL_E_2_OPTIONS,
            Family::Generic => GENERIC_OPTIONS,
        }
    }
}

const GPT_IMAGE_OPTIONS: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "background": {"type": "string", "enum": ["transparent", "opaque", "auto"], "description": "transparent needs output_format png or webp."},
    "moderation": {"type": "string", "enum": ["low", "auto"], "description": "Generations only."},
    "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"], "description": "Default png."},
    "output_compression": {"type": "integer", "minimum": 0, "maximum": 100, "description": "jpeg and webp only."},
    "quality": {"type": "string", "enum": ["low", "medium", "high", "auto"], "description": "Overrides the mapping of the request's quality (draft → low, standard → medium, high → high)."},
    "input_fidelity": {"type": "string", "enum": ["low", "high"], "description": "Edits only: how closely to keep the input image's details."},
    "user": {"type": "string", "description": "An end-user id for OpenAI's abuse monitoring."}
  }
}"#;

const DALL_E_3_OPTIONS: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "style": {"type": "string", "enum": ["vivid", "natural"], "description": "vivid (default) is hyper-real and dramatic; natural is plainer."},
    "quality": {"type": "string", "enum": ["standard", "hd"], "description": "Overrides the mapping of the request's quality (high → hd)."},
    "user": {"type": "string", "description": "An end-user id for OpenAI's abuse monitoring."}
  }
}"#;

const DALL_E_2_OPTIONS: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "user": {"type": "string", "description": "An end-user id for OpenAI's abuse monitoring."}
  }
}"#;

const GENERIC_OPTIONS: &str = r#"{
  "type": "object",
  "description": "Passed through to the server's /v1/images/generations body (model, prompt, n, size and response_format are set by Easel).",
  "additionalProperties": true
}"#;

/// Parse the `sizes` setting, e.g. "512x512, 1024x1024"; entries that are not `WxH` with
/// sides 1..=8192 are skipped.
pub fn parse_sizes(text: &str) -> Vec<(u32, u32)> {
    text.split(',')
        .filter_map(|entry| {
            let (w, h) = entry.trim().split_once(['x', 'X'])?;
            let (w, h) = (w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?);
            ((1..=8192).contains(&w) && (1..=8192).contains(&h)).then_some((w, h))
        })
        .collect()
}

/// The aspect ratio of a size, reduced, each term at most 64 (the closest such fraction when
/// the exact one is larger, e.g. 1000×1001).
pub fn ratio(width: u32, height: u32) -> (u32, u32) {
    let reduced = easel_plugin_sdk::image::aspect_ratio_of(width, height);
    let (w, h) = (reduced.width, reduced.height);
    if w <= 64 && h <= 64 {
        return (w, h);
    }
    let target = width as f64 / height as f64;
    (1..=64u32)
        .flat_map(|h| (1..=64u32).map(move |w| (w, h)))
        .min_by(|a, b| {
            let da = (a.0 as f64 / a.1 as f64 - target).abs();
            let db = (b.0 as f64 / b.1 as f64 - target).abs();
            da.total_cmp(&db)
        })
        .unwrap_or((1, 1))
}

/// The size to ask for: the requested one when the model draws it, else the model's size with
/// the closest aspect ratio (the host normally asks for a native size already).
pub fn size_for(sizes: &[(u32, u32)], width: u32, height: u32) -> (u32, u32) {
    if sizes.contains(&(width, height)) {
        return (width, height);
    }
    let wanted = (width.max(1) as f64 / height.max(1) as f64).ln();
    sizes
        .iter()
        .copied()
        .min_by(|a, b| {
            let da = ((a.0 as f64 / a.1 as f64).ln() - wanted).abs();
            let db = ((b.0 as f64 / b.1 as f64).ln() - wanted).abs();
            da.total_cmp(&db).then((a.0 * a.1).abs_diff(width * height).cmp(&(b.0 * b.1).abs_diff(width * height)))
        })
        .unwrap_or((1024, 1024))
}

/// The catalogue entry of `id`.
pub fn model(id: &str, generic_sizes: &[(u32, u32)]) -> Model {
    let family = Family::of(id);
    let sizes: Vec<(u32, u32, u32, u32)> = family
        .sizes(generic_sizes)
        .into_iter()
        .map(|(w, h)| {
            let (rw, rh) = ratio(w, h);
            (rw, rh, w, h)
        })
        .collect();
    let builder = ModelBuilder::native_sizes(id, &display_name(id), &sizes)
        .kinds(family.kinds())
        .max_n(family.max_n())
        .supports(family.supported_parameters())
        .options_schema(family.options_schema());
    let avoid = "negative_prompt is appended as an \"Avoid: …\" sentence; OpenAI has no negative prompt.";
    let blocked = "Prompts or images OpenAI's safety system refuses fail with content_blocked and are not retried.";
    match (family, id) {
        (Family::GptImage, _) => {
            let (description, what_is) = match id {
                "gpt-image-1-mini" => (
                    "OpenAI GPT Image 1 Mini: the cheaper, faster GPT Image model; text-to-image and edits.",
                    "OpenAI's GPT Image 1 Mini, a smaller and cheaper version of GPT Image 1 with the same API: \
                     natively multimodal, it follows detailed instructions and edits images.",
                ),
                "gpt-image-1.5" => (
                    "OpenAI GPT Image 1.5: OpenAI's newest GPT Image model, better instruction following and edits.",
                    "OpenAI's GPT Image 1.5, the successor of GPT Image 1: sharper instruction following, text \
                     rendering and faithful edits of the input image.",
                ),
                "gpt-image-1" => (
                    "OpenAI GPT Image 1: instruction-following image generation and editing with masks.",
                    "OpenAI's GPT Image 1, the natively multimodal image model behind ChatGPT's image generation: it \
                     reads long, detailed prompts, renders text well and edits images by instruction.",
                ),
                _ => ("An OpenAI GPT Image model.", "An OpenAI GPT Image model, called like GPT Image 1."),
            };
            builder
                .description(description)
                .info(
                    what_is,
                    &[
                        "Illustrations, product shots and photo-real scenes from detailed descriptions",
                        "Posters, diagrams and UI mock-ups with legible text",
                        "Editing a photo by instruction, or repainting a masked area",
                        "Transparent-background assets (provider_options.background = \"transparent\")",
                    ],
                    &[
                        "Sizes: 1024×1024, 1536×1024 and 1024×1536; up to 4 images per call.",
                        "quality draft/standard/high maps to low/medium/high: high is slower (a minute or more) and costs more.",
                        "To edit, attach input_image; add a mask (white = repaint) to change only that area.",
                        avoid,
                        blocked,
                    ],
                )
                .build()
        }
        (Family::DallE3, _) => builder
            .description(
                "OpenAI DALL·E 3: one image per call, prompts rewritten for detail; 1024², 1792×1024, 1024×1792.",
            )
            .info(
                "OpenAI's DALL·E 3. It rewrites every prompt into a more detailed one before drawing (the rewritten \
                 prompt is kept in the generation's metadata as revised_prompt).",
                &["Illustrations and concept art", "Wide (1792×1024) or tall (1024×1792) compositions"],
                &[
                    "One image per call.",
                    "quality high sends quality \"hd\" (finer detail, slower).",
                    "provider_options.style = \"natural\" for plainer, less dramatic images.",
                    avoid,
                    blocked,
                ],
            )
            .build(),
        (Family::DallE2, _) => builder
            .description("OpenAI DALL·E 2: small square images (256², 512², 1024²) and masked edits.")
            .info(
                "OpenAI's DALL·E 2, the older and cheaper model: square images only, short prompts, masked edits.",
                &["Cheap drafts and thumbnails", "Repainting a masked area of a square image"],
                &[
                    "Prompts are limited to 1000 characters.",
                    "Edits need a square input_image and a mask (white = repaint).",
                    avoid,
                    blocked,
                ],
            )
            .build(),
        (Family::Generic, _) => builder
            .description(&format!(
                "Model {id} on an OpenAI-compatible server (named in the operator's `models` setting)."
            ))
            .info(
                &format!(
                    "The model `{id}`, called through the OpenAI Images API of the configured server (for example \
                     LocalAI)."
                ),
                &["Whatever this model is good at"],
                &[
                    "Sizes come from the operator's `sizes` setting (default 1024×1024).",
                    "provider_options are passed through to the server's request body.",
                    avoid,
                ],
            )
            .build(),
    }
}

/// "gpt-image-1-mini" → "GPT Image 1 Mini"; "dall-e-3" → "DALL·E 3".
fn display_name(id: &str) -> String {
    if let Some(version) = id.strip_prefix("dall-e-") {
        return format!("DALL·E {version}");
    }
    id.split('-')
        .map(|word| match word {
            "gpt" => "GPT".to_string(),
            _ => {
                let mut chars = word.chars();
                chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_their_sizes() {
        assert_eq!(Family::of("gpt-image-1"), Family::GptImage);
        assert_eq!(Family::of("gpt-image-1.5"), Family::GptImage);
        assert_eq!(Family::of("dall-e-3"), Family::DallE3);
        assert_eq!(Family::of("dall-e-2"), Family::DallE2);
        assert_eq!(Family::of("stablediffusion"), Family::Generic);
        assert_eq!(Family::Generic.sizes(&[]), [(1024, 1024)]);
        assert_eq!(Family::Generic.sizes(&[(512, 512)]), [(512, 512)]);
        assert_eq!(Family::GptImage.sizes(&[(512, 512)]).len(), 3, "sizes apply to generic models only");
    }

    #[test]
    fn quality_mapping() {
        assert_eq!(Family::GptImage.quality(Some("draft")), Some("low"));
        assert_eq!(Family::GptImage.quality(Some("standard")), Some("medium"));
        assert_eq!(Family::GptImage.quality(Some("high")), Some("high"));
        assert_eq!(Family::GptImage.quality(None), None);
        assert_eq!(Family::DallE3.quality(Some("high")), Some("hd"));
        assert_eq!(Family::DallE3.quality(Some("draft")), Some("standard"));
        assert_eq!(Family::DallE2.quality(Some("high")), None);
        assert_eq!(Family::Generic.quality(Some("high")), None);
    }

    #[test]
    fn sizes_setting_and_ratios() {
        assert_eq!(parse_sizes("512x512, 1024X768 ,bad,0x5,  "), [(512, 512), (1024, 768)]);
        assert_eq!(ratio(1792, 1024), (7, 4));
        assert_eq!(ratio(1536, 1024), (3, 2));
        assert_eq!(ratio(256, 256), (1, 1));
        let (w, h) = ratio(1000, 1001);
        assert!(w <= 64 && h <= 64 && (w as f64 / h as f64 - 1000.0 / 1001.0).abs() < 0.001);
    }

    #[test]
    fn size_for_picks_the_native_or_the_closest_ratio() {
        let sizes = Family::GptImage.sizes(&[]);
        assert_eq!(size_for(&sizes, 1536, 1024), (1536, 1024));
        assert_eq!(size_for(&sizes, 1920, 1080), (1536, 1024));
        assert_eq!(size_for(&sizes, 700, 1000), (1024, 1536));
        assert_eq!(size_for(&Family::DallE2.sizes(&[]), 256, 256), (256, 256));
        assert_eq!(size_for(&Family::DallE2.sizes(&[]), 300, 300), (256, 256));
    }

    #[test]
    fn models_are_described_fully() {
        for id in DEFAULT_MODELS.iter().copied().chain(["stablediffusion"]) {
            let m = model(id, &[(512, 512), (768, 512)]);
            assert_eq!(m.id, id);
            assert!(!m.any_size && !m.native_sizes.is_empty());
            assert!(!m.description.is_empty() && !m.info.what_is.is_empty() && !m.info.tips.is_empty());
            serde_json::from_str::<serde_json::Value>(&m.options_schema).expect("schema is JSON");
        }
        let dalle3 = model("dall-e-3", &[]);
        assert_eq!(dalle3.name, "DALL·E 3");
        assert_eq!(dalle3.max_n, 1);
        assert_eq!((dalle3.native_sizes[1].aspect_ratio.width, dalle3.native_sizes[1].aspect_ratio.height), (7, 4));
        assert_eq!(model("gpt-image-1-mini", &[]).name, "GPT Image 1 Mini");
        let local = model("stablediffusion", &[(512, 512), (768, 512)]);
        assert_eq!(local.native_sizes.len(), 2);
        assert_eq!(local.max_n, 1);
    }
}
