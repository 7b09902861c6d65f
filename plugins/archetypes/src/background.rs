//! Background removal: make a plain background transparent.
//!
//! 1. Estimate the background colour as the per-channel median of the border pixels.
//! 2. Flood-fill (4-connected, explicit stack) from every border pixel over pixels whose colour
//!    is within `tolerance` of that colour (or that are already fully transparent). Only what is
//!    reached this way is background: a white hole inside a ring stays opaque.
//! 3. Background pixels get alpha 0; foreground pixels within `feather` pixels of the background
//!    get an alpha ramp by their (chamfer 3-4) distance to it, so edges are soft.
//!
//! Every step is O(width · height). Pure functions of `(pixels, width, height)`, RGBA8, row-major.

use serde_json::Value;

/// Default `tolerance`: normalised RGB distance (0 = the exact colour, 1 = any colour).
pub const DEFAULT_TOLERANCE: f32 = 0.1;
/// Default `feather`, in pixels.
pub const DEFAULT_FEATHER: u32 = 1;
/// Largest accepted `feather`, in pixels.
pub const MAX_FEATHER: u32 = 8;

/// Options of [`remove_background`], parsed from `{"tolerance":0..1,"feather":0..=8}`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Largest colour distance to the background colour that still counts as background, as a
    /// fraction of the largest possible RGB distance (black to white).
    pub tolerance: f32,
    /// Width in pixels of the alpha ramp at the edge of the foreground; 0 = hard edge.
    pub feather: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self { tolerance: DEFAULT_TOLERANCE, feather: DEFAULT_FEATHER }
    }
}

/// Parse the options JSON. Empty input or `null` means the defaults; unknown keys and values
/// out of range are errors that name the key.
pub fn parse_options(json: &str) -> Result<Options, String> {
    let json = json.trim();
    let mut options = Options::default();
    if json.is_empty() {
        return Ok(options);
    }
    let value: Value = serde_json::from_str(json).map_err(|e| format!("background options are not valid JSON: {e}"))?;
    let object = match value {
        Value::Null => return Ok(options),
        Value::Object(object) => object,
        _ => return Err("background options must be a JSON object like {\"tolerance\":0.1,\"feather\":1}".into()),
    };
    for (key, value) in &object {
        match key.as_str() {
            "tolerance" => {
                let t = value
                    .as_f64()
                    .filter(|t| (0.0..=1.0).contains(t))
                    .ok_or_else(|| format!("option \"tolerance\" must be a number from 0 to 1, got {value}"))?;
                options.tolerance = t as f32;
            }
            "feather" => {
                let f = value
                    .as_f64()
                    .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(MAX_FEATHER)).contains(f))
                    .ok_or_else(|| {
                        format!(
                            "option \"feather\" must be a whole number of pixels from 0 to {MAX_FEATHER}, got {value}"
                        )
                    })?;
                options.feather = f as u32;
            }
            other => {
                return Err(format!("unknown background option {other:?} (known: \"tolerance\", \"feather\")"));
            }
        }
    }
    Ok(options)
}

fn check(pixels: &[u8], width: u32, height: u32) -> Result<(usize, usize), String> {
    let (w, h) = (width as usize, height as usize);
    if pixels.len() as u64 != u64::from(width) * u64::from(height) * 4 {
        return Err("pixel buffer length is not width * height * 4".into());
    }
    Ok((w, h))
}

/// Indices of the border pixels of a `w`×`h` image, each once.
fn border(w: usize, h: usize) -> impl Iterator<Item = usize> {
    let top = 0..if h > 0 { w } else { 0 };
    let bottom = (if h > 1 { (h - 1) * w } else { 0 })..if h > 1 { h * w } else { 0 };
    let sides = (1..h.saturating_sub(1)).flat_map(move |y| {
        let left = y * w;
        let right = y * w + w - 1;
        std::iter::once(left).chain((w > 1).then_some(right))
    });
    top.chain(bottom).chain(sides)
}

/// The background colour: per-channel median (RGB) of the border pixels that are not fully
/// transparent; white when there are none.
pub fn estimate_background(pixels: &[u8], width: u32, height: u32) -> [u8; 3] {
    let (w, h) = (width as usize, height as usize);
    let mut hist = [[0u32; 256]; 3];
    let mut count = 0u32;
    for i in border(w, h) {
        let px = &pixels[i * 4..i * 4 + 4];
        if px[3] == 0 {
            continue;
        }
        for c in 0..3 {
            hist[c][px[c] as usize] += 1;
        }
        count += 1;
    }
    if count == 0 {
        return [255, 255, 255];
    }
    let rank = (count - 1) / 2;
    let mut out = [0u8; 3];
    for c in 0..3 {
        let mut seen = 0;
        for (v, &n) in hist[c].iter().enumerate() {
            seen += n;
            if seen > rank {
                out[c] = v as u8;
                break;
            }
        }
    }
    out
}

/// Whether each pixel is background: reachable from the border through pixels within
/// `tolerance` of `bg` (or fully transparent).
pub fn background_mask(pixels: &[u8], width: u32, height: u32, bg: [u8; 3], tolerance: f32) -> Vec<bool> {
    let (w, h) = (width as usize, height as usize);
    let n = w * h;
    // Squared distance threshold in RGB units: tolerance 1 = the black-white diagonal.
    let limit = f64::from(tolerance.clamp(0.0, 1.0)) * 255.0;
    let limit_sq = limit * limit * 3.0;
    let passable = |i: usize| {
        let px = &pixels[i * 4..i * 4 + 4];
        if px[3] == 0 {
            return true;
        }
        let d = |c: usize| i32::from(px[c]) - i32::from(bg[c]);
        let dist_sq = d(0) * d(0) + d(1) * d(1) + d(2) * d(2);
        f64::from(dist_sq) <= limit_sq + 1e-9
    };
    let mut mask = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    for i in border(w, h) {
        if !mask[i] && passable(i) {
            mask[i] = true;
            stack.push(i);
        }
    }
    while let Some(i) = stack.pop() {
        let (x, y) = (i % w, i / w);
        let mut visit = |j: usize| {
            if !mask[j] && passable(j) {
                mask[j] = true;
                stack.push(j);
            }
        };
        if x > 0 {
            visit(i - 1);
        }
        if x + 1 < w {
            visit(i + 1);
        }
        if y > 0 {
            visit(i - w);
        }
        if y + 1 < h {
            visit(i + w);
        }
    }
    mask
}

/// Chamfer (3-4) distance to the nearest `true` cell of `mask`, in thirds of a pixel, capped at
/// `cap`. Two passes, O(w·h).
pub fn distance_to_mask(mask: &[bool], w: usize, h: usize, cap: u16) -> Vec<u16> {
    let mut d: Vec<u16> = mask.iter().map(|&m| if m { 0 } else { cap }).collect();
    let relax = |d: &mut [u16], i: usize, j: usize, step: u16| {
        let via = d[j].saturating_add(step).min(cap);
        if via < d[i] {
            d[i] = via;
        }
    };
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if x > 0 {
                relax(&mut d, i, i - 1, 3);
            }
            if y > 0 {
                relax(&mut d, i, i - w, 3);
                if x > 0 {
                    relax(&mut d, i, i - w - 1, 4);
                }
                if x + 1 < w {
                    relax(&mut d, i, i - w + 1, 4);
                }
            }
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = y * w + x;
            if x + 1 < w {
                relax(&mut d, i, i + 1, 3);
            }
            if y + 1 < h {
                relax(&mut d, i, i + w, 3);
                if x + 1 < w {
                    relax(&mut d, i, i + w + 1, 4);
                }
                if x > 0 {
                    relax(&mut d, i, i + w - 1, 4);
                }
            }
        }
    }
    d
}

/// Make the plain background of an RGBA8 image transparent, in place (see the module docs).
pub fn remove_background(pixels: &mut [u8], width: u32, height: u32, options: Options) -> Result<(), String> {
    let (w, h) = check(pixels, width, height)?;
    if w == 0 || h == 0 {
        return Ok(());
    }
    let bg = estimate_background(pixels, width, height);
    let mask = background_mask(pixels, width, height, bg, options.tolerance);
    let feather = options.feather.min(MAX_FEATHER);
    // Alpha ramp: a foreground pixel at distance d (pixels) from the background keeps
    // min(1, d / (feather + 1)) of its alpha; with feather 0 nothing but the background changes.
    let ramp = 3 * (feather as u16 + 1);
    let distance =
        if feather > 0 && mask.iter().any(|&m| m) { Some(distance_to_mask(&mask, w, h, ramp)) } else { None };
    for (i, px) in pixels.chunks_exact_mut(4).enumerate() {
        if mask[i] {
            px[3] = 0;
        } else if let Some(d) = &distance {
            let d = u32::from(d[i]);
            if d < u32::from(ramp) {
                px[3] = ((u32::from(px[3]) * d + u32::from(ramp) / 2) / u32::from(ramp)) as u8;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: [u8; 4] = [255, 255, 255, 255];
    const RED: [u8; 4] = [220, 30, 30, 255];

    struct Img {
        w: u32,
        h: u32,
        px: Vec<u8>,
    }

    impl Img {
        fn filled(w: u32, h: u32, c: [u8; 4]) -> Self {
            Self { w, h, px: c.iter().copied().cycle().take(w as usize * h as usize * 4).collect() }
        }
        fn put(&mut self, x: u32, y: u32, c: [u8; 4]) {
            let i = (y * self.w + x) as usize * 4;
            self.px[i..i + 4].copy_from_slice(&c);
        }
        fn alpha(&self, x: u32, y: u32) -> u8 {
            self.px[(y * self.w + x) as usize * 4 + 3]
        }
        /// Paint pixels whose distance to (cx, cy) lies in [r0, r1].
        fn ring(&mut self, cx: i64, cy: i64, r0: i64, r1: i64, c: [u8; 4]) {
            for y in 0..self.h {
                for x in 0..self.w {
                    let d2 = (x as i64 - cx).pow(2) + (y as i64 - cy).pow(2);
                    if d2 >= r0 * r0 && d2 <= r1 * r1 {
                        self.put(x, y, c);
                    }
                }
            }
        }
        fn remove(&mut self, options: Options) {
            remove_background(&mut self.px, self.w, self.h, options).unwrap();
        }
    }

    #[test]
    fn options_defaults_and_values() {
        assert_eq!(parse_options("").unwrap(), Options { tolerance: 0.1, feather: 1 });
        assert_eq!(parse_options("  null ").unwrap(), Options::default());
        assert_eq!(parse_options("{}").unwrap(), Options::default());
        assert_eq!(parse_options(r#"{"tolerance":0.25}"#).unwrap(), Options { tolerance: 0.25, feather: 1 });
        assert_eq!(parse_options(r#"{"feather":8,"tolerance":0}"#).unwrap(), Options { tolerance: 0.0, feather: 8 });
        assert_eq!(parse_options(r#"{"feather":3.0}"#).unwrap().feather, 3);
    }

    #[test]
    fn options_errors_name_the_key() {
        let e = parse_options(r#"{"tolerance":0.1,"threshold":3}"#).unwrap_err();
        assert!(e.contains("\"threshold\""), "{e}");
        let e = parse_options(r#"{"tolerance":1.5}"#).unwrap_err();
        assert!(e.contains("tolerance"), "{e}");
        let e = parse_options(r#"{"tolerance":"high"}"#).unwrap_err();
        assert!(e.contains("tolerance"), "{e}");
        let e = parse_options(r#"{"feather":9}"#).unwrap_err();
        assert!(e.contains("feather"), "{e}");
        let e = parse_options(r#"{"feather":1.5}"#).unwrap_err();
        assert!(e.contains("feather"), "{e}");
        assert!(parse_options(r#"{"feather":-1}"#).is_err());
        assert!(parse_options("[1,2]").is_err());
        assert!(parse_options("{nope").is_err());
    }

    #[test]
    fn border_visits_each_border_pixel_once() {
        let mut v: Vec<usize> = border(5, 4).collect();
        v.sort();
        assert_eq!(v, vec![0, 1, 2, 3, 4, 5, 9, 10, 14, 15, 16, 17, 18, 19]);
        assert_eq!(border(1, 1).collect::<Vec<_>>(), vec![0]);
        assert_eq!(border(3, 1).count(), 3);
        assert_eq!(border(1, 3).count(), 3);
        assert_eq!(border(2, 2).count(), 4);
        assert_eq!(border(0, 0).count(), 0);
    }

    #[test]
    fn background_is_the_median_of_the_border() {
        let mut img = Img::filled(10, 10, [250, 250, 245, 255]);
        img.put(0, 0, [0, 0, 0, 255]);
        img.put(9, 9, [10, 200, 0, 255]);
        img.put(5, 5, [1, 2, 3, 255]); // interior: ignored
        assert_eq!(estimate_background(&img.px, 10, 10), [250, 250, 245]);
    }

    #[test]
    fn red_circle_on_white() {
        let mut img = Img::filled(101, 101, WHITE);
        img.ring(50, 50, 0, 30, RED);
        img.remove(Options::default());
        for (x, y) in [(0, 0), (100, 0), (0, 100), (100, 100), (50, 5), (5, 50)] {
            assert_eq!(img.alpha(x, y), 0, "background at ({x},{y})");
        }
        assert_eq!(img.alpha(50, 50), 255, "circle centre");
        assert_eq!(img.alpha(50, 30), 255, "inside the circle, away from the edge");
        // Feather 1: the outermost ring of the circle is partly transparent.
        let edge = img.alpha(50, 20);
        assert!(edge > 0 && edge < 255, "edge alpha {edge}");
        assert_eq!(img.alpha(50, 19), 0, "just outside the circle");
        // Colours are untouched.
        assert_eq!(&img.px[(50 * 101 + 50) * 4..(50 * 101 + 50) * 4 + 3], &RED[..3]);
    }

    #[test]
    fn hole_inside_a_ring_stays_opaque() {
        let mut img = Img::filled(120, 120, WHITE);
        img.ring(60, 60, 20, 35, RED);
        img.remove(Options::default());
        assert_eq!(img.alpha(0, 0), 0);
        assert_eq!(img.alpha(60, 60), 255, "white hole that does not touch the border");
        assert_eq!(img.alpha(60, 45), 255, "hole near the ring");
        assert_eq!(img.alpha(60, 35), 255, "ring body");
        assert_eq!(img.alpha(60, 10), 0, "outside the ring");
    }

    #[test]
    fn hole_open_to_the_border_is_removed() {
        // A "C": the ring has a gap joining its hole to the outside, so the hole goes too.
        let mut img = Img::filled(120, 120, WHITE);
        img.ring(60, 60, 20, 35, RED);
        for y in 55..66 {
            for x in 60..120 {
                img.put(x, y, WHITE);
            }
        }
        img.remove(Options { tolerance: 0.1, feather: 0 });
        assert_eq!(img.alpha(60, 60), 0);
        assert_eq!(img.alpha(60, 35), 255);
    }

    #[test]
    fn feather_ramps_alpha_over_the_given_width() {
        // A red square on white; feather 4 ramps the outer 4 pixels.
        let mut img = Img::filled(64, 64, WHITE);
        for y in 16..48 {
            for x in 16..48 {
                img.put(x, y, RED);
            }
        }
        img.remove(Options { tolerance: 0.1, feather: 4 });
        let row: Vec<u8> = (14..24).map(|x| img.alpha(x, 32)).collect();
        assert_eq!(row[..2], [0, 0]);
        for pair in row.windows(2) {
            assert!(pair[0] <= pair[1], "ramp must not decrease inward: {row:?}");
        }
        let ramp = &row[2..6];
        assert!(ramp.iter().all(|&a| a > 0 && a < 255), "intermediate alphas: {row:?}");
        assert!(row[6..].iter().all(|&a| a == 255), "{row:?}");

        // Feather 0: a hard edge.
        let mut img = Img::filled(64, 64, WHITE);
        for y in 16..48 {
            for x in 16..48 {
                img.put(x, y, RED);
            }
        }
        img.remove(Options { tolerance: 0.1, feather: 0 });
        assert_eq!((img.alpha(15, 32), img.alpha(16, 32)), (0, 255));
    }

    #[test]
    fn tolerance_is_respected() {
        // Off-white background with a light-grey band touching the border, and a dark blob.
        let build = || {
            let mut img = Img::filled(50, 50, WHITE);
            for y in 0..50 {
                for x in 0..10 {
                    img.put(x, y, [235, 235, 235, 255]); // distance 20/255 ≈ 0.078
                }
            }
            img.ring(30, 25, 0, 8, [20, 20, 20, 255]);
            img
        };
        let mut strict = build();
        strict.remove(Options { tolerance: 0.05, feather: 0 });
        assert_eq!(strict.alpha(40, 5), 0, "white is the background");
        assert_eq!(strict.alpha(5, 25), 255, "grey band beyond tolerance 0.05 stays");

        let mut loose = build();
        loose.remove(Options { tolerance: 0.1, feather: 0 });
        assert_eq!(loose.alpha(5, 25), 0, "grey band within tolerance 0.1 goes");
        assert_eq!(loose.alpha(30, 25), 255, "dark blob stays");

        let mut exact = build();
        exact.remove(Options { tolerance: 0.0, feather: 0 });
        assert_eq!((exact.alpha(40, 5), exact.alpha(5, 25)), (0, 255));

        let mut all = build();
        all.remove(Options { tolerance: 1.0, feather: 0 });
        assert!(all.px.chunks_exact(4).all(|p| p[3] == 0), "tolerance 1 removes everything reachable");
    }

    #[test]
    fn transparent_pixels_count_as_background() {
        let mut img = Img::filled(20, 20, [0, 0, 0, 0]);
        img.ring(10, 10, 0, 4, RED);
        img.remove(Options { tolerance: 0.1, feather: 0 });
        assert_eq!(img.alpha(0, 0), 0);
        assert_eq!(img.alpha(10, 10), 255);
    }

    #[test]
    fn tiny_and_thin_images() {
        let mut one = Img::filled(1, 1, WHITE);
        one.remove(Options::default());
        assert_eq!(one.alpha(0, 0), 0);

        // 1-pixel-tall strip: white, red, white; every pixel is border.
        let mut strip = Img::filled(9, 1, WHITE);
        for x in 3..6 {
            strip.put(x, 0, RED);
        }
        strip.remove(Options { tolerance: 0.1, feather: 0 });
        let alphas: Vec<u8> = (0..9).map(|x| strip.alpha(x, 0)).collect();
        assert_eq!(alphas, [0, 0, 0, 255, 255, 255, 0, 0, 0]);

        let mut column = Img::filled(1, 7, WHITE);
        column.put(0, 3, RED);
        column.remove(Options::default());
        let alphas: Vec<u8> = (0..7).map(|y| column.alpha(0, y)).collect();
        assert_eq!(alphas[..3], [0, 0, 0]);
        assert!(alphas[3] > 0 && alphas[3] < 255, "feathered single pixel: {alphas:?}");

        let mut empty: Vec<u8> = Vec::new();
        remove_background(&mut empty, 0, 0, Options::default()).unwrap();
        assert!(remove_background(&mut [0u8; 7], 2, 1, Options::default()).is_err());
    }

    #[test]
    fn large_image_with_long_corridors_is_fast() {
        // 1024x1024, white corridors between red lines: one huge fill region, many edges.
        let (w, h) = (1024u32, 1024u32);
        let mut img = Img::filled(w, h, WHITE);
        for y in (2..h - 2).step_by(4) {
            let gap = if (y / 4) % 2 == 0 { w - 3 } else { 2 };
            for x in 0..w {
                if x != gap {
                    img.put(x, y, RED);
                }
            }
        }
        let start = std::time::Instant::now();
        img.remove(Options { tolerance: 0.1, feather: 8 });
        let elapsed = start.elapsed();
        assert_eq!(img.alpha(500, 1), 0);
        assert_eq!(img.alpha(500, 1021), 0);
        assert!(elapsed.as_secs_f64() < 5.0, "took {elapsed:?}");
    }
}
