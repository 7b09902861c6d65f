//! Native tests of the filters (through `ops::apply_filter` and the `Filter` impl).

use crate::CoreFilters;
use crate::ops::{FILTERS, apply_filter};
use easel_plugin_sdk::filter::{Filter, PluginError, Rgba};

/// A deterministic, colourful `w × h` test image with varying alpha.
fn noise(w: u32, h: u32) -> Vec<u8> {
    let mut state = 0x9e37_79b9u32 ^ (w * 31 + h);
    (0..w * h * 4)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

/// A smooth gradient image (more realistic than noise for tone filters).
fn gradient(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            v.extend_from_slice(&[(x * 255 / w.max(2)) as u8, (y * 255 / h.max(2)) as u8, ((x + y) % 256) as u8, 200]);
        }
    }
    v
}

fn run(id: &str, px: &mut [u8], w: u32, h: u32, intensity: f32, params: &str) {
    apply_filter(id, px, w, h, intensity, params).unwrap_or_else(|e| panic!("{id}: {e}"));
}

fn err(id: &str, params: &str) -> String {
    let mut px = noise(4, 4);
    apply_filter(id, &mut px, 4, 4, 1.0, params).expect_err("expected an error")
}

fn channel(px: &[u8], c: usize) -> impl Iterator<Item = u8> + '_ {
    px.chunks_exact(4).map(move |p| p[c])
}

fn variance(px: &[u8], c: usize) -> f64 {
    let n = (px.len() / 4) as f64;
    let mean = channel(px, c).map(f64::from).sum::<f64>() / n;
    channel(px, c).map(|v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n
}

fn ids() -> impl Iterator<Item = &'static str> {
    FILTERS.iter().map(|f| f.id)
}

#[test]
fn every_required_filter_is_listed() {
    let listed: Vec<&str> = ids().collect();
    for id in [
        "grayscale",
        "sepia",
        "vintage",
        "invert",
        "blur",
        "sharpen",
        "vignette",
        "brightness",
        "contrast",
        "saturation",
        "posterize",
        "hue_rotate",
    ] {
        assert!(listed.contains(&id), "{id} missing from {listed:?}");
    }
}

#[test]
fn intensity_zero_leaves_every_filter_unchanged() {
    for id in ids() {
        let orig = noise(17, 9);
        let mut px = orig.clone();
        run(id, &mut px, 17, 9, 0.0, "{}");
        assert_eq!(px, orig, "{id} changed pixels at intensity 0");
    }
}

#[test]
fn every_filter_changes_something_at_full_intensity() {
    for id in ids() {
        let orig = gradient(32, 24);
        let mut px = orig.clone();
        run(id, &mut px, 32, 24, 1.0, "{}");
        assert_ne!(px, orig, "{id} did nothing with default params");
    }
}

#[test]
fn alpha_is_preserved_by_every_filter() {
    for id in ids() {
        for intensity in [1.0, 0.5] {
            let orig = noise(23, 11);
            let mut px = orig.clone();
            run(id, &mut px, 23, 11, intensity, "{}");
            assert!(channel(&px, 3).eq(channel(&orig, 3)), "{id} changed alpha at intensity {intensity}");
        }
    }
}

#[test]
fn odd_sizes_work_for_every_filter() {
    for id in ids() {
        for (w, h) in [(1, 1), (3, 7), (7, 3), (1, 13), (13, 1)] {
            let mut px = noise(w, h);
            run(id, &mut px, w, h, 1.0, "{}");
            run(id, &mut px, w, h, 0.7, "{}");
        }
        // Empty images are accepted and left alone.
        run(id, &mut [], 0, 0, 1.0, "{}");
        run(id, &mut [], 5, 0, 1.0, "{}");
    }
}

#[test]
fn large_radius_on_tiny_images() {
    for (w, h) in [(1, 1), (3, 7), (2, 2)] {
        let mut px = noise(w, h);
        run("blur", &mut px, w, h, 1.0, r#"{"radius": 50}"#);
        run("sharpen", &mut px, w, h, 1.0, r#"{"radius": 50, "amount": 5}"#);
    }
}

#[test]
fn grayscale_makes_r_g_b_equal() {
    let mut px = noise(31, 17);
    run("grayscale", &mut px, 31, 17, 1.0, "");
    for p in px.chunks_exact(4) {
        assert!(p[0] == p[1] && p[1] == p[2], "not grey: {p:?}");
    }
    let mut white = vec![255u8; 16];
    run("grayscale", &mut white, 2, 2, 1.0, "{}");
    assert_eq!(white, vec![255u8; 16]);
}

#[test]
fn invert_twice_is_identity() {
    let orig = noise(19, 13);
    let mut px = orig.clone();
    run("invert", &mut px, 19, 13, 1.0, "{}");
    assert_eq!(px[0], 255 - orig[0]);
    assert_eq!(px[6], 255 - orig[6]);
    run("invert", &mut px, 19, 13, 1.0, "{}");
    assert_eq!(px, orig);
}

#[test]
fn half_intensity_lands_between_original_and_full_effect() {
    let orig = noise(8, 8);
    let mut full = orig.clone();
    run("invert", &mut full, 8, 8, 1.0, "{}");
    let mut half = orig.clone();
    run("invert", &mut half, 8, 8, 0.5, "{}");
    for ((o, f), h) in orig.chunks_exact(4).zip(full.chunks_exact(4)).zip(half.chunks_exact(4)) {
        for c in 0..3 {
            let expected = (f32::from(o[c]) + f32::from(f[c])) / 2.0;
            assert!((f32::from(h[c]) - expected).abs() <= 1.0, "{o:?} {f:?} {h:?}");
        }
    }
}

#[test]
fn blur_of_a_flat_image_is_unchanged() {
    for radius in ["0.5", "3", "7.25", "50"] {
        let orig: Vec<u8> = [37u8, 142, 251, 90].repeat(40 * 30);
        let mut px = orig.clone();
        run("blur", &mut px, 40, 30, 1.0, &format!(r#"{{"radius": {radius}}}"#));
        assert_eq!(px, orig, "radius {radius}");
        run("sharpen", &mut px, 40, 30, 1.0, &format!(r#"{{"radius": {radius}, "amount": 3}}"#));
        assert_eq!(px, orig, "sharpen radius {radius}");
    }
}

#[test]
fn blur_reduces_checkerboard_variance() {
    let (w, h) = (32u32, 20u32);
    let mut px = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v = if (x + y) % 2 == 0 { 255 } else { 0 };
            px.extend_from_slice(&[v, 255 - v, v, 255]);
        }
    }
    let before: Vec<f64> = (0..3).map(|c| variance(&px, c)).collect();
    let mut small = px.clone();
    run("blur", &mut small, w, h, 1.0, r#"{"radius": 1}"#);
    run("blur", &mut px, w, h, 1.0, "{}");
    for (c, &b) in before.iter().enumerate() {
        let (s, a) = (variance(&small, c), variance(&px, c));
        assert!(s < b * 0.1, "channel {c}: radius 1 variance {s} vs {b}");
        // Edge replication leaves a little checkerboard at the borders; the interior is flat.
        assert!(a < b * 0.001, "channel {c}: radius 3 variance {a} vs {b}");
    }
    // The mean is kept (≈127.5).
    let mean = channel(&px, 0).map(f64::from).sum::<f64>() / f64::from(w * h);
    assert!((mean - 127.5).abs() < 1.0, "mean {mean}");
}

#[test]
fn blur_spreads_a_point_symmetrically() {
    let (w, h) = (21u32, 21u32);
    let mut px = vec![0u8; (w * h * 4) as usize];
    let centre = ((10 * w + 10) * 4) as usize;
    px[centre] = 255;
    run("blur", &mut px, w, h, 1.0, r#"{"radius": 2}"#);
    let at = |x: u32, y: u32| px[((y * w + x) * 4) as usize];
    assert!(at(10, 10) > at(11, 10) && at(11, 10) > at(12, 10) && at(12, 10) >= at(14, 10));
    assert_eq!(at(9, 10), at(11, 10));
    assert_eq!(at(10, 9), at(10, 11));
    assert_eq!(at(11, 10), at(10, 11));
    assert_eq!(at(0, 0), 0);
}

#[test]
fn sharpen_increases_edge_contrast() {
    let (w, h) = (16u32, 4u32);
    let mut px = Vec::new();
    for _ in 0..h {
        for x in 0..w {
            let v = if x < 8 { 100 } else { 150 };
            px.extend_from_slice(&[v, v, v, 255]);
        }
    }
    run("sharpen", &mut px, w, h, 1.0, r#"{"radius": 1, "amount": 2}"#);
    let at = |x: u32| px[(x * 4) as usize];
    assert!(at(7) < 100 && at(8) > 150, "edge: {} {}", at(7), at(8));
    assert_eq!(at(0), 100);
    assert_eq!(at(15), 150);
}

#[test]
fn sharpen_is_an_unsharp_mask_of_the_blur() {
    let (w, h) = (29u32, 23u32);
    let orig = noise(w, h);
    let mut blurred = orig.clone();
    run("blur", &mut blurred, w, h, 1.0, r#"{"radius": 2.5}"#);
    let mut sharp = orig.clone();
    run("sharpen", &mut sharp, w, h, 1.0, r#"{"radius": 2.5, "amount": 1.5}"#);
    for ((o, b), s) in orig.iter().zip(&blurred).zip(&sharp).enumerate().filter(|(i, _)| i % 4 != 3).map(|(_, v)| v) {
        let (o, b) = (i32::from(*o), i32::from(*b));
        let expected = (o + (((o - b) * 384 + 128) >> 8)).clamp(0, 255);
        assert_eq!(i32::from(*s), expected);
    }
}

#[test]
fn partial_blur_blends_with_the_original() {
    let (w, h) = (31u32, 17u32);
    let orig = noise(w, h);
    let mut full = orig.clone();
    run("blur", &mut full, w, h, 1.0, r#"{"radius": 4}"#);
    let mut part = orig.clone();
    run("blur", &mut part, w, h, 0.25, r#"{"radius": 4}"#);
    for (i, ((o, f), p)) in orig.iter().zip(&full).zip(&part).enumerate() {
        if i % 4 == 3 {
            assert_eq!(p, o);
        } else {
            let expected = f32::from(*o) + (f32::from(*f) - f32::from(*o)) * 0.25;
            assert!((f32::from(*p) - expected).abs() <= 0.5 + 1e-3, "{o} {f} {p}");
        }
    }
}

#[test]
fn posterize_two_levels_yields_two_values_per_channel() {
    let mut px = noise(37, 29);
    run("posterize", &mut px, 37, 29, 1.0, r#"{"levels": 2}"#);
    for c in 0..3 {
        let mut seen: Vec<u8> = channel(&px, c).collect();
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() <= 2, "channel {c}: {seen:?}");
        assert!(seen.iter().all(|&v| v == 0 || v == 255), "channel {c}: {seen:?}");
    }
    let mut px = noise(37, 29);
    run("posterize", &mut px, 37, 29, 1.0, r#"{"levels": 5.0}"#);
    let mut seen: Vec<u8> = channel(&px, 1).collect();
    seen.sort_unstable();
    seen.dedup();
    assert!(seen.len() <= 5, "{seen:?}");
}

#[test]
fn sepia_and_vintage_are_warm() {
    for id in ["sepia", "vintage"] {
        let mut px = [128u8, 128, 128, 255].repeat(9);
        run(id, &mut px, 3, 3, 1.0, "{}");
        let centre = &px[16..20];
        assert!(centre[0] > centre[1] && centre[1] > centre[2], "{id}: {centre:?}");
    }
}

#[test]
fn vignette_darkens_corners_not_the_centre() {
    let (w, h) = (41u32, 31u32);
    let mut px = [200u8, 200, 200, 255].repeat((w * h) as usize);
    run("vignette", &mut px, w, h, 1.0, r#"{"strength": 1}"#);
    let at = |x: u32, y: u32| px[((y * w + x) * 4) as usize];
    assert_eq!(at(20, 15), 200);
    assert!(at(0, 0) < 20, "corner {}", at(0, 0));
    assert!(at(0, 0) < at(0, 15) && at(0, 15) < at(10, 15));
    assert_eq!(at(0, 0), at(40, 30));
}

#[test]
fn tone_filters_move_the_right_way() {
    let orig = gradient(16, 16);
    let mean = |px: &[u8]| channel(px, 0).map(f64::from).sum::<f64>() / 256.0;
    let spread = |px: &[u8]| variance(px, 0);
    let apply = |id: &str, params: &str| {
        let mut px = orig.clone();
        run(id, &mut px, 16, 16, 1.0, params);
        px
    };
    assert!(mean(&apply("brightness", r#"{"amount": 0.5}"#)) > mean(&orig) + 20.0);
    assert!(mean(&apply("brightness", r#"{"amount": -0.5}"#)) < mean(&orig) - 20.0);
    assert_eq!(apply("brightness", r#"{"amount": -1}"#).iter().step_by(4).max(), Some(&0));
    assert!(spread(&apply("contrast", r#"{"amount": 0.5}"#)) > spread(&orig) * 1.5);
    assert!(spread(&apply("contrast", r#"{"amount": -0.5}"#)) < spread(&orig) * 0.5);
    assert_eq!(apply("brightness", r#"{"amount": 0}"#), orig);
    assert_eq!(apply("contrast", r#"{"amount": 0}"#), orig);
    assert_eq!(apply("saturation", r#"{"amount": 0}"#), orig);
    // Saturation -1 is grayscale.
    for p in apply("saturation", r#"{"amount": -1}"#).chunks_exact(4) {
        assert!(p[0] == p[1] && p[1] == p[2], "{p:?}");
    }
    // More saturation pushes channels apart.
    let chroma = |px: &[u8]| {
        px.chunks_exact(4).map(|p| i32::from(p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2]))).sum::<i32>()
    };
    assert!(chroma(&apply("saturation", r#"{"amount": 0.8}"#)) > chroma(&orig));
}

#[test]
fn hue_rotation_by_full_turn_is_near_identity() {
    let orig = noise(9, 9);
    let mut px = orig.clone();
    run("hue_rotate", &mut px, 9, 9, 1.0, r#"{"degrees": 360}"#);
    for (a, b) in px.iter().zip(&orig) {
        assert!(a.abs_diff(*b) <= 1, "{a} vs {b}");
    }
    let mut red = [255u8, 0, 0, 255].to_vec();
    run("hue_rotate", &mut red, 1, 1, 1.0, r#"{"degrees": 120}"#);
    assert!(red[1] > red[0] && red[1] > red[2], "red rotated 120° should be greenish: {red:?}");
}

#[test]
fn empty_and_null_params_mean_defaults() {
    for id in ids() {
        let reference = {
            let mut px = noise(6, 5);
            run(id, &mut px, 6, 5, 1.0, "{}");
            px
        };
        for params in ["", "  ", "null", " {} "] {
            let mut px = noise(6, 5);
            run(id, &mut px, 6, 5, 1.0, params);
            assert_eq!(px, reference, "{id} with {params:?}");
        }
    }
}

#[test]
fn blur_negative_radius_is_rejected_naming_radius() {
    let e = err("blur", r#"{"radius": -1}"#);
    assert!(e.contains("\"radius\""), "{e}");
    for bad in [r#"{"radius": 0.25}"#, r#"{"radius": 51}"#, r#"{"radius": "3"}"#, r#"{"radius": null}"#] {
        assert!(err("blur", bad).contains("radius"), "{bad}");
    }
    let e = err("sharpen", r#"{"amount": -2}"#);
    assert!(e.contains("\"amount\""), "{e}");
}

#[test]
fn unknown_param_key_is_rejected_naming_the_key() {
    let e = err("blur", r#"{"radius": 2, "sigma": 3}"#);
    assert!(e.contains("\"sigma\""), "{e}");
    let e = err("grayscale", r#"{"amount": 1}"#);
    assert!(e.contains("\"amount\""), "{e}");
}

#[test]
fn posterize_levels_out_of_range_is_rejected_naming_levels() {
    for bad in [r#"{"levels": 1}"#, r#"{"levels": 33}"#, r#"{"levels": 2.5}"#] {
        let e = err("posterize", bad);
        assert!(e.contains("\"levels\""), "{bad}: {e}");
    }
}

#[test]
fn malformed_params_are_rejected() {
    assert!(err("blur", "{radius: 3").contains("JSON"));
    assert!(err("blur", "[3]").contains("object"));
    assert!(err("blur", "3").contains("object"));
}

#[test]
fn unknown_filter_id_is_rejected() {
    let e = err("emboss", "{}");
    assert!(e.contains("emboss") && e.contains("unknown filter"), "{e}");
}

#[test]
fn wrong_buffer_length_is_rejected() {
    let mut px = vec![0u8; 15];
    assert!(apply_filter("invert", &mut px, 2, 2, 1.0, "{}").is_err());
}

#[test]
fn out_of_range_intensity_is_clamped() {
    let orig = noise(5, 5);
    let mut over = orig.clone();
    run("invert", &mut over, 5, 5, 7.0, "{}");
    let mut full = orig.clone();
    run("invert", &mut full, 5, 5, 1.0, "{}");
    assert_eq!(over, full);
    let mut under = orig.clone();
    run("invert", &mut under, 5, 5, -3.0, "{}");
    assert_eq!(under, orig);
}

#[test]
fn schemas_are_json_objects_naming_each_param() {
    for def in FILTERS {
        let schema: serde_json::Value = serde_json::from_str(&def.params_schema()).expect("valid JSON");
        assert!(schema.is_object(), "{}", def.id);
        for p in def.params {
            let prop = &schema["properties"][p.name];
            assert_eq!(prop["minimum"].as_f64(), Some(p.min), "{}.{}", def.id, p.name);
            assert_eq!(prop["maximum"].as_f64(), Some(p.max), "{}.{}", def.id, p.name);
            assert_eq!(prop["default"].as_f64(), Some(p.default), "{}.{}", def.id, p.name);
        }
    }
}

#[test]
fn trait_impl_lists_filters_and_applies_them() {
    let infos = <CoreFilters as Filter>::filters();
    assert_eq!(infos.len(), FILTERS.len());
    let blur = infos.iter().find(|f| f.id == "blur").expect("blur listed");
    assert!(blur.params_schema.contains("radius"));
    let grey = infos.iter().find(|f| f.id == "grayscale").expect("grayscale listed");
    assert_eq!(grey.params_schema, "{}");

    let mut img = Rgba::from_pixels(3, 7, noise(3, 7)).expect("size");
    <CoreFilters as Filter>::apply("grayscale", &mut img, 1.0, "{}").expect("applies");
    let p = img.get(2, 6);
    assert!(p[0] == p[1] && p[1] == p[2]);
    match <CoreFilters as Filter>::apply("blur", &mut img, 1.0, r#"{"radius": -1}"#) {
        Err(PluginError::InvalidInput(msg)) => assert!(msg.contains("radius"), "{msg}"),
        other => panic!("expected invalid-input, got {other:?}"),
    }
    match <CoreFilters as Filter>::apply("nope", &mut img, 1.0, "{}") {
        Err(PluginError::InvalidInput(msg)) => assert!(msg.contains("nope"), "{msg}"),
        other => panic!("expected invalid-input, got {other:?}"),
    }
}
