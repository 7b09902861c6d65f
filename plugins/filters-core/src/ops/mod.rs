//! The filters as plain functions over RGBA8 bytes (row-major, 4 bytes a pixel), shared by the
//! wasm component and native callers (tests, host benchmarks).
//!
//! Everything works in place on the caller's slice. Per-channel curves are 256-entry lookup
//! tables (with the intensity blend folded in), colour matrices and blends use integer fixed
//! point, and blur is three extended-box passes per axis with running sums, so its cost does not
//! depend on the radius. Alpha is never changed.

mod blur;
mod params;

pub use params::{FILTERS, FilterDef, ParamDef};

/// Apply filter `id` to `pixels` (`width * height * 4` RGBA8 bytes) in place.
///
/// `intensity` 0.0..=1.0 blends the effect with the original (0 leaves the bytes unchanged;
/// out-of-range values are clamped, NaN counts as 1). `params_json` is the filter's JSON
/// parameter object; `""`, `"{}"` and `"null"` mean the defaults. Errors are human-readable and
/// name the offending filter id or parameter.
pub fn apply_filter(
    id: &str,
    pixels: &mut [u8],
    width: u32,
    height: u32,
    intensity: f32,
    params_json: &str,
) -> Result<(), String> {
    let def = params::find(id)?;
    let p = def.parse_params(params_json)?;
    let expected = width as u64 * height as u64 * 4;
    if pixels.len() as u64 != expected {
        return Err(format!("pixel buffer is {} bytes, expected {width}×{height}×4 = {expected}", pixels.len()));
    }
    let t = if intensity.is_finite() { intensity.clamp(0.0, 1.0) } else { 1.0 };
    // Blend weight in 1/256ths: out = orig + (effect - orig) * ti / 256.
    let ti = (t * 256.0).round() as i32;
    if ti == 0 || pixels.is_empty() {
        return Ok(());
    }
    let (w, h) = (width as usize, height as usize);
    match def.id {
        "grayscale" => grayscale(pixels, ti),
        "sepia" => matrix(pixels, ti, &SEPIA),
        "vintage" => vintage(pixels, w, h, ti),
        "invert" => apply_lut(pixels, &curve(t, |v| 255.0 - v)),
        "blur" => blur(pixels, w, h, p[0], ti),
        "sharpen" => sharpen(pixels, w, h, p[0], p[1] * t),
        "vignette" => vignette(pixels, w, h, p[0] * t),
        "brightness" => brightness(pixels, p[0] * t),
        "contrast" => contrast(pixels, p[0] * t),
        "saturation" => saturation(pixels, p[0] * t),
        "posterize" => posterize(pixels, t, p[0] as u32),
        "hue_rotate" => matrix(pixels, ti, &hue_matrix(p[0])),
        other => unreachable!("filter {other:?} is listed but not implemented"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Building blocks.

/// `orig` moved toward `new` by `ti`/256 (both 0..=255; the result stays in range).
#[inline(always)]
fn mix(orig: i32, new: i32, ti: i32) -> u8 {
    (orig + (((new - orig) * ti + 128) >> 8)) as u8
}

#[inline(always)]
fn clamp8(v: i32) -> i32 {
    v.clamp(0, 255)
}

/// Call `f` on every pixel, four pixels a loop iteration (each loop back-edge costs the wasm
/// runtime an interrupt check and register reloads, so short loop bodies are slow there).
#[inline(always)]
fn for_each_pixel(pixels: &mut [u8], mut f: impl FnMut(&mut [u8; 4])) {
    let (blocks, rest) = pixels.as_chunks_mut::<16>();
    for block in blocks {
        for px in block.as_chunks_mut::<4>().0 {
            f(px);
        }
    }
    for px in rest.as_chunks_mut::<4>().0 {
        f(px);
    }
}

/// Run `f` (r, g, b → r', g', b', each already in 0..=255) over every pixel, blending by `ti`.
/// Not inlined: each filter's loop stays a small function the wasm compiler handles well.
#[inline(never)]
fn per_pixel(pixels: &mut [u8], ti: i32, f: impl Fn(i32, i32, i32) -> [i32; 3]) {
    if ti >= 256 {
        for_each_pixel(pixels, |px| {
            let [r, g, b] = f(px[0] as i32, px[1] as i32, px[2] as i32);
            px[0] = r as u8;
            px[1] = g as u8;
            px[2] = b as u8;
        });
    } else {
        for_each_pixel(pixels, |px| {
            let (r, g, b) = (px[0] as i32, px[1] as i32, px[2] as i32);
            let [nr, ng, nb] = f(r, g, b);
            px[0] = mix(r, nr, ti);
            px[1] = mix(g, ng, ti);
            px[2] = mix(b, nb, ti);
        });
    }
}

/// A per-channel curve as a lookup table, blended with the identity by `t`.
fn curve(t: f32, f: impl Fn(f32) -> f32) -> [u8; 256] {
    let mut lut = [0u8; 256];
    for (i, slot) in lut.iter_mut().enumerate() {
        let v = i as f32;
        *slot = (v + (f(v) - v) * t).round().clamp(0.0, 255.0) as u8;
    }
    lut
}

/// Map R, G and B through `lut`.
#[inline(never)]
fn apply_lut(pixels: &mut [u8], lut: &[u8; 256]) {
    for_each_pixel(pixels, |px| {
        px[0] = lut[px[0] as usize];
        px[1] = lut[px[1] as usize];
        px[2] = lut[px[2] as usize];
    });
}

/// Rec. 709 luma weights in 1/256ths (sum 256, so the luma of 0..=255 stays in 0..=255).
#[inline(always)]
fn luma(r: i32, g: i32, b: i32) -> i32 {
    (54 * r + 183 * g + 19 * b + 128) >> 8
}

/// A 3×3 colour matrix in 1/1024ths.
type Matrix = [[i32; 3]; 3];

/// The classic sepia matrix.
const SEPIA: Matrix = [[402, 788, 194], [357, 702, 172], [279, 547, 134]];

fn to_fixed(m: [[f32; 3]; 3]) -> Matrix {
    m.map(|row| row.map(|v| (v * 1024.0).round() as i32))
}

#[inline(always)]
fn mul(m: &Matrix, r: i32, g: i32, b: i32) -> [i32; 3] {
    [
        clamp8((m[0][0] * r + m[0][1] * g + m[0][2] * b + 512) >> 10),
        clamp8((m[1][0] * r + m[1][1] * g + m[1][2] * b + 512) >> 10),
        clamp8((m[2][0] * r + m[2][1] * g + m[2][2] * b + 512) >> 10),
    ]
}

fn matrix(pixels: &mut [u8], ti: i32, m: &Matrix) {
    let m = *m;
    per_pixel(pixels, ti, |r, g, b| mul(&m, r, g, b));
}

/// The luminance-preserving hue rotation of SVG's `feColorMatrix type="hueRotate"`.
fn hue_matrix(degrees: f32) -> Matrix {
    let (s, c) = degrees.to_radians().sin_cos();
    to_fixed([
        [0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715, 0.072 - c * 0.072 + s * 0.928],
        [0.213 - c * 0.213 + s * 0.143, 0.715 + c * 0.285 + s * 0.140, 0.072 - c * 0.072 - s * 0.283],
        [0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715, 0.072 + c * 0.928 + s * 0.072],
    ])
}

// ---------------------------------------------------------------------------------------------
// Filters.

fn grayscale(pixels: &mut [u8], ti: i32) {
    per_pixel(pixels, ti, |r, g, b| {
        let y = luma(r, g, b);
        [y, y, y]
    });
}

/// `amount` -1..=1: toward black (multiplicative) or toward white.
fn brightness(pixels: &mut [u8], amount: f32) {
    apply_lut(pixels, &curve(1.0, |v| if amount >= 0.0 { v + (255.0 - v) * amount } else { v * (1.0 + amount) }));
}

/// `amount` -1..=1: -1 is flat grey, 1 is (nearly) a threshold.
fn contrast(pixels: &mut [u8], amount: f32) {
    let c = (amount * 255.0).min(254.0);
    let factor = 259.0 * (c + 255.0) / (255.0 * (259.0 - c));
    apply_lut(pixels, &curve(1.0, |v| (v - 127.5) * factor + 127.5));
}

/// `amount` -1..=1: -1 is grayscale, 0 unchanged, 1 doubles the distance from grey.
fn saturation(pixels: &mut [u8], amount: f32) {
    let s = ((1.0 + amount) * 256.0).round() as i32;
    per_pixel(pixels, 256, |r, g, b| {
        let y = luma(r, g, b);
        [
            clamp8(y + (((r - y) * s + 128) >> 8)),
            clamp8(y + (((g - y) * s + 128) >> 8)),
            clamp8(y + (((b - y) * s + 128) >> 8)),
        ]
    });
}

fn posterize(pixels: &mut [u8], t: f32, levels: u32) {
    let steps = (levels.max(2) - 1) as f32;
    apply_lut(pixels, &curve(t, |v| (v * steps / 255.0).round() * 255.0 / steps));
}

/// Gaussian blur of standard deviation `radius`, blended by `ti`.
fn blur(pixels: &mut [u8], w: usize, h: usize, radius: f32, ti: i32) {
    if ti >= 256 {
        blur::gaussian(pixels, w, h, radius, |px, r, g, b| {
            px[0] = r as u8;
            px[1] = g as u8;
            px[2] = b as u8;
        });
    } else {
        blur::gaussian(pixels, w, h, radius, |px, r, g, b| {
            px[0] = mix(px[0] as i32, r as i32, ti);
            px[1] = mix(px[1] as i32, g as i32, ti);
            px[2] = mix(px[2] as i32, b as i32, ti);
        });
    }
}

/// Unsharp mask: `orig + amount * (orig - gaussian(orig, radius))`.
fn sharpen(pixels: &mut [u8], w: usize, h: usize, radius: f32, amount: f32) {
    let k = (amount * 256.0).round() as i32;
    if k == 0 {
        return;
    }
    let boost = |o: u8, b: u32| {
        let o = o as i32;
        clamp8(o + (((o - b as i32) * k + 128) >> 8)) as u8
    };
    blur::gaussian(pixels, w, h, radius, |px, r, g, b| {
        px[0] = boost(px[0], r);
        px[1] = boost(px[1], g);
        px[2] = boost(px[2], b);
    });
}

/// Darkening factors (1/256ths) for a vignette of `strength`, indexed by the squared normalised
/// distance from the centre in 1/1024ths (0 = centre, 1024 = corner); see [`for_each_vignetted`].
fn vignette_lut(strength: f32) -> Vec<u16> {
    (0..=1024)
        .map(|i| {
            let r = (i as f32 / 1024.0).sqrt();
            let x = ((r - 0.3) / 0.7).clamp(0.0, 1.0);
            let mask = x * x * (3.0 - 2.0 * x);
            ((1.0 - strength * mask).clamp(0.0, 1.0) * 256.0).round() as u16
        })
        .collect()
}

/// Squared normalised distances from the centre along one axis, in 1/32768ths, so that
/// `along_x[x] + along_y[y]` is 0..=65536.
fn axis_distances(n: usize) -> Vec<u32> {
    let half = n as f32 / 2.0;
    (0..n)
        .map(|i| {
            let d = (i as f32 + 0.5 - half) / half;
            (d * d * 32768.0).round() as u32
        })
        .collect()
}

/// Call `f(pixel, factor)` for every pixel with its vignette factor from `lut`.
#[inline(never)]
fn for_each_vignetted(pixels: &mut [u8], w: usize, h: usize, lut: &[u16], mut f: impl FnMut(&mut [u8; 4], i32)) {
    let lut: &[u16; 1025] = lut.try_into().expect("vignette table has 1025 entries");
    let dx = axis_distances(w);
    let dy = axis_distances(h);
    let (dx4, dx_rest) = dx.as_chunks::<4>();
    for (row, &dy) in pixels.chunks_exact_mut(w * 4).zip(&dy) {
        let factor = |dx: u32| lut[((dx + dy) >> 6).min(1024) as usize] as i32;
        // Four pixels a loop iteration (see `for_each_pixel`).
        let (px16, px_rest) = row.as_chunks_mut::<16>();
        for (block, dx) in px16.iter_mut().zip(dx4) {
            for (px, &dx) in block.as_chunks_mut::<4>().0.iter_mut().zip(dx) {
                f(px, factor(dx));
            }
        }
        for (px, &dx) in px_rest.as_chunks_mut::<4>().0.iter_mut().zip(dx_rest) {
            f(px, factor(dx));
        }
    }
}

/// `strength` 0..=1: how dark the corners get.
fn vignette(pixels: &mut [u8], w: usize, h: usize, strength: f32) {
    let lut = vignette_lut(strength);
    for_each_vignetted(pixels, w, h, &lut, |px, f| {
        px[0] = ((px[0] as i32 * f + 128) >> 8) as u8;
        px[1] = ((px[1] as i32 * f + 128) >> 8) as u8;
        px[2] = ((px[2] as i32 * f + 128) >> 8) as u8;
    });
}

/// Mostly-sepia toning, lifted blacks and softened whites (faded print), a subtle vignette.
fn vintage(pixels: &mut [u8], w: usize, h: usize, ti: i32) {
    // 85 % sepia, 15 % original colour.
    let mut tone = SEPIA;
    for (i, row) in tone.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (*v * 85 + if i == j { 1024 * 15 } else { 0 } + 50) / 100;
        }
    }
    // Faded print: blacks lifted (bluish), whites lowered (warm).
    let fade = |lo: f32, hi: f32| curve(1.0, move |v| lo + v * (hi - lo) / 255.0);
    let (fr, fg, fb) = (fade(28.0, 242.0), fade(22.0, 232.0), fade(38.0, 205.0));
    let lut = vignette_lut(0.35);
    for_each_vignetted(pixels, w, h, &lut, |px, f| {
        let (r, g, b) = (px[0] as i32, px[1] as i32, px[2] as i32);
        let [sr, sg, sb] = mul(&tone, r, g, b);
        let nr = (fr[sr as usize] as i32 * f + 128) >> 8;
        let ng = (fg[sg as usize] as i32 * f + 128) >> 8;
        let nb = (fb[sb as usize] as i32 * f + 128) >> 8;
        px[0] = mix(r, nr, ti);
        px[1] = mix(g, ng, ti);
        px[2] = mix(b, nb, ti);
    });
}
