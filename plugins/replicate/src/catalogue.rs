//! The Replicate models this plugin knows, with the inputs each one takes.
//!
//! Field names come from each model's published input schema
//! (`https://replicate.com/<owner>/<name>/api/schema`). A model the operator lists in `models`
//! that is not here gets [`GENERIC`]: `prompt`, `aspect_ratio` (the FLUX ratios) and `seed`, one
//! image a call, the negative prompt folded into the prompt. A version-pinned id
//! (`owner/name:version`) uses the mapping of `owner/name`.

use easel_plugin_sdk::provider::{AspectRatio, Model, ModelInfo, ModelKind, NativeSize};

use crate::util::ModelId;

/// FLUX `aspect_ratio` values and the pixels each draws at `megapixels: "1"`.
pub const FLUX_RATIOS: &[(u32, u32, u32, u32)] = &[
    (1, 1, 1024, 1024),
    (16, 9, 1344, 768),
    (21, 9, 1536, 640),
    (3, 2, 1216, 832),
    (2, 3, 832, 1216),
    (4, 5, 896, 1088),
    (5, 4, 1088, 896),
    (3, 4, 896, 1152),
    (4, 3, 1152, 896),
    (9, 16, 768, 1344),
    (9, 21, 640, 1536),
];

/// Stable Diffusion 3.5 `aspect_ratio` values, with nominal sizes of about one megapixel.
pub const SD35_RATIOS: &[(u32, u32, u32, u32)] = &[
    (1, 1, 1024, 1024),
    (16, 9, 1344, 768),
    (21, 9, 1536, 640),
    (3, 2, 1216, 832),
    (2, 3, 832, 1216),
    (4, 5, 896, 1088),
    (5, 4, 1088, 896),
    (9, 16, 768, 1344),
    (9, 21, 640, 1536),
];

/// Recraft V3 `size` values (`"WxH"`).
pub const RECRAFT_SIZES: &[(u32, u32, u32, u32)] = &[
    (1, 1, 1024, 1024),
    (4, 3, 1365, 1024),
    (3, 4, 1024, 1365),
    (3, 2, 1536, 1024),
    (2, 3, 1024, 1536),
    (16, 9, 1820, 1024),
    (9, 16, 1024, 1820),
    (2, 1, 2048, 1024),
    (1, 2, 1024, 2048),
    (7, 5, 1434, 1024),
    (5, 7, 1024, 1434),
    (5, 4, 1280, 1024),
    (4, 5, 1024, 1280),
    (5, 3, 1707, 1024),
    (3, 5, 1024, 1707),
];

/// Ideogram V3 `aspect_ratio` values, each with a resolution of its `resolution` list near one
/// megapixel.
pub const IDEOGRAM_RATIOS: &[(u32, u32, u32, u32)] = &[
    (1, 1, 1024, 1024),
    (16, 9, 1312, 736),
    (9, 16, 736, 1312),
    (4, 3, 1152, 864),
    (3, 4, 864, 1152),
    (3, 2, 1248, 832),
    (2, 3, 832, 1248),
    (16, 10, 1280, 800),
    (10, 16, 800, 1280),
    (5, 4, 1120, 896),
    (4, 5, 896, 1120),
    (2, 1, 1408, 704),
    (1, 2, 704, 1408),
    (3, 1, 1536, 512),
    (1, 3, 512, 1536),
];

/// How a model takes the output size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    /// `aspect_ratio: "W:H"`, with the pixels each draws.
    Ratios(&'static [(u32, u32, u32, u32)]),
    /// `size: "WxH"` from a fixed list.
    Sizes(&'static [(u32, u32, u32, u32)]),
    /// `aspect_ratio: "custom"` with `width`/`height`, rounded to a multiple.
    Custom {
        /// Smallest side.
        min: u32,
        /// Largest side.
        max: u32,
        /// Sides are rounded to a multiple of this.
        multiple: u32,
    },
}

/// What `style_hint` turns into.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flavor {
    /// Nothing model-specific.
    Plain,
    /// Recraft `style`.
    Recraft,
    /// Ideogram `style_type` (`Auto`, `General`, `Realistic`, `Design`).
    Ideogram,
}

/// One known model.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// `owner/name` (empty for [`GENERIC`]).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// What it can do.
    pub kinds: &'static [ModelKind],
    /// How it takes the size.
    pub size: Size,
    /// Most images a call (`num_outputs`); 1 when the model has no `num_outputs`.
    pub max_n: u32,
    /// Sends `num_outputs`.
    pub num_outputs: bool,
    /// Sends `seed`, up to this value (seeds above wrap into range).
    pub seed_max: Option<u32>,
    /// Steps: (field, default, min, max).
    pub steps: Option<(&'static str, u32, u32, u32)>,
    /// Guidance: (field, min, max).
    pub guidance: Option<(&'static str, f32, f32)>,
    /// Takes `negative_prompt`.
    pub negative_prompt: bool,
    /// Sends `output_format: "png"`.
    pub png: bool,
    /// Image-to-image: (image field, strength field).
    pub img2img: Option<(&'static str, &'static str)>,
    /// Inpainting: (image field, mask field, the model repaints black where Easel's mask is white).
    pub inpaint: Option<(&'static str, &'static str, bool)>,
    /// Style mapping.
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
const T2I_INPAINT: &[ModelKind] = &[ModelKind::TextToImage, ModelKind::Inpainting];

/// The built-in catalogue.
pub const KNOWN: &[Spec] = &[
    Spec {
        id: "black-forest-labs/flux-dev",
        name: "FLUX.1 [dev] (Replicate)",
        description: "Black Forest Labs' 12B open-weight FLUX.1 [dev] on Replicate, with image-to-image.",
        kinds: T2I_I2I,
        size: Size::Ratios(FLUX_RATIOS),
        max_n: 4,
        num_outputs: true,
        seed_max: Some(u32::MAX),
        steps: Some(("num_inference_steps", 28, 1, 50)),
        guidance: Some(("guidance", 0.0, 10.0)),
        negative_prompt: false,
        png: true,
        img2img: Some(("image", "prompt_strength")),
        inpaint: None,
        flavor: Flavor::Plain,
        options_schema: r#"{"type":"object","properties":{"output_format":{"enum":["webp","jpg","png"]},"output_quality":{"type":"integer","minimum":0,"maximum":100},"go_fast":{"type":"boolean"},"megapixels":{"enum":["1","0.25"]}},"additionalProperties":true}"#,
        what_is: "FLUX.1 [dev], a 12-billion-parameter rectified-flow transformer from Black Forest Labs, run by Replicate.",
        use_cases: &[
            "Photorealistic scenes and portraits",
            "Illustrations from long, detailed prompts",
            "Restyling a photo (image-to-image)",
        ],
        tips: &[
            "Describe the scene in full sentences.",
            "guidance 3–3.5 looks natural; 28 steps is the default.",
            "go_fast (on by default) trades exact reproducibility for speed.",
        ],
    },
    Spec {
        id: "black-forest-labs/flux-schnell",
        name: "FLUX.1 [schnell] (Replicate)",
        description: "The distilled FLUX.1 on Replicate: good images in 1–4 steps, fast and cheap.",
        kinds: T2I,
        size: Size::Ratios(FLUX_RATIOS),
        max_n: 4,
        num_outputs: true,
        seed_max: Some(u32::MAX),
        steps: Some(("num_inference_steps", 4, 1, 4)),
        guidance: None,
        negative_prompt: false,
        png: true,
        img2img: None,
        inpaint: None,
        flavor: Flavor::Plain,
        options_schema: r#"{"type":"object","properties":{"output_format":{"enum":["webp","jpg","png"]},"go_fast":{"type":"boolean"},"megapixels":{"enum":["1","0.25"]}},"additionalProperties":true}"#,
        what_is: "FLUX.1 [schnell], the timestep-distilled FLUX.1, on Replicate.",
        use_cases: &["Drafts and previews", "High-volume generation"],
        tips: &["4 steps is the maximum and the default."],
    },
    Spec {
        id: "black-forest-labs/flux-1.1-pro",
        name: "FLUX1.1 [pro] (Replicate)",
        description: "FLUX1.1 [pro]: Black Forest Labs' fast, high-quality commercial model; any size from 256 to 1440 pixels.",
        kinds: T2I,
        size: Size::Custom { min: 256, max: 1440, multiple: 32 },
        max_n: 1,
        num_outputs: false,
        seed_max: Some(u32::MAX),
        steps: None,
        guidance: None,
        negative_prompt: false,
        png: true,
        img2img: None,
        inpaint: None,
        flavor: Flavor::Plain,
        options_schema: r#"{"type":"object","properties":{"safety_tolerance":{"type":"integer","minimum":1,"maximum":6},"prompt_upsampling":{"type":"boolean"},"output_format":{"enum":["webp","jpg","png"]}},"additionalProperties":true}"#,
        what_is: "FLUX1.1 [pro], Black Forest Labs' commercial text-to-image model, on Replicate.",
        use_cases: &["Final renders with excellent prompt following", "Product and marketing imagery"],
        tips: &[
            "Sides are rounded to multiples of 32; Easel crops to the exact size.",
            "prompt_upsampling rewrites the prompt for more creative results.",
        ],
    },
    Spec {
        id: "stability-ai/stable-diffusion-3.5-large",
        name: "Stable Diffusion 3.5 Large (Replicate)",
        description: "Stability AI's 8B MMDiT model on Replicate, with a real negative prompt and image-to-image.",
        kinds: T2I_I2I,
        size: Size::Ratios(SD35_RATIOS),
        max_n: 1,
        num_outputs: false,
        seed_max: Some(u32::MAX),
        steps: None,
        guidance: Some(("cfg", 1.0, 10.0)),
        negative_prompt: true,
        png: true,
        img2img: Some(("image", "prompt_strength")),
        inpaint: None,
        flavor: Flavor::Plain,
        options_schema: r#"{"type":"object","properties":{"output_format":{"enum":["webp","jpg","png"]}},"additionalProperties":true}"#,
        what_is: "Stable Diffusion 3.5 Large, a Multimodal Diffusion Transformer from Stability AI, on Replicate.",
        use_cases: &["Artistic styles and illustration", "Prompts that need a negative prompt"],
        tips: &[
            "cfg (guidance_scale) around 4.5–5.",
            "With an input image the output keeps the input's aspect ratio; Easel crops it.",
        ],
    },
    Spec {
        id: "recraft-ai/recraft-v3",
        name: "Recraft V3 (Replicate)",
        description: "Recraft V3 on Replicate: design-oriented images and long legible text.",
        kinds: T2I,
        size: Size::Sizes(RECRAFT_SIZES),
        max_n: 1,
        num_outputs: false,
        seed_max: None,
        steps: None,
        guidance: None,
        negative_prompt: false,
        png: false,
        img2img: None,
        inpaint: None,
        flavor: Flavor::Recraft,
        options_schema: r#"{"type":"object","properties":{"style":{"type":"string","description":"e.g. any, realistic_image, digital_illustration, digital_illustration/pixel_art"}},"additionalProperties":true}"#,
        what_is: "Recraft V3, a text-to-image model strong at typography and design, on Replicate.",
        use_cases: &["Posters and covers with real text", "Illustrations in a chosen style"],
        tips: &["Put the text to render in quotes.", "Recraft takes no seed: every call differs."],
    },
    Spec {
        id: "ideogram-ai/ideogram-v3-turbo",
        name: "Ideogram V3 Turbo (Replicate)",
        description: "The fastest Ideogram V3 on Replicate: strong typography, and inpainting with a mask.",
        kinds: T2I_INPAINT,
        size: Size::Ratios(IDEOGRAM_RATIOS),
        max_n: 1,
        num_outputs: false,
        seed_max: Some(2_147_483_647),
        steps: None,
        guidance: None,
        negative_prompt: false,
        png: false,
        img2img: None,
        inpaint: Some(("image", "mask", true)),
        flavor: Flavor::Ideogram,
        options_schema: r#"{"type":"object","properties":{"magic_prompt_option":{"enum":["Auto","On","Off"]},"style_type":{"enum":["None","Auto","General","Realistic","Design"]},"style_preset":{"type":"string"}},"additionalProperties":true}"#,
        what_is: "Ideogram V3 Turbo on Replicate: Ideogram's fastest V3 model, known for accurate text in images.",
        use_cases: &["Logos, posters and typographic designs", "Fixing part of an image (inpainting with a mask)"],
        tips: &["Quote the exact words to render.", "magic_prompt_option Off keeps the prompt literal."],
    },
];

/// The spec for models that are not in [`KNOWN`].
pub const GENERIC: Spec = Spec {
    id: "",
    name: "",
    description: "A Replicate model configured by the operator (generic mapping: prompt, aspect_ratio, seed).",
    kinds: T2I,
    size: Size::Ratios(FLUX_RATIOS),
    max_n: 1,
    num_outputs: false,
    seed_max: Some(u32::MAX),
    steps: None,
    guidance: None,
    negative_prompt: false,
    png: false,
    img2img: None,
    inpaint: None,
    flavor: Flavor::Plain,
    options_schema: r#"{"type":"object","additionalProperties":true}"#,
    what_is: "A Replicate model the operator added by id; Easel sends it prompt, aspect_ratio and seed.",
    use_cases: &["Trying a Replicate image model Easel does not know yet"],
    tips: &["Pass model-specific inputs with provider_options."],
};

/// The spec for a model: the known one for its `owner/name`, or [`GENERIC`].
pub fn spec(id: &ModelId) -> &'static Spec {
    KNOWN.iter().find(|s| s.id == id.model).unwrap_or(&GENERIC)
}

/// The native sizes of a spec (empty for any-size models).
pub fn native_sizes(size: Size) -> Vec<NativeSize> {
    match size {
        Size::Custom { .. } => Vec::new(),
        Size::Ratios(list) | Size::Sizes(list) => list
            .iter()
            .map(|&(rw, rh, w, h)| NativeSize {
                aspect_ratio: AspectRatio { width: rw, height: rh },
                width: w,
                height: h,
            })
            .collect(),
    }
}

/// The model description of `id` (`owner/name[:version]`).
pub fn model(id_text: &str, id: &ModelId) -> Model {
    let s = spec(id);
    let mut params = vec!["prompt", "negative_prompt"];
    if s.seed_max.is_some() {
        params.push("seed");
    }
    if s.steps.is_some() {
        params.push("steps");
        params.push("quality");
    }
    if s.guidance.is_some() {
        params.push("guidance_scale");
    }
    if s.flavor != Flavor::Plain {
        params.push("style");
    }
    if s.img2img.is_some() || s.inpaint.is_some() {
        params.push("input_image");
    }
    if s.img2img.is_some() {
        params.push("strength");
    }
    if s.inpaint.is_some() {
        params.push("mask");
    }
    let (any_size, min_side, max_side) = match s.size {
        Size::Custom { min, max, .. } => (true, min, max),
        _ => (false, 0, 0),
    };
    let name = if s.name.is_empty() { id_text.to_string() } else { s.name.to_string() };
    Model {
        id: id_text.to_string(),
        name: if id.version.is_some() { format!("{name} (pinned version)") } else { name },
        description: s.description.to_string(),
        kinds: s.kinds.to_vec(),
        native_sizes: native_sizes(s.size),
        any_size,
        min_side,
        max_side,
        max_n: s.max_n,
        supported_parameters: params.into_iter().map(str::to_string).collect(),
        options_schema: s.options_schema.to_string(),
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
    use crate::util::parse_model_id;

    #[test]
    fn known_models_are_well_formed() {
        for s in KNOWN {
            assert!(parse_model_id(s.id).is_some(), "{}", s.id);
            assert!(s.num_outputs || s.max_n == 1, "{}", s.id);
        }
        for default in crate::settings::DEFAULT_MODELS {
            assert!(KNOWN.iter().any(|s| s.id == *default), "{default} has no spec");
        }
    }

    #[test]
    fn describes_sizes_and_versions() {
        let id = parse_model_id("black-forest-labs/flux-1.1-pro").unwrap();
        let m = model("black-forest-labs/flux-1.1-pro", &id);
        assert!(m.any_size);
        assert_eq!((m.min_side, m.max_side), (256, 1440));
        let id = parse_model_id("black-forest-labs/flux-dev:abc").unwrap();
        let m = model("black-forest-labs/flux-dev:abc", &id);
        assert_eq!(m.native_sizes.len(), FLUX_RATIOS.len());
        assert!(m.name.contains("pinned"));
        assert_eq!(m.max_n, 4);
        let id = parse_model_id("someone/thing").unwrap();
        assert_eq!(model("someone/thing", &id).max_n, 1);
    }
}
