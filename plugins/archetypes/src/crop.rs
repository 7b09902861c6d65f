//! Exact-ratio crop planning, including the content-aware `smart` anchor.
//!
//! Everything here is a pure function of `(pixels, width, height)` with RGBA8 pixels, row-major.
//!
//! The crop size follows the host's rule exactly: reduce the target `w:h` by their gcd, take
//! `k = min(W / w, H / h)` and keep `(w·k) × (h·k)`, so `width · h == height · w` always holds.
//! The anchor then only decides where that window sits.
//!
//! `smart` computes a saliency map at reduced resolution (long side ≤ [`SALIENCY_MAX_SIDE`]):
//! Sobel edge magnitude + local contrast (standard deviation of luma over a 3×3 cell
//! neighbourhood, which also sees texture finer than one cell) + how much a cell's saturation
//! stands out from the image's mean. A summed-area table makes each candidate window cost O(1);
//! the window with the largest share of the image's saliency wins, minus a mild penalty for
//! straying from the centre (so flat or uniformly textured images crop like `center`).

use easel_plugin_sdk::cropper::{Anchor, Rect};

/// Long side, in cells, of the saliency map `smart` works on.
pub const SALIENCY_MAX_SIDE: u32 = 256;

/// Weight of the centre bias: a window at the far end of the free range loses this share of
/// the image's total saliency (relative to the centred window).
pub const CENTER_BIAS: f64 = 0.05;

/// Most candidate offsets tried along one axis; larger ranges are sampled evenly.
const MAX_CANDIDATES: u32 = 1024;

/// Greatest common divisor.
pub fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `w:h` in lowest terms; `None` when either term is zero.
pub fn reduce(w: u32, h: u32) -> Option<(u32, u32)> {
    if w == 0 || h == 0 {
        return None;
    }
    let g = gcd(w, h);
    Some((w / g, h / g))
}

/// The largest size with exactly the ratio `w:h` that fits in `width`×`height`, as whole
/// multiples of the reduced ratio. `None` when a term is zero or not even one multiple fits.
pub fn exact_size(width: u32, height: u32, w: u32, h: u32) -> Option<(u32, u32)> {
    let (rw, rh) = reduce(w, h)?;
    let k = (width / rw).min(height / rh);
    (k > 0).then(|| (rw * k, rh * k))
}

/// The rectangle of a `width`×`height` image to keep for exactly `ratio_w:ratio_h`, placed by
/// `anchor`. `pixels` (RGBA8, `width * height * 4` bytes) are only read for [`Anchor::Smart`].
pub fn plan(
    pixels: &[u8],
    width: u32,
    height: u32,
    ratio_w: u32,
    ratio_h: u32,
    anchor: Anchor,
) -> Result<Rect, String> {
    if ratio_w == 0 || ratio_h == 0 {
        return Err(format!("aspect ratio {ratio_w}:{ratio_h} has a zero term"));
    }
    if width == 0 || height == 0 {
        return Err(format!("image is empty ({width}x{height})"));
    }
    if pixels.len() as u64 != u64::from(width) * u64::from(height) * 4 {
        return Err("pixel buffer length is not width * height * 4".into());
    }
    let (cw, ch) = exact_size(width, height, ratio_w, ratio_h).ok_or_else(|| {
        let (rw, rh) = reduce(ratio_w, ratio_h).unwrap_or((ratio_w, ratio_h));
        format!("a {width}x{height} image is too small for an exact {rw}:{rh} crop")
    })?;
    let (sx, sy) = (width - cw, height - ch);
    let (x, y) = match anchor {
        Anchor::Center => (sx / 2, sy / 2),
        Anchor::Top => (sx / 2, 0),
        Anchor::Bottom => (sx / 2, sy),
        Anchor::Left => (0, sy / 2),
        Anchor::Right => (sx, sy / 2),
        Anchor::Smart => smart_offset(pixels, width, height, cw, ch),
    };
    Ok(Rect { x, y, width: cw, height: ch })
}

/// A saliency map: `width`×`height` cells, each covering about `image / map` pixels.
#[derive(Clone, Debug)]
pub struct Saliency {
    /// Cells across.
    pub width: usize,
    /// Cells down.
    pub height: usize,
    /// Row-major interest values, ≥ 0.
    pub values: Vec<f32>,
}

/// The size of the saliency map for a `width`×`height` image: the image itself when its long
/// side is at most [`SALIENCY_MAX_SIDE`], otherwise scaled down to that long side.
pub fn saliency_size(width: u32, height: u32) -> (usize, usize) {
    let long = width.max(height);
    if long <= SALIENCY_MAX_SIDE {
        return (width as usize, height as usize);
    }
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(SALIENCY_MAX_SIDE) + u64::from(long) / 2) / u64::from(long)).max(1) as usize
    };
    (scale(width), scale(height))
}

/// Compute the saliency map of an RGBA8 image (transparent pixels count as white).
///
/// Panics when `pixels` is shorter than `width * height * 4`.
pub fn saliency(pixels: &[u8], width: u32, height: u32) -> Saliency {
    let (gw, gh) = saliency_size(width, height);
    let (w, h) = (width as usize, height as usize);
    let n = gw * gh;

    // Area-average into cells: sums of r, g, b, luma and luma² per cell, plus pixel counts.
    let col_cell: Vec<usize> = (0..w).map(|x| x * gw / w).collect();
    let mut sum = vec![[0f64; 5]; n];
    let mut count = vec![0u32; n];
    for y in 0..h {
        let row_cell = (y * gh / h) * gw;
        let row = &pixels[y * w * 4..(y + 1) * w * 4];
        for (x, px) in row.chunks_exact(4).enumerate() {
            let a = u32::from(px[3]);
            // Composite on white so removed backgrounds read as plain.
            let c = |v: u8| f64::from((u32::from(v) * a + 255 * (255 - a)) / 255);
            let (r, g, b) = (c(px[0]), c(px[1]), c(px[2]));
            let luma = 0.299 * r + 0.587 * g + 0.114 * b;
            let cell = row_cell + col_cell[x];
            let s = &mut sum[cell];
            s[0] += r;
            s[1] += g;
            s[2] += b;
            s[3] += luma;
            s[4] += luma * luma;
            count[cell] += 1;
        }
    }
    let mut luma = vec![0f64; n];
    let mut luma_sq = vec![0f64; n];
    let mut chroma = vec![0f64; n];
    for i in 0..n {
        let c = f64::from(count[i].max(1));
        let s = sum[i];
        let (r, g, b) = (s[0] / c, s[1] / c, s[2] / c);
        luma[i] = s[3] / c;
        luma_sq[i] = s[4] / c;
        chroma[i] = (r.max(g).max(b) - r.min(g).min(b)) / 255.0;
    }
    let mean_chroma = chroma.iter().sum::<f64>() / n as f64;

    let at = |x: isize, y: isize| -> usize {
        let x = x.clamp(0, gw as isize - 1) as usize;
        let y = y.clamp(0, gh as isize - 1) as usize;
        y * gw + x
    };
    let mut values = vec![0f32; n];
    for y in 0..gh as isize {
        for x in 0..gw as isize {
            let l = |dx: isize, dy: isize| luma[at(x + dx, y + dy)];
            // Sobel edge magnitude, scaled to about 0..1.
            let gx = (l(1, -1) + 2.0 * l(1, 0) + l(1, 1)) - (l(-1, -1) + 2.0 * l(-1, 0) + l(-1, 1));
            let gy = (l(-1, 1) + 2.0 * l(0, 1) + l(1, 1)) - (l(-1, -1) + 2.0 * l(0, -1) + l(1, -1));
            let edge = (gx * gx + gy * gy).sqrt() / (4.0 * 255.0);
            // Local contrast: luma standard deviation over the 3×3 cell neighbourhood, pooled
            // with each cell's own variance (texture finer than a cell).
            let (mut m1, mut m2) = (0.0, 0.0);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let i = at(x + dx, y + dy);
                    m1 += luma[i];
                    m2 += luma_sq[i];
                }
            }
            let (m1, m2) = (m1 / 9.0, m2 / 9.0);
            let contrast = (m2 - m1 * m1).max(0.0).sqrt() / 127.5;
            // Colour that stands out from the image's overall saturation.
            let i = at(x, y);
            let colour = (chroma[i] - mean_chroma).abs();
            values[i] = (edge + contrast + 0.5 * colour) as f32;
        }
    }
    Saliency { width: gw, height: gh, values }
}

/// A summed-area table over a saliency map, queried at fractional cell coordinates (bilinear
/// interpolation of the table = uniform interest within a cell).
struct Integral {
    width: usize,
    height: usize,
    table: Vec<f64>,
}

impl Integral {
    fn new(map: &Saliency) -> Self {
        let (w, h) = (map.width, map.height);
        let mut table = vec![0f64; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0.0;
            for x in 0..w {
                row += f64::from(map.values[y * w + x]);
                table[(y + 1) * (w + 1) + x + 1] = table[y * (w + 1) + x + 1] + row;
            }
        }
        Self { width: w, height: h, table }
    }

    fn total(&self) -> f64 {
        self.table[self.table.len() - 1]
    }

    /// Interest in `[0, u] × [0, v]`, `u` in cells across, `v` in cells down.
    fn prefix(&self, u: f64, v: f64) -> f64 {
        let u = u.clamp(0.0, self.width as f64);
        let v = v.clamp(0.0, self.height as f64);
        let i = (u.floor() as usize).min(self.width - 1);
        let j = (v.floor() as usize).min(self.height - 1);
        let (tu, tv) = (u - i as f64, v - j as f64);
        let s = |x: usize, y: usize| self.table[y * (self.width + 1) + x];
        let top = s(i, j) * (1.0 - tu) + s(i + 1, j) * tu;
        let bottom = s(i, j + 1) * (1.0 - tu) + s(i + 1, j + 1) * tu;
        top * (1.0 - tv) + bottom * tv
    }

    fn window(&self, u0: f64, v0: f64, u1: f64, v1: f64) -> f64 {
        self.prefix(u1, v1) - self.prefix(u0, v1) - self.prefix(u1, v0) + self.prefix(u0, v0)
    }
}

/// Candidate offsets in `0..=slack`: all of them, or an even sample including both ends.
fn candidates(slack: u32) -> Vec<u32> {
    if slack <= MAX_CANDIDATES {
        (0..=slack).collect()
    } else {
        (0..=MAX_CANDIDATES)
            .map(|i| {
                ((u64::from(i) * u64::from(slack) + u64::from(MAX_CANDIDATES) / 2) / u64::from(MAX_CANDIDATES)) as u32
            })
            .collect()
    }
}

/// The top-left corner of the `cw`×`ch` window of a `width`×`height` image that holds the most
/// interest (see the module docs). Ties and featureless images resolve to the centred window.
pub fn smart_offset(pixels: &[u8], width: u32, height: u32, cw: u32, ch: u32) -> (u32, u32) {
    let (sx, sy) = (width - cw, height - ch);
    let centred = (sx / 2, sy / 2);
    if sx == 0 && sy == 0 {
        return (0, 0);
    }
    let map = saliency(pixels, width, height);
    let integral = Integral::new(&map);
    let total = integral.total();
    if total.is_nan() || total <= f64::EPSILON {
        return centred;
    }
    let fx = map.width as f64 / f64::from(width);
    let fy = map.height as f64 / f64::from(height);
    let deviation = |offset: u32, slack: u32| {
        if slack == 0 {
            0.0
        } else {
            let half = f64::from(slack) / 2.0;
            (f64::from(offset) - half) / half
        }
    };
    let score = |x: u32, y: u32| {
        let share =
            integral.window(f64::from(x) * fx, f64::from(y) * fy, f64::from(x + cw) * fx, f64::from(y + ch) * fy)
                / total;
        let (dx, dy) = (deviation(x, sx), deviation(y, sy));
        share - CENTER_BIAS * (dx * dx + dy * dy)
    };
    let xs = candidates(sx);
    let ys = candidates(sy);
    let mut best = centred;
    let mut best_score = score(centred.0, centred.1);
    for &y in &ys {
        for &x in &xs {
            let s = score(x, y);
            if s > best_score + 1e-12 {
                best_score = s;
                best = (x, y);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANCHORS: [Anchor; 6] =
        [Anchor::Center, Anchor::Top, Anchor::Bottom, Anchor::Left, Anchor::Right, Anchor::Smart];

    fn flat(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
        let mut v = Vec::with_capacity(width as usize * height as usize * 4);
        for _ in 0..width as usize * height as usize {
            v.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
        }
        v
    }

    /// Paint a busy, colourful, high-contrast patch (pseudo-random noise) into `[x0,x1)×[y0,y1)`.
    fn busy_patch(pixels: &mut [u8], width: u32, x0: u32, y0: u32, x1: u32, y1: u32) {
        let mut state = 0x2545_f491_u32;
        for y in y0..y1 {
            for x in x0..x1 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let i = (y as usize * width as usize + x as usize) * 4;
                let b = state.to_le_bytes();
                pixels[i..i + 4].copy_from_slice(&[b[0], b[1], b[2], 255]);
            }
        }
    }

    fn plan_flat(width: u32, height: u32, rw: u32, rh: u32, anchor: Anchor) -> Rect {
        let px = flat(width, height, [128, 128, 128]);
        plan(&px, width, height, rw, rh, anchor).unwrap()
    }

    #[test]
    fn gcd_and_reduce() {
        assert_eq!(gcd(1920, 1080), 120);
        assert_eq!(gcd(7, 0), 7);
        assert_eq!(reduce(1920, 1080), Some((16, 9)));
        assert_eq!(reduce(22, 36), Some((11, 18)));
        assert_eq!(reduce(0, 5), None);
        assert_eq!(reduce(5, 0), None);
    }

    #[test]
    fn exact_ratio_for_many_sizes_ratios_and_anchors() {
        let sizes = [
            (1024, 1024),
            (1920, 1080),
            (1080, 1920),
            (1000, 333),
            (333, 1000),
            (4096, 17),
            (17, 4096),
            (641, 479),
            (100, 100),
            (7, 7),
            (64, 448),
            (1023, 769),
        ];
        let ratios = [
            (2, 7),
            (11, 18),
            (1, 3),
            (9, 7),
            (21, 9),
            (1, 1),
            (16, 9),
            (9, 16),
            (3, 2),
            (4, 3),
            (64, 63),
            (42, 18), // unreduced 7:3
        ];
        for &(w, h) in &sizes {
            let px = flat(w, h, [200, 200, 200]);
            for &(rw, rh) in &ratios {
                let (rrw, rrh) = reduce(rw, rh).unwrap();
                let k = (w / rrw).min(h / rrh);
                for anchor in ANCHORS {
                    // Smart on the largest images is covered elsewhere; keep debug test runs quick.
                    if anchor == Anchor::Smart && u64::from(w) * u64::from(h) > 400_000 {
                        continue;
                    }
                    let r = plan(&px, w, h, rw, rh, anchor);
                    if k == 0 {
                        assert!(r.is_err(), "{w}x{h} {rw}:{rh} {anchor:?} should not fit");
                        continue;
                    }
                    let r = r.unwrap();
                    let ctx = format!("{w}x{h} {rw}:{rh} {anchor:?} -> {r:?}");
                    assert_eq!(u64::from(r.width) * u64::from(rh), u64::from(r.height) * u64::from(rw), "{ctx}");
                    assert_eq!((r.width, r.height), (rrw * k, rrh * k), "largest multiple: {ctx}");
                    assert!(r.x + r.width <= w && r.y + r.height <= h, "inside the image: {ctx}");
                    // Largest: one more multiple would not fit.
                    assert!(rrw * (k + 1) > w || rrh * (k + 1) > h, "{ctx}");
                }
            }
        }
    }

    #[test]
    fn anchors_place_the_window() {
        // Wide image, tall target: the window slides horizontally.
        let (w, h) = (900, 300);
        let c = plan_flat(w, h, 1, 1, Anchor::Center);
        assert_eq!((c.x, c.y, c.width, c.height), (300, 0, 300, 300));
        let l = plan_flat(w, h, 1, 1, Anchor::Left);
        assert_eq!((l.x, l.y), (0, 0));
        let r = plan_flat(w, h, 1, 1, Anchor::Right);
        assert_eq!((r.x + r.width, r.y), (w, 0));
        let t = plan_flat(w, h, 1, 1, Anchor::Top);
        assert_eq!((t.x, t.y), (300, 0), "top keeps the window horizontally centred");
        let b = plan_flat(w, h, 1, 1, Anchor::Bottom);
        assert_eq!((b.x, b.y + b.height), (300, h), "bottom keeps the window horizontally centred");

        // Tall image, wide target: the window slides vertically.
        let (w, h) = (300, 1000);
        let t = plan_flat(w, h, 3, 2, Anchor::Top);
        assert_eq!((t.x, t.y, t.width, t.height), (0, 0, 300, 200));
        let b = plan_flat(w, h, 3, 2, Anchor::Bottom);
        assert_eq!((b.x, b.y + b.height), (0, h));
        let c = plan_flat(w, h, 3, 2, Anchor::Center);
        assert_eq!((c.x, c.y), (0, 400));
        let l = plan_flat(w, h, 3, 2, Anchor::Left);
        assert_eq!((l.x, l.y), (0, 400), "left keeps the window vertically centred");
        let r = plan_flat(w, h, 3, 2, Anchor::Right);
        assert_eq!((r.x + r.width, r.y), (w, 400), "right keeps the window vertically centred");

        // Slack on both axes (11:18 in 100x100 keeps 55x90): each anchor pins its own edge.
        let (w, h) = (100, 100);
        let t = plan_flat(w, h, 11, 18, Anchor::Top);
        assert_eq!((t.x, t.y, t.width, t.height), (22, 0, 55, 90));
        let b = plan_flat(w, h, 11, 18, Anchor::Bottom);
        assert_eq!((b.x, b.y), (22, 10));
        let l = plan_flat(w, h, 11, 18, Anchor::Left);
        assert_eq!((l.x, l.y), (0, 5));
        let r = plan_flat(w, h, 11, 18, Anchor::Right);
        assert_eq!((r.x, r.y), (45, 5));
    }

    #[test]
    fn matching_ratio_keeps_the_whole_image() {
        for anchor in ANCHORS {
            let r = plan_flat(1920, 1080, 16, 9, anchor);
            assert_eq!((r.x, r.y, r.width, r.height), (0, 0, 1920, 1080), "{anchor:?}");
        }
    }

    #[test]
    fn zero_terms_and_too_small_images_are_errors() {
        let px = flat(10, 10, [0, 0, 0]);
        assert!(plan(&px, 10, 10, 0, 1, Anchor::Center).unwrap_err().contains("zero"));
        assert!(plan(&px, 10, 10, 3, 0, Anchor::Smart).is_err());
        assert!(plan(&px, 10, 10, 1, 11, Anchor::Center).unwrap_err().contains("too small"));
        assert!(plan(&[], 0, 0, 1, 1, Anchor::Center).is_err());
        assert!(plan(&px[..8], 10, 10, 1, 1, Anchor::Center).is_err());
    }

    #[test]
    fn tiny_and_thin_images() {
        let px = flat(1, 1, [9, 9, 9]);
        for anchor in ANCHORS {
            let r = plan(&px, 1, 1, 5, 5, anchor).unwrap();
            assert_eq!((r.x, r.y, r.width, r.height), (0, 0, 1, 1));
        }
        let px = flat(1000, 1, [9, 9, 9]);
        for anchor in ANCHORS {
            let r = plan(&px, 1000, 1, 1, 1, anchor).unwrap();
            assert_eq!((r.width, r.height), (1, 1));
        }
        assert_eq!(plan(&px, 1000, 1, 1, 1, Anchor::Right).unwrap().x, 999);
        let px = flat(3, 2000, [9, 9, 9]);
        let r = plan(&px, 3, 2000, 1, 3, Anchor::Smart).unwrap();
        assert_eq!((r.width, r.height), (3, 9));
    }

    #[test]
    fn smart_on_a_flat_image_matches_center() {
        for &(w, h, rw, rh) in &[(600, 300, 1, 1), (301, 900, 1, 1), (1000, 1000, 11, 18), (640, 480, 21, 9)] {
            let px = flat(w, h, [30, 160, 90]);
            let smart = plan(&px, w, h, rw, rh, Anchor::Smart).unwrap();
            let centre = plan(&px, w, h, rw, rh, Anchor::Center).unwrap();
            assert_eq!(
                (smart.x, smart.y, smart.width, smart.height),
                (centre.x, centre.y, centre.width, centre.height),
                "{w}x{h} {rw}:{rh}"
            );
        }
    }

    #[test]
    fn smart_finds_a_busy_patch_right_of_centre() {
        // 600x300 flat grey, busy patch on the right third; a square crop (300x300) can slide
        // x in 0..=300 and should move right to cover the patch.
        let (w, h) = (600, 300);
        let mut px = flat(w, h, [180, 180, 180]);
        busy_patch(&mut px, w, 420, 90, 560, 210);
        let centre = plan(&px, w, h, 1, 1, Anchor::Center).unwrap();
        let smart = plan(&px, w, h, 1, 1, Anchor::Smart).unwrap();
        assert_eq!((smart.width, smart.height), (300, 300));
        assert!(smart.x > centre.x, "smart {smart:?} should be right of centre {centre:?}");
        assert!(smart.x <= 420 && smart.x + smart.width >= 560, "window {smart:?} should contain the patch");
    }

    #[test]
    fn smart_finds_a_busy_patch_left_and_at_the_top() {
        // Large image (downsampled saliency), patch on the left.
        let (w, h) = (2000, 800);
        let mut px = flat(w, h, [240, 240, 240]);
        busy_patch(&mut px, w, 100, 300, 500, 500);
        let smart = plan(&px, w, h, 4, 3, Anchor::Smart).unwrap();
        assert_eq!((smart.width, smart.height), (1064, 798));
        assert!(smart.x < (w - smart.width) / 2, "{smart:?}");
        assert!(smart.x <= 100, "window {smart:?} should contain the patch");

        // Tall image, patch near the top.
        let (w, h) = (400, 1200);
        let mut px = flat(w, h, [20, 20, 40]);
        busy_patch(&mut px, w, 100, 50, 300, 250);
        let smart = plan(&px, w, h, 16, 9, Anchor::Smart).unwrap();
        assert_eq!((smart.width, smart.height), (400, 225));
        assert!(smart.y < (h - smart.height) / 2, "{smart:?}");
        assert!(smart.y <= 50 && smart.y + smart.height >= 250 - 30, "{smart:?}");
    }

    #[test]
    fn smart_sees_a_lone_saturated_object() {
        // A flat red disc (no texture) on white, low on a tall image: edges + colour pull down.
        let (w, h) = (300, 900);
        let mut px = flat(w, h, [255, 255, 255]);
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as i32 - 150, y as i32 - 720);
                if dx * dx + dy * dy <= 80 * 80 {
                    let i = (y as usize * w as usize + x as usize) * 4;
                    px[i..i + 4].copy_from_slice(&[220, 20, 20, 255]);
                }
            }
        }
        let smart = plan(&px, w, h, 1, 1, Anchor::Smart).unwrap();
        assert!(smart.y > 300, "{smart:?}");
        assert!(smart.y <= 640 && smart.y + 300 >= 800, "window {smart:?} should contain the disc");
    }

    #[test]
    fn saliency_map_is_downsampled() {
        assert_eq!(saliency_size(1024, 512), (256, 128));
        assert_eq!(saliency_size(200, 100), (200, 100));
        assert_eq!(saliency_size(4096, 1), (256, 1));
        let px = flat(1024, 512, [1, 2, 3]);
        let map = saliency(&px, 1024, 512);
        assert_eq!(map.values.len(), 256 * 128);
        assert!(map.values.iter().all(|&v| v.abs() < 1e-6));
    }
}
