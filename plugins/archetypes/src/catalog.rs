//! The archetypes this plugin offers (listed at `/v1/archetypes`).

use easel_plugin_sdk::cropper::{Archetype, AspectRatio};

/// Prompt words shared by the vector-kind archetypes, whose backgrounds are removed.
pub const VECTOR_SUFFIX: &str =
    "flat vector style, centered, isolated on a plain pure white background, generous margin";

fn archetype(
    id: &str,
    name: &str,
    description: &str,
    remove_background: bool,
    ratio: Option<(u32, u32)>,
    style_hint: &str,
    prompt_suffix: String,
) -> Archetype {
    Archetype {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        remove_background,
        preferred_ratio: ratio.map(|(width, height)| AspectRatio { width, height }),
        style_hint: Some(style_hint.into()),
        prompt_suffix: Some(prompt_suffix),
    }
}

/// All archetypes, in display order.
pub fn archetypes() -> Vec<Archetype> {
    vec![
        archetype(
            "spot_illustration",
            "Spot illustration",
            "A small standalone illustration that accompanies text: one subject or scene, loosely \
             framed on a light background. Kept as generated (no background removal); 4:3 by default.",
            false,
            Some((4, 3)),
            "illustration",
            "spot illustration, single clear subject, simple light background, clean composition".into(),
        ),
        archetype(
            "minimalist_vector_art",
            "Minimalist vector art",
            "Flat vector artwork with few shapes and a limited palette, on a transparent background \
             (the plain white background is removed). Square by default.",
            true,
            Some((1, 1)),
            "vector",
            format!("minimalist, few simple shapes, limited colour palette, {VECTOR_SUFFIX}"),
        ),
        archetype(
            "symbolic_representation",
            "Symbolic representation",
            "A concept shown as a simple symbol or metaphor (a lightbulb for an idea, a shield for \
             security), flat vector, on a transparent background. Square by default.",
            true,
            Some((1, 1)),
            "vector",
            format!("simple symbolic depiction of the concept, clear metaphor, {VECTOR_SUFFIX}"),
        ),
        archetype(
            "photorealistic",
            "Photorealistic",
            "A photograph-like image with natural light and detail; the full frame is kept (no \
             background removal). 3:2 by default, like a camera sensor.",
            false,
            Some((3, 2)),
            "photo",
            "photorealistic, natural lighting, sharp focus, high detail".into(),
        ),
        archetype(
            "icon",
            "Icon",
            "A single, instantly readable icon with bold shapes that stays legible at small sizes, \
             square, on a transparent background.",
            true,
            Some((1, 1)),
            "icon",
            format!("simple icon, bold shapes, minimal detail, readable at small sizes, {VECTOR_SUFFIX}"),
        ),
        archetype(
            "logo",
            "Logo",
            "A clean, memorable logo mark (no text unless the prompt asks for it), square, on a \
             transparent background.",
            true,
            Some((1, 1)),
            "logo",
            format!("clean memorable logo mark, simple geometric shapes, no text, {VECTOR_SUFFIX}"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_archetypes_with_the_documented_fields() {
        let list = archetypes();
        let ids: Vec<&str> = list.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            ["spot_illustration", "minimalist_vector_art", "symbolic_representation", "photorealistic", "icon", "logo"]
        );
        let removes: Vec<bool> = list.iter().map(|a| a.remove_background).collect();
        assert_eq!(removes, [false, true, true, false, true, true]);
        let hints: Vec<&str> = list.iter().map(|a| a.style_hint.as_deref().unwrap()).collect();
        assert_eq!(hints, ["illustration", "vector", "vector", "photo", "icon", "logo"]);
        let ratio = |id: &str| {
            let a = list.iter().find(|a| a.id == id).unwrap();
            a.preferred_ratio.map(|r| (r.width, r.height))
        };
        assert_eq!(ratio("icon"), Some((1, 1)));
        assert_eq!(ratio("logo"), Some((1, 1)));
        assert_eq!(ratio("spot_illustration"), Some((4, 3)));
        assert_eq!(ratio("photorealistic"), Some((3, 2)));
        for a in &list {
            assert!(!a.name.is_empty() && a.description.len() > 40, "{}", a.id);
            let suffix = a.prompt_suffix.as_deref().unwrap();
            // Every background-removing archetype asks for a plain white background.
            assert_eq!(suffix.ends_with(VECTOR_SUFFIX), a.remove_background, "{}", a.id);
        }
        assert!(list[3].prompt_suffix.as_deref().unwrap().starts_with("photorealistic, natural lighting, sharp focus"));
    }
}
