//! The models this plugin offers and how a request's size maps onto Gemini's parameters.
//!
//! Gemini image models draw a fixed set of aspect ratios, each at one pixel size per output
//! size ("1K" below); the host picks one of these native sizes for every request.

use easel_plugin_sdk::provider::*;

/// Models offered when the operator sets no `models`.
pub const DEFAULT_MODELS: &[&str] = &["gemini-2.5-flash-image", "gemini-3.1-flash-image"];

/// Most images one call draws (one upstream request each).
pub const MAX_N: u32 = 4;

/// The native sizes at "1K": `(ratio width, ratio height, width, height)`.
pub const NATIVE_SIZES: &[(u32, u32, u32, u32)] = &[
    (1, 1, 1024, 1024),
    (2, 3, 832, 1248),
    (3, 2, 1248, 832),
    (3, 4, 768, 1024),
    (4, 3, 1024, 768),
    (4, 5, 896, 1120),
    (5, 4, 1120, 896),
    (9, 16, 768, 1344),
    (16, 9, 1344, 768),
    (21, 9, 1536, 672),
];

/// The `imageConfig.aspectRatio` strings, in the order of [`NATIVE_SIZES`].
const RATIO_NAMES: &[&str] = &["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"];

/// The request fields these models honour.
pub const SUPPORTED_PARAMETERS: &[&str] = &["prompt", "negative_prompt", "seed", "quality", "input_image", "mask"];

/// JSON schema of the accepted `provider_options`.
pub const OPTIONS_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "image_size": {
      "type": "string", "enum": ["1K", "2K", "4K"],
      "description": "Output size (imageConfig.imageSize), Gemini 3 image models only; the host scales the result to the requested size. Default 1K, or 2K with quality \"high\"."
    },
    "temperature": {
      "type": "number", "minimum": 0, "maximum": 2,
      "description": "Sampling temperature (generationConfig.temperature)."
    },
    "safety_settings": {
      "type": "array",
      "description": "Gemini safetySettings, e.g. [{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"threshold\":\"BLOCK_ONLY_HIGH\"}].",
      "items": {
        "type": "object",
        "required": ["category", "threshold"],
        "properties": {"category": {"type": "string"}, "threshold": {"type": "string"}}
      }
    }
  }
}"#;

/// The `imageConfig.aspectRatio` for a requested size: the native ratio of that exact size, or
/// else the native ratio closest to `width / height`.
pub fn aspect_ratio_for(width: u32, height: u32) -> &'static str {
    if let Some(i) = NATIVE_SIZES.iter().position(|&(_, _, w, h)| (w, h) == (width, height)) {
        return RATIO_NAMES[i];
    }
    let wanted = (width.max(1) as f64 / height.max(1) as f64).ln();
    let closest = NATIVE_SIZES
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| {
            let da = ((a.0 as f64 / a.1 as f64).ln() - wanted).abs();
            let db = ((b.0 as f64 / b.1 as f64).ln() - wanted).abs();
            da.total_cmp(&db)
        })
        .map_or(0, |(i, _)| i);
    RATIO_NAMES[closest]
}

/// Does this model take `imageConfig.imageSize`? Gemini 3 image models do; Gemini 2.5 Flash
/// Image draws 1K only and takes the aspect ratio alone.
pub fn takes_image_size(model: &str) -> bool {
    !model.starts_with("gemini-2")
}

/// The `imageConfig.imageSize` to send: the caller's `image_size` option, else "2K" for
/// quality "high", else "1K" — and nothing for models that do not take it.
pub fn image_size_for(model: &str, quality: Option<&str>, option: Option<&str>) -> Option<&'static str> {
    if !takes_image_size(model) {
        return None;
    }
    Some(match (option, quality) {
        (Some("4K"), _) => "4K",
        (Some("2K"), _) => "2K",
        (Some(_), _) => "1K",
        (None, Some("high")) => "2K",
        (None, _) => "1K",
    })
}

/// The catalogue entry of `id`: the known models get their own words, any other id (from the
/// operator's `models`) a generic entry with the same sizes and abilities.
pub fn model(id: &str) -> Model {
    let builder = ModelBuilder::native_sizes(id, &display_name(id), NATIVE_SIZES)
        .kinds(&[ModelKind::TextToImage, ModelKind::ImageToImage, ModelKind::Inpainting])
        .max_n(MAX_N)
        .supports(SUPPORTED_PARAMETERS)
        .options_schema(OPTIONS_SCHEMA);
    let common_tips = [
        "Describe the picture in full sentences (subject, setting, light, camera or art style); Gemini follows instructions rather than keyword lists.",
        "To edit, attach input_image and say what to change and what to keep; add a mask (white = repaint) to confine the change.",
        "negative_prompt is sent as an \"Avoid: …\" sentence, which the model treats as a request, not a hard rule.",
        "Each image is a separate request: n = 4 costs four generations. The seed is passed along, but results are not reproducible.",
        "Blocked prompts or images fail with content_blocked and are not retried; rephrase instead.",
        "Every image carries Google's invisible SynthID watermark.",
    ];
    match id {
        "gemini-2.5-flash-image" => builder
            .description("Gemini 2.5 Flash Image (\"Nano Banana\"): fast text-to-image and editing by instruction, 1K output.")
            .info(
                "Google's Gemini 2.5 Flash Image, a multimodal model that draws and edits pictures from plain-language \
                 instructions. It outputs about one megapixel in ten aspect ratios from 21:9 to 9:16.",
                &[
                    "Photo-realistic scenes, product shots and illustrations from a description",
                    "Editing a photo by instruction: change the background, add or remove objects, restyle",
                    "Keeping a character or product consistent across several images",
                    "Short legible text in images (signs, labels, posters)",
                ],
                &common_tips,
            )
            .build(),
        "gemini-3.1-flash-image" => builder
            .description("Gemini 3.1 Flash Image: Google's newer image model, better text rendering and edits; 1K, 2K or 4K output.")
            .info(
                "Google's Gemini 3.1 Flash Image, the successor of Nano Banana: stronger instruction following, text \
                 rendering and multi-step edits. It draws ten aspect ratios at 1K, 2K or 4K.",
                &[
                    "Posters, infographics and mock-ups with accurate text",
                    "Precise edits of photos and designs by instruction, with or without a mask",
                    "Product and character consistency across a series",
                    "High-detail images (quality \"high\" draws at 2K)",
                ],
                &[
                    &common_tips[..],
                    &["quality \"high\" asks for 2K output, or set provider_options.image_size (1K, 2K, 4K); the host \
                       scales the result to the size you asked for."],
                ]
                .concat(),
            )
            .build(),
        _ => builder
            .description(&format!("Gemini model {id} (named in the operator's `models` setting)."))
            .info(
                &format!("The Gemini model `{id}`, called through generateContent like the built-in Gemini image models."),
                &["Whatever this Gemini image model is good at"],
                &common_tips,
            )
            .build(),
    }
}

/// "gemini-2.5-flash-image" → "Gemini 2.5 Flash Image".
fn display_name(id: &str) -> String {
    id.split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_native_size_has_its_ratio() {
        assert_eq!(NATIVE_SIZES.len(), RATIO_NAMES.len());
        for (&(rw, rh, w, h), name) in NATIVE_SIZES.iter().zip(RATIO_NAMES) {
            assert_eq!(*name, format!("{rw}:{rh}"));
            assert_eq!(aspect_ratio_for(w, h), *name);
            // Google rounds each size to multiples of 16 or so: within 3% of its ratio.
            assert!(((w as f64 / h as f64) / (rw as f64 / rh as f64) - 1.0).abs() < 0.03, "{name}");
        }
    }

    #[test]
    fn other_sizes_map_to_the_closest_ratio() {
        assert_eq!(aspect_ratio_for(512, 512), "1:1");
        assert_eq!(aspect_ratio_for(1920, 1080), "16:9");
        assert_eq!(aspect_ratio_for(3000, 1000), "21:9");
        assert_eq!(aspect_ratio_for(1000, 1330), "3:4");
    }

    #[test]
    fn image_size_only_for_models_that_take_it() {
        assert_eq!(image_size_for("gemini-2.5-flash-image", Some("high"), Some("4K")), None);
        assert_eq!(image_size_for("gemini-3.1-flash-image", None, None), Some("1K"));
        assert_eq!(image_size_for("gemini-3.1-flash-image", Some("draft"), None), Some("1K"));
        assert_eq!(image_size_for("gemini-3.1-flash-image", Some("high"), None), Some("2K"));
        assert_eq!(image_size_for("gemini-3.1-flash-image", Some("high"), Some("1K")), Some("1K"));
        assert_eq!(image_size_for("gemini-3-pro-image-preview", None, Some("4K")), Some("4K"));
    }

    #[test]
    fn models_are_described_fully() {
        for id in DEFAULT_MODELS.iter().copied().chain(["gemini-9-image"]) {
            let m = model(id);
            assert_eq!(m.id, id);
            assert!(!m.any_size && m.native_sizes.len() == 10);
            assert_eq!(m.max_n, MAX_N);
            assert_eq!(m.kinds.len(), 3);
            assert!(!m.deterministic);
            assert!(!m.description.is_empty() && !m.info.what_is.is_empty());
            assert!(!m.info.use_cases.is_empty() && !m.info.tips.is_empty());
            serde_json::from_str::<serde_json::Value>(&m.options_schema).expect("schema is JSON");
        }
        assert_eq!(model("gemini-2.5-flash-image").name, "Gemini 2.5 Flash Image");
    }
}
