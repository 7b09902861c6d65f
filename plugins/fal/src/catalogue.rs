//! The fal endpoints this plugin knows, with what each one takes.
//!
//! Field names come from each endpoint's published input schema
//! (`https://fal.ai/models/<endpoint id>/api`). An endpoint the operator lists in `models` that is
//! not in this table gets [`GENERIC`]: text-to-image with `prompt`, `image_size` (one of fal's
//! presets) and `seed`, one image a call, the negative prompt folded into the prompt.

use easel_plugin_sdk::provider::{AspectRatio, Model, ModelInfo, ModelKind, NativeSize};

/// fal's `image_size` presets: `(name, width, height)`.
pub const PRESETS: &[(&str, u32, u32)] = &[
    ("square_hd", 1024, 1024),
    ("square", 512, 512),
    ("portrait_4_3", 768, 1024),
    ("portrait_16_9", 576, 1024),
    ("landscape_4_3", 1024, 768),
    ("landscape_16_9", 1024, 576),
];

/// FLUX.1 Kontext `aspect_ratio` values with nominal sizes of about one megapixel (the model
/// decides the exact pixels; the host crops and scales to the size asked for).
pub const KONTEXT_RATIOS: &[(u32, u32, u32, u32)] = &[
    (21, 9, 1536, 640),
    (16, 9, 1344, 768),
    (4, 3, 1152, 896),
    (3, 2, 1216, 832),
    (1, 1, 1024, 1024),
    (2, 3, 832, 1216),
    (3, 4, 896, 1152),
    (9, 16, 768, 1344),
    (9, 21, 640, 1536),
];

/// Gemini 2.5 Flash Image (nano-banana) `aspect_ratio` values and the sizes it draws.
pub const NANO_BANANA_RATIOS: &[(u32, u32, u32, u32)] = &[
    (21, 9, 1536, 672),
    (16, 9, 1344, 768),
    (3, 2, 1248, 832),
    (4, 3, 1024, 768),
    (5, 4, 1120, 896),
    (1, 1, 1024, 1024),
    (4, 5, 896, 1120),
    (3, 4, 768, 1024),
    (2, 3, 832, 1248),
    (9, 16, 768, 1344),
];

/// How an endpoint takes the output size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    /// `image_size`: a preset name when the size is one, else `{"width","height"}`.
    Any {
        /// Smallest side.
        min: u32,
        /// Largest side.
        max: u32,
    },
    /// `image_size`: only fal's presets.
    Presets,
    /// `aspect_ratio`: `"W:H"` strings, with the nominal pixel size each draws.
    Ratios(&'static [(u32, u32, u32, u32)]),
}

/// How an endpoint takes a source image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ImageField {
    /// `image_url`: one URL (or data URI).
    Url,
    /// `image_urls`: a list of URLs (or data URIs).
    Urls,
}

/// What `style_hint` and `quality` turn into.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flavor {
    /// Nothing model-specific.
    Plain,
    /// Recraft `style` (`realistic_image`, `digital_illustration`, …).
    Recraft,
    /// Ideogram `style` (`GENERAL`, `REALISTIC`, `DESIGN`) and `rendering_speed` for quality.
    Ideogram,
}

/// One known endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// fal endpoint id (empty for [`GENERIC`]).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// What it can do.
    pub kinds: &'static [ModelKind],
    /// How it takes the size.
    pub size: Size,
    /// Most images per call (`num_images`); 1 when the endpoint has no `num_images`.
    pub max_n: u32,
    /// Sends `num_images`.
    pub num_images: bool,
    /// Sends `seed`.
    pub seed: bool,
    /// `num_inference_steps`: (default, min, max).
    pub steps: Option<(u32, u32, u32)>,
    /// `guidance_scale` range.
    pub guidance: Option<(f32, f32)>,
    /// Takes `negative_prompt` (else "Avoid: …" is appended to the prompt).
    pub negative_prompt: bool,
    /// Sends `enable_safety_checker: true`.
    pub safety_checker: bool,
    /// Sends `output_format: "png"`.
    pub png: bool,
    /// Takes `loras: [{path, scale}]`.
    pub loras: bool,
    /// The endpoint itself edits an image it requires, through this field.
    pub requires_image: Option<ImageField>,
    /// Image-to-image endpoint for this text-to-image endpoint (`image_url` + `strength`), or
    /// the same endpoint with a list field (`image_urls`).
    pub img2img: Option<(&'static str, ImageField, bool)>,
    /// Inpainting endpoint (`image_url` + `mask_url` + `strength`).
    pub inpaint: Option<&'static str>,
    /// Style and quality mapping.
    pub flavor: Flavor,
    /// JSON schema of accepted `provider_options`.
    pub options_schema: &'static str,
    /// What it is.
    pub what_is: &'static str,
    /// Good for.
    pub use_cases: &'static [&'static str],
    /// Tips.
    pub tips: &'static [&'static str],
}

const T2I: &[ModelKind] = &[ModelKind::TextToImage];
const T2I_I2I: &[ModelKind] = &[ModelKind::TextToImage, ModelKind::ImageToImage];
const T2I_I2I_INPAINT: &[ModelKind] = &[ModelKind::TextToImage, ModelKind::ImageToImage, ModelKind::Inpainting];
const I2I: &[ModelKind] = &[ModelKind::ImageToImage];

const FLUX_OPTIONS: &str = r#"{"type":"object","properties":{"output_format":{"enum":["jpeg","png"]},"acceleration":{"enum":["none","regular","high"]}},"additionalProperties":true}"#;
const KONTEXT_OPTIONS: &str = r#"{"type":"object","properties":{"output_format":{"enum":["jpeg","png"]},"safety_tolerance":{"enum":["1","2","3","4","5","6"]},"enhance_prompt":{"type":"boolean"}},"additionalProperties":true}"#;
const RECRAFT_OPTIONS: &str = r#"{"type":"object","properties":{"style":{"type":"string","description":"Recraft style, e.g. realistic_image, digital_illustration, realistic_image/hdr; vector_illustration styles answer SVG and are refused"},"colors":{"type":"array","items":{"type":"object","properties":{"r":{"type":"integer"},"g":{"type":"integer"},"b":{"type":"integer"}}}},"style_id":{"type":"string"}},"additionalProperties":true}"#;
const IDEOGRAM_OPTIONS: &str = r#"{"type":"object","properties":{"rendering_speed":{"enum":["TURBO","BALANCED","QUALITY"]},"style":{"enum":["AUTO","GENERAL","REALISTIC","DESIGN"]},"expand_prompt":{"type":"boolean"},"style_preset":{"type":"string"},"style_codes":{"type":"array","items":{"type":"string"}},"color_palette":{"type":"object"}},"additionalProperties":true}"#;
const NANO_OPTIONS: &str = r#"{"type":"object","properties":{"output_format":{"enum":["jpeg","png","webp"]},"safety_tolerance":{"enum":["1","2","3","4","5","6"]}},"additionalProperties":true}"#;
const SD_OPTIONS: &str =
    r#"{"type":"object","properties":{"output_format":{"enum":["jpeg","png"]}},"additionalProperties":true}"#;

/// The built-in catalogue, in the order `describe` lists it.
pub const KNOWN: &[Spec] = &[
    Spec {
        id: "fal-ai/flux/dev",
        name: "FLUX.1 [dev] (fal)",
        description: "Black Forest Labs' 12B open-weight FLUX.1 [dev]: strong prompt following and detail, any size.",
        kinds: T2I_I2I,
        size: Size::Any { min: 256, max: 2048 },
        max_n: 4,
        num_images: true,
        seed: true,
        steps: Some((28, 1, 50)),
        guidance: Some((1.0, 20.0)),
        negative_prompt: false,
        safety_checker: true,
        png: true,
        loras: false,
        requires_image: None,
        img2img: Some(("fal-ai/flux/dev/image-to-image", ImageField::Url, true)),
        inpaint: None,
        flavor: Flavor::Plain,
        options_schema: FLUX_OPTIONS,
        what_is: "FLUX.1 [dev], a 12-billion-parameter rectified-flow transformer from Black Forest Labs, run on fal's GPUs.",
        use_cases: &[
            "Photorealistic scenes and portraits",
            "Illustrations with complex, multi-subject prompts",
            "Restyling a photo (image-to-image)",
        ],
        tips: &[
            "Describe the scene in full sentences; FLUX follows long prompts well.",
            "28 steps is the sweet spot; guidance 3–4 looks natural, higher is more literal.",
            "There is no negative prompt: say what you want instead (it is appended as \"Avoid: …\").",
        ],
    },
    Spec {
        id: "fal-ai/flux/schnell",
        name: "FLUX.1 [schnell] (fal)",
        description: "The distilled FLUX.1: good images in 1–4 steps, fast and cheap.",
        kinds: T2I,
        size: Size::Any { min: 256, max: 2048 },
        max_n: 4,
        num_images: true,
        seed: true,
        steps: Some((4, 1, 12)),
        guidance: Some((1.0, 20.0)),
        negative_prompt: false,
        safety_checker: true,
        png: true,
        loras: false,
        requires_image: None,
        img2img: None,
        inpaint: None,
        flavor: Flavor::Plain,
        options_schema: FLUX_OPTIONS,
        what_is: "FLUX.1 [schnell], the timestep-distilled member of the FLUX.1 family, on fal.",
        use_cases: &["Drafts and previews", "High-volume generation", "Quick iterations on a prompt"],
        tips: &["4 steps is enough; more rarely helps.", "Use FLUX.1 [dev] for the final render of a prompt you like."],
    },
    Spec {
        id: "fal-ai/flux-lora",
        name: "FLUX.1 [dev] with LoRAs (fal)",
        description: "FLUX.1 [dev] with any number of LoRA adapters (URL or Hugging Face path), plus image-to-image and inpainting.",
        kinds: T2I_I2I_INPAINT,
        size: Size::Any { min: 256, max: 2048 },
        max_n: 4,
        num_images: true,
        seed: true,
        steps: Some((28, 1, 50)),
        guidance: Some((0.0, 35.0)),
        negative_prompt: false,
        safety_checker: true,
        png: true,
        loras: true,
        requires_image: None,
        img2img: Some(("fal-ai/flux-lora/image-to-image", ImageField::Url, true)),
        inpaint: Some("fal-ai/flux-lora/inpainting"),
        flavor: Flavor::Plain,
        options_schema: FLUX_OPTIONS,
        what_is: "FLUX.1 [dev] on fal with LoRA adapters merged at load time, for personal subjects, brand styles and products.",
        use_cases: &[
            "A trained subject or style (LoRA) in new scenes",
            "Brand-consistent illustrations",
            "Repainting part of an image with a LoRA active (inpainting)",
        ],
        tips: &[
            "Include the LoRA's trigger word in the prompt.",
            "Start LoRA scales at 1.0 and lower them when the style overpowers the prompt.",
            "LoRA paths are URLs of .safetensors files or Hugging Face repo paths.",
        ],
    },
    Spec {
        id: "fal-ai/flux-pro/kontext",
        name: "FLUX.1 Kontext [pro] (fal)",
        description: "Edits an input image from an instruction: local edits, restyling, text changes, keeping the rest intact.",
        kinds: I2I,
        size: Size::Ratios(KONTEXT_RATIOS),
        max_n: 4,
        num_images: true,
        seed: true,
        steps: None,
        guidance: Some((1.0, 20.0)),
        negative_prompt: false,
        safety_checker: false,
        png: true,
        loras: false,
        requires_image: Some(ImageField::Url),
        img2img: None,
        inpaint: None,
        flavor: Flavor::Plain,
        options_schema: KONTEXT_OPTIONS,
        what_is: "FLUX.1 Kontext [pro], Black Forest Labs' in-context image editing model: it takes an image and an instruction.",
        use_cases: &[
            "\"Put a donut next to the flour\"-style local edits",
            "Changing style while keeping the composition",
            "Replacing text on signs and packaging",
        ],
        tips: &[
            "Write the prompt as an instruction about the input image.",
            "Name what must stay the same (\"keep the face unchanged\").",
            "An input image is required.",
        ],
    },
    Spec {
        id: "fal-ai/recraft/v3/text-to-image",
        name: "Recraft V3 (fal)",
        description: "Recraft V3: design-oriented images, long legible text, brand styles; one image a call.",
        kinds: T2I,
        size: Size::Presets,
        max_n: 1,
        num_images: false,
        seed: false,
        steps: None,
        guidance: None,
        negative_prompt: false,
        safety_checker: false,
        png: false,
        loras: false,
        requires_image: None,
        img2img: None,
        inpaint: None,
        flavor: Flavor::Recraft,
        options_schema: RECRAFT_OPTIONS,
        what_is: "Recraft V3, a text-to-image model strong at typography, design layouts and consistent styles, on fal.",
        use_cases: &[
            "Posters and covers with real text",
            "Digital illustrations in a chosen style",
            "Marketing visuals in brand colours (`colors` option)",
        ],
        tips: &[
            "Put the text to render in quotes.",
            "Pick a style with provider_options.style (e.g. \"digital_illustration/pixel_art\"); vector styles answer SVG, which Easel cannot store, so they are refused.",
            "Recraft takes no seed: every call differs.",
        ],
    },
    Spec {
        id: "fal-ai/ideogram/v3",
        name: "Ideogram V3 (fal)",
        description: "Ideogram V3: excellent typography, posters and logos; up to 8 images a call.",
        kinds: T2I,
        size: Size::Presets,
        max_n: 8,
        num_images: true,
        seed: true,
        steps: None,
        guidance: None,
        negative_prompt: true,
        safety_checker: false,
        png: false,
        loras: false,
        requires_image: None,
        img2img: None,
        inpaint: None,
        flavor: Flavor::Ideogram,
        options_schema: IDEOGRAM_OPTIONS,
        what_is: "Ideogram V3 on fal, known for accurate text rendering and graphic design sensibility.",
        use_cases: &[
            "Logos, posters and typographic designs",
            "Realistic photos with signage",
            "Style exploration with style presets",
        ],
        tips: &[
            "Quote the exact words to render.",
            "quality maps to rendering_speed: draft = TURBO, standard = BALANCED, high = QUALITY.",
            "MagicPrompt (expand_prompt) is on by default; set provider_options.expand_prompt=false for literal prompts.",
        ],
    },
    Spec {
        id: "fal-ai/nano-banana",
        name: "Nano Banana (Gemini 2.5 Flash Image, fal)",
        description: "Google's Gemini 2.5 Flash Image: conversational generation and editing; edits go to fal-ai/nano-banana/edit.",
        kinds: T2I_I2I,
        size: Size::Ratios(NANO_BANANA_RATIOS),
        max_n: 4,
        num_images: true,
        seed: true,
        steps: None,
        guidance: None,
        negative_prompt: false,
        safety_checker: false,
        png: true,
        loras: false,
        requires_image: None,
        img2img: Some(("fal-ai/nano-banana/edit", ImageField::Urls, false)),
        inpaint: None,
        flavor: Flavor::Plain,
        options_schema: NANO_OPTIONS,
        what_is: "Gemini 2.5 Flash Image (\"nano banana\") served by fal: a multimodal model that draws and edits from plain-language instructions.",
        use_cases: &["Editing photos by instruction", "Consistent characters across images", "Quick concept images"],
        tips: &[
            "For edits, describe the change, not the whole scene.",
            "There is no strength setting: the instruction decides how much changes.",
        ],
    },
    Spec {
        id: "fal-ai/nano-banana/edit",
        name: "Nano Banana edit (fal)",
        description: "Gemini 2.5 Flash Image editing endpoint: an input image and an instruction.",
        kinds: I2I,
        size: Size::Ratios(NANO_BANANA_RATIOS),
        max_n: 4,
        num_images: true,
        seed: false,
        steps: None,
        guidance: None,
        negative_prompt: false,
        safety_checker: false,
        png: true,
        loras: false,
        requires_image: Some(ImageField::Urls),
        img2img: None,
        inpaint: None,
        flavor: Flavor::Plain,
        options_schema: NANO_OPTIONS,
        what_is: "The editing endpoint of Gemini 2.5 Flash Image (\"nano banana\") on fal.",
        use_cases: &["Instruction-based photo edits", "Changing backgrounds, clothes or lighting"],
        tips: &["An input image is required.", "Say what must stay unchanged."],
    },
    Spec {
        id: "fal-ai/stable-diffusion-v35-large",
        name: "Stable Diffusion 3.5 Large (fal)",
        description: "Stability AI's 8B MMDiT model: good typography and prompt understanding, with a real negative prompt.",
        kinds: T2I_I2I,
        size: Size::Any { min: 256, max: 2048 },
        max_n: 4,
        num_images: true,
        seed: true,
        steps: Some((28, 1, 50)),
        guidance: Some((0.0, 20.0)),
        negative_prompt: true,
        safety_checker: true,
        png: true,
        loras: false,
        requires_image: None,
        // fal lists this image-to-image endpoint; its image_url/strength fields follow fal's
        // image-to-image convention (not confirmed field by field).
        img2img: Some(("fal-ai/stable-diffusion-v35-large/image-to-image", ImageField::Url, true)),
        inpaint: None,
        flavor: Flavor::Plain,
        options_schema: SD_OPTIONS,
        what_is: "Stable Diffusion 3.5 Large, a Multimodal Diffusion Transformer from Stability AI, on fal.",
        use_cases: &[
            "Artistic styles and illustration",
            "Images with short text",
            "Prompts that need a negative prompt",
        ],
        tips: &[
            "Use the negative prompt for unwanted elements.",
            "Guidance around 3.5–4.5 and 28 steps are good defaults.",
        ],
    },
];

/// The spec used for endpoints that are not in [`KNOWN`].
pub const GENERIC: Spec = Spec {
    id: "",
    name: "",
    description: "A fal endpoint configured by the operator (generic mapping: prompt, image_size preset, seed).",
    kinds: T2I,
    size: Size::Presets,
    max_n: 1,
    num_images: false,
    seed: true,
    steps: None,
    guidance: None,
    negative_prompt: false,
    safety_checker: false,
    png: false,
    loras: false,
    requires_image: None,
    img2img: None,
    inpaint: None,
    flavor: Flavor::Plain,
    options_schema: r#"{"type":"object","additionalProperties":true}"#,
    what_is: "A fal endpoint the operator added by id; Easel sends it prompt, image_size (a fal preset) and seed.",
    use_cases: &["Trying a fal text-to-image endpoint Easel does not know yet"],
    tips: &["Pass endpoint-specific inputs with provider_options."],
};

/// The spec for an endpoint id: the known one, or [`GENERIC`].
pub fn spec(id: &str) -> &'static Spec {
    KNOWN.iter().find(|s| s.id == id).unwrap_or(&GENERIC)
}

/// The endpoint ids this plugin offers under `settings.models` (or the built-in list).
pub fn model_ids(configured: Option<&[String]>) -> Vec<String> {
    match configured {
        Some(ids) => ids.iter().filter(|id| crate::util::valid_endpoint_id(id)).cloned().collect(),
        None => KNOWN.iter().map(|s| s.id.to_string()).collect(),
    }
}

/// The ratio `w:h` in lowest terms.
pub fn ratio_of(w: u32, h: u32) -> AspectRatio {
    easel_plugin_sdk::image::aspect_ratio_of(w, h)
}

/// The native sizes of a spec (empty for any-size endpoints).
pub fn native_sizes(size: Size) -> Vec<NativeSize> {
    match size {
        Size::Any { .. } => Vec::new(),
        Size::Presets => {
            PRESETS.iter().map(|&(_, w, h)| NativeSize { aspect_ratio: ratio_of(w, h), width: w, height: h }).collect()
        }
        Size::Ratios(list) => list
            .iter()
            .map(|&(rw, rh, w, h)| NativeSize {
                aspect_ratio: AspectRatio { width: rw, height: rh },
                width: w,
                height: h,
            })
            .collect(),
    }
}

/// The model description of endpoint `id`.
pub fn model(id: &str) -> Model {
    let s = spec(id);
    let mut params = vec!["prompt", "negative_prompt"];
    if s.seed {
        params.push("seed");
    }
    if s.steps.is_some() {
        params.push("steps");
    }
    if s.guidance.is_some() {
        params.push("guidance_scale");
    }
    if s.steps.is_some() || s.flavor == Flavor::Ideogram {
        params.push("quality");
    }
    if s.flavor != Flavor::Plain {
        params.push("style");
    }
    if s.requires_image.is_some() || s.img2img.is_some() {
        params.push("input_image");
    }
    if s.img2img.is_some_and(|(_, _, strength)| strength) || s.inpaint.is_some() {
        params.push("strength");
    }
    if s.inpaint.is_some() {
        params.push("mask");
    }
    if s.loras {
        params.push("loras");
    }
    let (any_size, min_side, max_side) = match s.size {
        Size::Any { min, max } => (true, min, max),
        _ => (false, 0, 0),
    };
    Model {
        id: id.to_string(),
        name: if s.name.is_empty() { id.to_string() } else { s.name.to_string() },
        description: s.description.to_string(),
        kinds: s.kinds.to_vec(),
        native_sizes: native_sizes(s.size),
        any_size,
        min_side,
        max_side,
        max_n: s.max_n,
        supported_parameters: params.into_iter().map(str::to_string).collect(),
        options_schema: s.options_schema.to_string(),
        // fal's GPUs and batching give no bit-exact guarantee across calls.
        deterministic: false,
        info: ModelInfo {
            what_is: s.what_is.to_string(),
            use_cases: s.use_cases.iter().map(|u| u.to_string()).collect(),
            tips: s.tips.iter().map(|t| t.to_string()).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids_are_valid_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in KNOWN {
            assert!(crate::util::valid_endpoint_id(s.id), "{}", s.id);
            assert!(seen.insert(s.id));
            assert!(s.max_n >= 1);
            assert!(s.num_images || s.max_n == 1, "{} has max_n without num_images", s.id);
        }
    }

    #[test]
    fn models_describe_their_sizes() {
        let dev = model("fal-ai/flux/dev");
        assert!(dev.any_size && dev.native_sizes.is_empty());
        assert_eq!((dev.min_side, dev.max_side), (256, 2048));
        assert!(dev.supported_parameters.contains(&"input_image".to_string()));
        let recraft = model("fal-ai/recraft/v3/text-to-image");
        assert!(!recraft.any_size);
        assert_eq!(recraft.native_sizes.len(), PRESETS.len());
        let r = &recraft.native_sizes[2].aspect_ratio;
        assert_eq!((r.width, r.height), (3, 4));
        let kontext = model("fal-ai/flux-pro/kontext");
        assert_eq!(kontext.kinds, vec![ModelKind::ImageToImage]);
        let generic = model("someone/custom-app");
        assert_eq!(generic.name, "someone/custom-app");
        assert_eq!(generic.max_n, 1);
    }

    #[test]
    fn configured_models_replace_the_catalogue() {
        let ids = model_ids(Some(&["fal-ai/flux/dev".into(), "bad id".into(), "x/y".into()]));
        assert_eq!(ids, vec!["fal-ai/flux/dev".to_string(), "x/y".to_string()]);
        assert_eq!(model_ids(None).len(), KNOWN.len());
    }
}
