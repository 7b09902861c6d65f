//! Native unit tests of the template table.
use std::collections::HashSet;

use easel_plugin_sdk::style_pack::{PluginError, StylePack, StyleRequest, StyleTemplate};
use serde_json::Value;

use crate::Core;
use crate::templates::{CATEGORIES, DEFAULT_KEYS, STYLE_HINTS, TEMPLATES};

const REQUIRED: &[&str] = &[
    "photorealistic",
    "cinematic",
    "anime",
    "watercolor",
    "oil_painting",
    "pencil_sketch",
    "pixel_art",
    "render_3d",
    "cyberpunk",
    "fantasy",
    "minimalist",
    "vintage_photo",
    "comic",
    "isometric",
    "low_poly",
    "studio_product",
    "spot_illustration",
    "minimalist_vector_art",
    "symbolic_representation",
    "icon",
    "logo",
];

/// Styles whose output feeds background removal.
const WHITE_BACKGROUND: &[&str] =
    &["minimalist_vector_art", "symbolic_representation", "icon", "logo", "sticker", "spot_illustration"];

fn find(id: &str) -> &'static StyleTemplate {
    TEMPLATES.iter().find(|t| t.id == id).unwrap_or_else(|| panic!("no template {id:?}"))
}

fn request(prompt: &str, negative: Option<&str>) -> StyleRequest {
    StyleRequest { prompt: prompt.into(), negative_prompt: negative.map(Into::into) }
}

fn is_snake_case(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('_')
        && !s.contains("__")
}

#[test]
fn at_least_twenty_templates() {
    assert!(TEMPLATES.len() >= 20, "only {} templates", TEMPLATES.len());
    assert_eq!(Core::templates().len(), TEMPLATES.len());
}

#[test]
fn ids_are_unique_and_snake_case() {
    let mut seen = HashSet::new();
    for t in TEMPLATES {
        assert!(is_snake_case(t.id), "{:?} is not snake_case", t.id);
        assert!(seen.insert(t.id), "duplicate id {:?}", t.id);
    }
}

#[test]
fn required_ids_present() {
    let ids: HashSet<_> = TEMPLATES.iter().map(|t| t.id).collect();
    let missing: Vec<_> = REQUIRED.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(missing.is_empty(), "missing templates: {missing:?}");
}

#[test]
fn categories_allowed_and_each_non_empty() {
    for t in TEMPLATES {
        assert!(CATEGORIES.contains(&t.category), "{}: unknown category {:?}", t.id, t.category);
    }
    for c in CATEGORIES {
        let n = TEMPLATES.iter().filter(|t| t.category == *c).count();
        assert!(n >= 3, "category {c:?} has only {n} templates");
    }
}

#[test]
fn style_hints_are_known() {
    for t in TEMPLATES {
        let hint = t.style_hint.unwrap_or_else(|| panic!("{}: no style hint", t.id));
        assert!(STYLE_HINTS.contains(&hint), "{}: unknown style hint {hint:?}", t.id);
    }
    assert_eq!(find("icon").style_hint, Some("icon"));
    assert_eq!(find("logo").style_hint, Some("logo"));
    assert_eq!(find("pixel_art").style_hint, Some("pixel"));
    assert_eq!(find("photorealistic").style_hint, Some("photo"));
    assert_eq!(find("minimalist_vector_art").style_hint, Some("vector"));
}

#[test]
fn names_descriptions_and_tags_are_well_formed() {
    let mut names = HashSet::new();
    for t in TEMPLATES {
        assert!(!t.name.trim().is_empty(), "{}: empty name", t.id);
        assert!(names.insert(t.name), "{}: duplicate name {:?}", t.id, t.name);
        let d = t.description;
        assert!(d.starts_with(|c: char| c.is_uppercase()), "{}: description must start with a capital", t.id);
        assert!(d.ends_with('.') && !d[..d.len() - 1].contains(". "), "{}: description must be one sentence", t.id);
        assert!((20..=120).contains(&d.len()), "{}: description length {}", t.id, d.len());
        assert!(t.tags.len() >= 3, "{}: too few tags", t.id);
        let mut tags = HashSet::new();
        for tag in t.tags {
            assert!(!tag.is_empty() && tag.trim() == *tag, "{}: bad tag {tag:?}", t.id);
            assert_eq!(tag.to_lowercase(), *tag, "{}: tag {tag:?} must be lowercase", t.id);
            assert!(tags.insert(tag), "{}: duplicate tag {tag:?}", t.id);
        }
    }
}

fn check_clean_list(id: &str, what: &str, s: &str) {
    assert!(!s.is_empty(), "{id}: empty {what}");
    assert_eq!(s.trim(), s, "{id}: {what} has surrounding whitespace");
    assert!(!s.contains("  "), "{id}: {what} has a double space");
    assert!(!s.contains(",,") && !s.contains(" ,") && !s.ends_with(','), "{id}: {what} has a stray comma");
    assert!(!s.contains('\n'), "{id}: {what} has a newline");
}

#[test]
fn prompt_patterns_have_one_placeholder_and_no_stray_braces() {
    for t in TEMPLATES {
        check_clean_list(t.id, "prompt", t.prompt);
        assert_eq!(t.prompt.matches("{prompt}").count(), 1, "{}: need exactly one {{prompt}}", t.id);
        let rest = t.prompt.replace("{prompt}", "");
        assert!(!rest.contains('{') && !rest.contains('}'), "{}: stray brace in prompt", t.id);
        assert!(rest.split(',').count() >= 5, "{}: prompt pattern is too thin", t.id);
    }
}

#[test]
fn negative_prompts_are_clean_unique_lists() {
    for t in TEMPLATES {
        check_clean_list(t.id, "negative prompt", t.negative_prompt);
        let mut seen = HashSet::new();
        for term in t.negative_prompt.split(", ") {
            assert!(!term.is_empty(), "{}: empty negative term", t.id);
            assert!(seen.insert(term), "{}: duplicate negative term {term:?}", t.id);
        }
        assert!(seen.len() >= 8, "{}: negative prompt is too thin", t.id);
    }
}

#[test]
fn defaults_json_is_an_object_with_allowed_keys_and_valid_values() {
    for t in TEMPLATES {
        if t.defaults_json.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(t.defaults_json)
            .unwrap_or_else(|e| panic!("{}: defaults_json does not parse: {e}", t.id));
        let obj = v.as_object().unwrap_or_else(|| panic!("{}: defaults_json is not an object", t.id));
        assert!(!obj.is_empty(), "{}: use \"\" rather than an empty object", t.id);
        for (k, v) in obj {
            assert!(DEFAULT_KEYS.contains(&k.as_str()), "{}: key {k:?} not allowed", t.id);
            match k.as_str() {
                "aspect_ratio" => {
                    let s = v.as_str().unwrap_or_else(|| panic!("{}: aspect_ratio must be a string", t.id));
                    let (w, h) = s.split_once(':').unwrap_or_else(|| panic!("{}: {s:?} is not W:H", t.id));
                    for side in [w, h] {
                        let n: u32 = side.parse().unwrap_or_else(|_| panic!("{}: {s:?} is not W:H", t.id));
                        assert!((1..=64).contains(&n), "{}: {s:?} side out of 1..=64", t.id);
                    }
                }
                "quality" => {
                    assert!(matches!(v.as_str(), Some("draft" | "standard" | "high")), "{}: bad quality {v}", t.id)
                }
                "steps" => {
                    assert!(v.as_u64().is_some_and(|n| (1..=100).contains(&n)), "{}: bad steps {v}", t.id)
                }
                "guidance_scale" => {
                    assert!(v.as_f64().is_some_and(|g| (0.0..=20.0).contains(&g)), "{}: bad guidance {v}", t.id)
                }
                _ => unreachable!(),
            }
        }
    }
}

#[test]
fn expected_default_aspect_ratios() {
    let ratio = |id: &str| -> Option<String> {
        let v: Value = serde_json::from_str(find(id).defaults_json).ok()?;
        v.get("aspect_ratio")?.as_str().map(String::from)
    };
    assert_eq!(ratio("cinematic").as_deref(), Some("21:9"));
    assert_eq!(ratio("studio_product").as_deref(), Some("4:5"));
    for id in ["icon", "logo", "minimalist_vector_art", "symbolic_representation", "sticker", "pixel_art"] {
        assert_eq!(ratio(id).as_deref(), Some("1:1"), "{id}");
    }
}

#[test]
fn abi_records_always_carry_a_json_object() {
    for t in Core::templates() {
        let abi = t.to_template();
        assert_eq!(abi.id, t.id);
        assert_eq!(abi.tags.len(), t.tags.len());
        let v: Value = serde_json::from_str(&abi.defaults_json).expect("defaults_json parses");
        assert!(v.is_object(), "{}: ABI defaults_json is not an object", t.id);
    }
}

#[test]
fn expanding_keeps_the_user_prompt() {
    for t in TEMPLATES {
        let styled = Core::apply(t.id, request("  a red fox  ", None)).expect("known id");
        assert!(styled.prompt.contains("a red fox"), "{}: {:?}", t.id, styled.prompt);
        assert!(!styled.prompt.contains("{prompt}"), "{}: placeholder left in {:?}", t.id, styled.prompt);
        assert!(!styled.prompt.contains("  a red fox"), "{}: user prompt not trimmed", t.id);
        assert!(styled.prompt.len() > "a red fox".len() + 40, "{}: style adds too little", t.id);
    }
}

#[test]
fn negative_prompts_merge_with_the_users() {
    for t in TEMPLATES {
        let styled = Core::apply(t.id, request("a red fox", Some("hats, sunglasses"))).expect("known id");
        let neg = styled.negative_prompt.unwrap_or_else(|| panic!("{}: no negative prompt", t.id));
        assert!(neg.starts_with("hats, sunglasses, "), "{}: user negative lost: {neg:?}", t.id);
        assert!(neg.ends_with(t.negative_prompt), "{}: template negative lost: {neg:?}", t.id);

        let alone = Core::apply(t.id, request("a red fox", None)).expect("known id");
        assert_eq!(alone.negative_prompt.as_deref(), Some(t.negative_prompt), "{}", t.id);

        let blank = Core::apply(t.id, request("a red fox", Some("   "))).expect("known id");
        assert_eq!(blank.negative_prompt.as_deref(), Some(t.negative_prompt), "{}", t.id);
    }
}

#[test]
fn unknown_template_is_invalid_input() {
    match Core::apply("no_such_style", request("a red fox", None)) {
        Err(PluginError::InvalidInput(msg)) => assert!(msg.contains("no_such_style"), "{msg}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn vector_archetypes_ask_for_a_plain_white_background() {
    for id in WHITE_BACKGROUND {
        let t = find(id);
        let p = t.prompt.to_lowercase();
        assert!(p.contains("plain pure white background"), "{id}: must ask for a plain pure white background");
        assert!(p.contains("centred") || p.contains("centered"), "{id}: must centre the subject");
        assert!(p.contains("margin") || p.contains("padding"), "{id}: must leave a margin");
        assert!(p.contains("flat"), "{id}: must ask for flat colours");
        let n = t.negative_prompt.to_lowercase();
        assert!(!n.contains("white background"), "{id}: negative prompt fights the white background");
        for bad in ["coloured background", "drop shadow", "cropped"] {
            assert!(n.contains(bad), "{id}: negative prompt should exclude {bad:?}");
        }
        let styled = Core::apply(id, request("a red fox", None)).unwrap();
        assert!(styled.prompt.contains("white background"), "{id}");
    }
}

#[test]
fn positive_and_negative_prompts_do_not_contradict() {
    // A phrase the template asks for must not also be excluded by its negative prompt.
    for t in TEMPLATES {
        let positive: HashSet<String> = t.prompt.split(", ").map(str::to_lowercase).collect();
        for term in t.negative_prompt.split(", ").map(str::to_lowercase) {
            assert!(!positive.contains(&term), "{}: {term:?} is both asked for and excluded", t.id);
        }
    }
}
