//! The procedural renderer: prompt words and a seed in, RGBA8 pixels out.
//!
//! This is procedural art, not an AI model. The prompt is read for mood and colour words
//! (palette), subject words (what to draw) and style words (landscape, abstract, portrait,
//! flat vector, pixel art); the seed drives every random choice of the composition.
//! Everything is integer hashing and basic float maths, so the same request gives the same
//! bytes on every platform, natively and in wasm.

mod abstract_art;
mod canvas;
mod color;
mod landscape;
mod layers;
mod noise;
mod palette;
mod shapes;
mod terrain;
mod vector;
mod words;

use canvas::{Finish, Layer, compose};
use noise::{Rng, hash_str, mix64};
use palette::{Palette, Theme};
use words::Words;

/// Smallest side [`render`] accepts.
pub const MIN_SIDE: u32 = 64;
/// Largest side [`render`] accepts.
pub const MAX_SIDE: u32 = 4096;

/// What to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params<'a> {
    /// The prompt.
    pub prompt: &'a str,
    /// Things to leave out: words here remove features and colours.
    pub negative_prompt: Option<&'a str>,
    /// Seed of every random choice.
    pub seed: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// A style hint such as "vector", "icon" or "photo"; its words count as prompt words.
    pub style_hint: Option<&'a str>,
}

/// The kind of picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Sky, terrain and water.
    Landscape,
    /// Flow fields, tiles or gradients.
    Abstract,
    /// A silhouette bust.
    Portrait,
    /// A flat emblem on white.
    Vector,
}

const ABSTRACT: &[&str] = &[
    "abstract",
    "pattern",
    "texture",
    "geometric",
    "fractal",
    "marble",
    "swirl",
    "wallpaper",
    "bauhaus",
    "gradient",
    "fluid",
    "topographic",
    "contour",
    "generative",
    "psychedelic",
    "mosaic",
    "bokeh",
];
const PORTRAIT: &[&str] = &[
    "portrait",
    "face",
    "person",
    "woman",
    "man",
    "girl",
    "boy",
    "selfie",
    "headshot",
    "people",
    "character",
    "avatar",
    "profile",
    "silhouette",
    "human",
    "lady",
    "guy",
];
const PIXEL: &[&str] = &["pixel", "pixelated", "pixelart", "8bit", "16bit"];
/// Words that say something about a landscape, for the "nothing recognised" fallback.
const LANDSCAPE_HINTS: &[&str] = &[
    "landscape",
    "sky",
    "mountain",
    "sea",
    "ocean",
    "city",
    "forest",
    "tree",
    "hill",
    "desert",
    "sun",
    "moon",
    "star",
    "lake",
    "river",
    "beach",
    "valley",
    "cloud",
    "island",
    "planet",
    "field",
    "scenery",
    "view",
    "horizon",
];

/// Everything the picture builders share.
pub(crate) struct Scene<'a> {
    width: usize,
    height: usize,
    /// Geometric mean of the sides: the size unit of features and noise.
    unit: f32,
    words: &'a Words,
    palette: &'a Palette,
    theme: Option<Theme>,
    rng: Rng,
    seed: u32,
}

impl Params<'_> {
    /// The picture kind these parameters ask for (the seed decides when the words do not).
    pub fn mode(&self) -> Mode {
        detect_mode(&Words::parse(self.prompt, self.negative_prompt, self.style_hint), self.seed)
    }
}

fn detect_mode(words: &Words, seed: u32) -> Mode {
    if words.has(vector::TRIGGERS) {
        Mode::Vector
    } else if words.has(ABSTRACT) {
        Mode::Abstract
    } else if words.has(PORTRAIT) {
        Mode::Portrait
    } else if words.has(LANDSCAPE_HINTS) || Theme::detect(words).is_some() {
        Mode::Landscape
    } else if mix64(u64::from(seed) ^ 0xab5f).is_multiple_of(4) {
        Mode::Abstract
    } else {
        Mode::Landscape
    }
}

/// Render `params` to RGBA8 pixels, row-major, `width * height * 4` bytes.
///
/// # Panics
///
/// When a side is outside [`MIN_SIDE`]`..=`[`MAX_SIDE`]; callers validate first.
pub fn render(params: &Params) -> Vec<u8> {
    assert!(
        (MIN_SIDE..=MAX_SIDE).contains(&params.width) && (MIN_SIDE..=MAX_SIDE).contains(&params.height),
        "size {}x{} outside {MIN_SIDE}..={MAX_SIDE}",
        params.width,
        params.height
    );
    let words = Words::parse(params.prompt, params.negative_prompt, params.style_hint);
    let (w, h) = (params.width as usize, params.height as usize);
    if words.has(PIXEL) {
        // Pixel art: draw small, then scale up with hard edges.
        let block = (w.min(h) / 100).max(2);
        let (sw, sh) = (w.div_ceil(block), h.div_ceil(block));
        let small = draw(params, &words, sw, sh, true);
        let mut out = vec![0u8; w * h * 4];
        for (y, line) in out.chunks_exact_mut(w * 4).enumerate() {
            let src = &small[(y / block) * sw * 4..];
            for (x, px) in line.chunks_exact_mut(4).enumerate() {
                px.copy_from_slice(&src[(x / block) * 4..(x / block) * 4 + 4]);
            }
        }
        out
    } else {
        draw(params, &words, w, h, false)
    }
}

/// Draw at `width`×`height` (which may be smaller than requested for pixel art).
fn draw(params: &Params, words: &Words, width: usize, height: usize, crisp: bool) -> Vec<u8> {
    let key = hash_str(params.prompt)
        ^ hash_str(params.negative_prompt.unwrap_or("")).rotate_left(17)
        ^ hash_str(params.style_hint.unwrap_or("")).rotate_left(31);
    let rng = Rng::new(mix64(key) ^ u64::from(params.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let palette = Palette::choose(words, params.prompt, &mut rng.derive("palette"));
    let scene = Scene {
        width,
        height,
        unit: ((width * height) as f32).sqrt(),
        words,
        palette: &palette,
        theme: Theme::detect(words),
        rng,
        seed: params.seed,
    };
    let (layers, mut finish): (Vec<Box<dyn Layer>>, Finish) = match detect_mode(words, params.seed) {
        Mode::Vector => vector::build(&scene),
        Mode::Abstract => abstract_art::build(&scene),
        Mode::Portrait => abstract_art::portrait(&scene),
        Mode::Landscape => landscape::build(&scene),
    };
    if crisp {
        finish.grain = 0.0;
        finish.dither = false;
    }
    compose(width, height, color::WHITE, &layers, finish)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(prompt: &str, seed: u32, width: u32, height: u32) -> Params<'_> {
        Params { prompt, negative_prompt: None, seed, width, height, style_hint: None }
    }

    /// Prompts that between them reach every mode and most scene features.
    const PROMPTS: &[&str] = &[
        "sunset over the ocean",
        "neon city at night",
        "forest in autumn",
        "minimalist logo of a fox",
        "snowy mountains under the aurora at night",
        "deep space galaxy with a ringed planet",
        "volcano erupting with lava",
        "desert dunes",
        "spring meadow with flowers",
        "abstract marble swirl",
        "geometric bauhaus pattern",
        "soft gradient",
        "portrait of a woman",
        "pixel art castle",
        "qwerty zxcv",
    ];

    fn pixel(buf: &[u8], width: u32, x: u32, y: u32) -> [u8; 4] {
        let i = (y as usize * width as usize + x as usize) * 4;
        [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]
    }

    #[test]
    fn same_request_same_bytes() {
        for prompt in PROMPTS {
            let p =
                Params { negative_prompt: Some("blurry"), style_hint: Some("photo"), ..params(prompt, 42, 160, 120) };
            assert_eq!(render(&p), render(&p), "{prompt}");
        }
    }

    #[test]
    fn seed_changes_the_picture() {
        for prompt in PROMPTS {
            let a = render(&params(prompt, 1, 128, 128));
            let b = render(&params(prompt, 2, 128, 128));
            let differing = a
                .chunks_exact(4)
                .zip(b.chunks_exact(4))
                .filter(|(p, q)| p.iter().zip(q.iter()).any(|(&u, &v)| u.abs_diff(v) > 12))
                .count();
            assert!(differing > 128 * 128 / 20, "{prompt}: only {differing} pixels differ");
        }
    }

    #[test]
    fn buffers_have_exact_length_at_odd_sizes() {
        for (w, h) in [(548, 1918), (64, 4096), (4096, 64), (65, 67), (64, 64)] {
            for prompt in PROMPTS {
                let buf = render(&params(prompt, 7, w, h));
                assert_eq!(buf.len(), w as usize * h as usize * 4, "{prompt} at {w}x{h}");
                assert!(buf.chunks_exact(4).all(|px| px[3] == 255), "{prompt} at {w}x{h}: not opaque");
            }
        }
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn refuses_sizes_out_of_range() {
        render(&params("sunset", 1, 63, 100));
    }

    /// Flood-fill pure white from the borders; return how many pure-white pixels it did not
    /// reach (enclosed "background" a later background removal would miss).
    fn unreachable_white(buf: &[u8], w: u32, h: u32) -> usize {
        let white = |x: u32, y: u32| pixel(buf, w, x, y) == [255, 255, 255, 255];
        let mut seen = vec![false; (w * h) as usize];
        let mut stack: Vec<(u32, u32)> = Vec::new();
        for x in 0..w {
            stack.extend([(x, 0), (x, h - 1)]);
        }
        for y in 0..h {
            stack.extend([(0, y), (w - 1, y)]);
        }
        while let Some((x, y)) = stack.pop() {
            let i = (y * w + x) as usize;
            if seen[i] || !white(x, y) {
                continue;
            }
            seen[i] = true;
            if x > 0 {
                stack.push((x - 1, y));
            }
            if x + 1 < w {
                stack.push((x + 1, y));
            }
            if y > 0 {
                stack.push((x, y - 1));
            }
            if y + 1 < h {
                stack.push((x, y + 1));
            }
        }
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| white(x, y) && !seen[(y * w + x) as usize])
            .count()
    }

    #[test]
    fn vector_mode_sits_on_a_white_margin() {
        let prompts = [
            "minimalist logo of a fox",
            "flat icon of a sun",
            "vector emblem for a mountain club",
            "sticker of a cat",
            "logo with a heart",
            "icon of a rocket",
            "minimalist moon logo",
            "flat leaf icon",
            "logo",
            "emblem of a water drop",
            "flat flame icon",
            "city logo",
            "star badge",
            "tree icon",
        ];
        let sizes = [(256, 256), (548, 1918), (4096, 64), (65, 67), (300, 200), (128, 96)];
        // Four seeds per prompt, each at another size: every prompt meets most sizes.
        let cases = prompts.iter().enumerate().flat_map(|(i, &prompt)| {
            (0..4u32).map(move |seed| (prompt, seed, sizes[(i + seed as usize) % sizes.len()]))
        });
        for (prompt, seed, (w, h)) in cases {
            let p = params(prompt, seed, w, h);
            assert_eq!(p.mode(), Mode::Vector, "{prompt}");
            let buf = render(&p);
            let band = (w.min(h) / 8).max(2);
            for y in 0..h {
                for x in 0..w {
                    if x < band || y < band || x >= w - band || y >= h - band {
                        assert_eq!(pixel(&buf, w, x, y), [255; 4], "{prompt} s{seed} {w}x{h} at ({x},{y})");
                    }
                }
            }
            let side = w.min(h);
            let (x0, y0) = ((w - side) / 2, (h - side) / 2);
            let inked = (y0..y0 + side)
                .flat_map(|y| (x0..x0 + side).map(move |x| (x, y)))
                .filter(|&(x, y)| pixel(&buf, w, x, y) != [255; 4])
                .count();
            let share = inked as f32 / (side * side) as f32;
            assert!((0.08..0.62).contains(&share), "{prompt} s{seed} {w}x{h}: {share} of the centre inked");
            assert_eq!(unreachable_white(&buf, w, h), 0, "{prompt} s{seed} {w}x{h}: enclosed white");
        }
    }

    #[test]
    fn style_hint_selects_vector_mode() {
        let p = Params { style_hint: Some("icon"), ..params("a fox", 3, 200, 200) };
        assert_eq!(p.mode(), Mode::Vector);
        let buf = render(&p);
        assert_eq!(pixel(&buf, 200, 0, 0), [255; 4]);
        assert_eq!(params("a fox", 3, 200, 200).mode(), Mode::Landscape);
    }

    #[test]
    fn words_pick_the_mode() {
        assert_eq!(params("abstract swirls", 1, 64, 64).mode(), Mode::Abstract);
        assert_eq!(params("portrait of an old man", 1, 64, 64).mode(), Mode::Portrait);
        assert_eq!(params("mountains at dawn", 1, 64, 64).mode(), Mode::Landscape);
        assert_eq!(params("flat logo, abstract", 1, 64, 64).mode(), Mode::Vector);
    }

    /// Pixels whose hue is within `window` degrees of `hue`, saturated and not too dark.
    fn count_hue(buf: &[u8], hue: f32, window: f32) -> usize {
        buf.chunks_exact(4)
            .filter(|px| {
                let c = [px[0] as f32 / 255.0, px[1] as f32 / 255.0, px[2] as f32 / 255.0];
                let (h, s, l) = color::to_hsl(c);
                s > 0.3 && l > 0.15 && color::hue_delta(h, hue).abs() < window
            })
            .count()
    }

    #[test]
    fn negative_colour_is_avoided() {
        let plain = params("sunset over the mountains", 5, 256, 256);
        let avoided = Params { negative_prompt: Some("orange"), ..plain };
        let a = render(&plain);
        let b = render(&avoided);
        assert_ne!(a, b);
        let (before, after) = (count_hue(&a, 25.0, 20.0), count_hue(&b, 25.0, 20.0));
        assert!(before > 256 * 256 / 40, "the plain sunset should have plenty of orange ({before})");
        assert!(after * 10 < before, "orange pixels: {before} before, {after} after");
        // The same in the prompt itself.
        let inline = render(&params("sunset over the mountains, no orange", 5, 256, 256));
        assert!(count_hue(&inline, 25.0, 20.0) * 10 < before);
    }

    #[test]
    fn colour_words_colour_the_picture() {
        let teal = render(&params("teal hills", 9, 128, 128));
        let red = render(&params("red hills", 9, 128, 128));
        assert!(count_hue(&teal, 178.0, 30.0) > count_hue(&red, 178.0, 30.0) * 3);
        assert!(count_hue(&red, 356.0, 30.0) > count_hue(&teal, 356.0, 30.0) * 3);
    }

    /// Bright specks: pixels much brighter than the pixels two steps away on all four sides.
    fn specks(buf: &[u8], w: u32, h: u32) -> usize {
        let luma = |x: u32, y: u32| {
            let px = pixel(buf, w, x, y);
            px[0] as i32 * 2 + px[1] as i32 * 5 + px[2] as i32
        };
        (2..h - 2)
            .flat_map(|y| (2..w - 2).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let l = luma(x, y) - 150;
                l > luma(x - 2, y) && l > luma(x + 2, y) && l > luma(x, y - 2) && l > luma(x, y + 2)
            })
            .count()
    }

    #[test]
    fn negative_words_remove_features() {
        let p = params("night sky over the mountains, no moon, no clouds", 11, 256, 256);
        let with = specks(&render(&p), 256, 256);
        let without = specks(&render(&Params { negative_prompt: Some("stars"), ..p }), 256, 256);
        let inline = specks(
            &render(&params("night sky over the mountains, no moon, no clouds, no stars", 11, 256, 256)),
            256,
            256,
        );
        assert!(with > 20, "stars expected ({with})");
        assert_eq!(without, 0);
        assert_eq!(inline, 0);
    }

    #[test]
    fn pixel_art_is_blocky() {
        let (w, h) = (300, 200);
        let buf = render(&params("pixel art sunset over the sea", 4, w, h));
        let block = (w.min(h) / 100).max(2);
        for y in 0..h {
            for x in 0..w {
                let (bx, by) = (x / block * block, y / block * block);
                assert_eq!(pixel(&buf, w, x, y), pixel(&buf, w, bx, by));
            }
        }
    }

    /// CPU time of this thread in nanoseconds, where Linux tells it (immune to other load).
    fn thread_cpu_ns() -> Option<u64> {
        std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
    }

    /// Rendering time of a 1024×1024 image per prompt: wall clock and, on Linux, CPU time.
    /// Run with `cargo test --release -p provider-local -- --ignored --nocapture timing`.
    #[test]
    #[ignore = "timing report, not a check"]
    fn timing_1024() {
        let runs = 5;
        for prompt in PROMPTS {
            let p = params(prompt, 1, 1024, 1024);
            let (start, cpu) = (std::time::Instant::now(), thread_cpu_ns());
            for _ in 0..runs {
                std::hint::black_box(render(&p));
            }
            let wall = start.elapsed().as_secs_f64() * 1000.0 / runs as f64;
            let cpu = cpu.zip(thread_cpu_ns()).map(|(a, b)| (b - a) as f64 / 1e6 / runs as f64);
            let cpu = cpu.map_or(String::new(), |ms| format!("  cpu {ms:>6.1} ms"));
            println!("wall {wall:>6.1} ms{cpu}  {prompt}");
        }
    }
}
