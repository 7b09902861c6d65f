//! Terrain silhouettes: one height per column (mountains, hills, dunes, city skylines, tree
//! lines), painted with a per-row colour, slope shading, snow, tints, lit windows and rim glow.

use super::canvas::Layer;
use super::color::{Rgb, add, fmax, fmin, mix, scale};
use super::noise::{Rng, fbm1, hash32, ridged1, value1};

/// Lit windows of a skyline.
#[derive(Clone, Debug)]
pub struct Windows {
    /// Window column index within its building per pixel column, or -1 between windows.
    pub col: Vec<i32>,
    /// Building id per pixel column.
    pub id: Vec<u32>,
    /// Vertical window pitch in pixels.
    pub pitch: f32,
    /// Window height in pixels.
    pub size: f32,
    /// Keep windows this far below a roof.
    pub margin: f32,
    /// Share of windows lit, `0..1`.
    pub lit: f32,
    /// Window colours (picked per window).
    pub colours: [Rgb; 2],
}

/// Slope shading of a ridge: the surface's slope, averaged over a window that widens with
/// depth, so faces read as broad lit and shadowed planes while the crest keeps its detail.
#[derive(Clone, Debug)]
struct Shade {
    /// Prefix sums of the surface rows.
    prefix: Vec<f64>,
    /// Light direction times gain.
    light: f32,
    /// Averaging radius at the surface, in pixels.
    radius: f32,
    /// Depth below the surface over which shading fades out.
    depth: f32,
    /// `1 / r²` for every averaging radius `r` in use.
    inv_r2: Vec<f32>,
}

impl Shade {
    /// Light factor in `-1..1` at column `x`, `d` pixels below the surface.
    #[inline]
    fn at(&self, x: usize, d: f32) -> f32 {
        let n = self.prefix.len() - 1;
        let r = (self.radius + d * 0.6) as i32 as usize + 1;
        let slope = if x >= r && x + r <= n {
            // (mean of the r columns right of x − mean of the r columns left of x) / r
            (self.prefix[x + r] - 2.0 * self.prefix[x] + self.prefix[x - r]) as f32 * self.inv_r2[r]
        } else {
            let (a, b) = (x.saturating_sub(r), (x + r).min(n));
            let left = (self.prefix[x] - self.prefix[a]) / (x - a).max(1) as f64;
            let right = (self.prefix[b] - self.prefix[x]) / (b - x).max(1) as f64;
            ((right - left) / r as f64) as f32
        };
        (slope * self.light).clamp(-1.0, 1.0)
    }
}

/// One silhouette layer.
#[derive(Clone, Debug)]
pub struct Ridge {
    top: Vec<f32>,
    aa: Vec<f32>,
    rows: Vec<Rgb>,
    first_row: usize,
    shade: Option<Shade>,
    snow: Option<(Vec<f32>, Rgb, Rgb)>,
    windows: Option<Windows>,
    rim: Option<(Rgb, f32)>,
}

impl Ridge {
    /// A silhouette whose surface is at row `top[x]` in column `x`, filled below with the
    /// per-row colours `rows`. `sharp_steps` keeps vertical edges crisp (skylines).
    pub fn new(top: Vec<f32>, rows: Vec<Rgb>, sharp_steps: bool) -> Self {
        let n = top.len();
        let aa = (0..n)
            .map(|x| {
                if sharp_steps || n < 3 {
                    return 1.0;
                }
                // The gentler one-sided slope: a step (one steep side) stays crisp.
                let right = top[(x + 1).min(n - 1)] - top[x];
                let left = top[x] - top[x.saturating_sub(1)];
                let s = right.abs().min(left.abs());
                1.0 / (1.0 + s * s).sqrt()
            })
            .collect();
        let first_row = top.iter().fold(f32::MAX, |m, &t| m.min(t)).max(0.0) as usize;
        Self { top, aa, rows, first_row, shade: None, snow: None, windows: None, rim: None }
    }

    /// Surface row per column.
    pub fn top(&self) -> &[f32] {
        &self.top
    }

    /// Light faces turned toward `light` (-1 from the left, +1 from the right) with strength
    /// `gain`, judging slopes over `radius` pixels at the crest and wider below; shading
    /// fades out `depth` pixels below the surface.
    pub fn shaded(mut self, light: f32, radius: f32, depth: f32, gain: f32) -> Self {
        let mut prefix = Vec::with_capacity(self.top.len() + 1);
        prefix.push(0.0f64);
        for &t in &self.top {
            prefix.push(prefix[prefix.len() - 1] + f64::from(t));
        }
        let (radius, depth) = (radius.max(1.0), depth.max(1.0));
        let max_r = (radius + depth * 0.6) as usize + 2;
        let inv_r2 = (0..=max_r).map(|r| 1.0 / (r.max(1) * r.max(1)) as f32).collect();
        self.shade = Some(Shade { prefix, light: light * gain, radius, depth, inv_r2 });
        self
    }

    /// Snow down to row `line` (± jagged noise of `jag` pixels), lit and shadowed colours.
    pub fn snow(mut self, line: f32, jag: f32, lit: Rgb, shadow: Rgb, seed: u32, unit: f32) -> Self {
        let bottom = self
            .top
            .iter()
            .enumerate()
            .map(|(x, &t)| {
                let n = fbm1(x as f32 / unit * 40.0, 3, seed) - 0.5;
                let b = line + n * jag * 3.0 - (line - t).max(0.0) * 0.4;
                if b > t { b } else { f32::MIN }
            })
            .collect();
        self.snow = Some((bottom, lit, shadow));
        self
    }

    /// Lit windows (skylines).
    pub fn windows(mut self, windows: Windows) -> Self {
        self.windows = Some(windows);
        self
    }

    /// A glow of `colour` reaching `width` pixels above the surface.
    pub fn rim(mut self, colour: Rgb, width: f32) -> Self {
        self.rim = Some((colour, width.max(1.0)));
        self
    }
}

impl Layer for Ridge {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let rim_reach = self.rim.map_or(1.0, |(_, w)| w + 1.0) as usize;
        if y + rim_reach < self.first_row {
            return;
        }
        let yf = y as f32 + 0.5;
        let base = self.rows[y];
        let win_row = self.windows.as_ref().and_then(|w| {
            let r = yf / w.pitch;
            ((r.fract() * w.pitch) < w.size).then_some(r as u32)
        });
        for (x, px) in row.iter_mut().enumerate() {
            let d = yf - self.top[x];
            let cover = (d * self.aa[x] + 0.5).clamp(0.0, 1.0);
            if let Some((colour, width)) = self.rim
                && d < 0.5
                && d > -width
            {
                let k = 1.0 + fmin(d, 0.0) / width;
                *px = add(*px, scale(colour, k * k * k));
            }
            if cover <= 0.0 {
                continue;
            }
            let mut c = base;
            let mut light = 0.0;
            if let Some(sh) = &self.shade {
                let f = 1.0 - d / sh.depth;
                if f > 0.0 {
                    light = sh.at(x, fmax(d, 0.0)) * f;
                    c = scale(c, 1.0 + light * 0.4);
                }
            }
            if let Some((bottom, lit, shadow)) = &self.snow {
                let s = (bottom[x] - yf + 0.5).clamp(0.0, 1.0);
                if s > 0.0 {
                    c = mix(c, mix(*shadow, *lit, (light * 1.5 + 0.5).clamp(0.0, 1.0)), s);
                }
            }
            if let (Some(w), Some(r)) = (&self.windows, win_row) {
                let col = w.col[x];
                if col >= 0 && d > w.margin {
                    let h = hash32(
                        w.id[x].wrapping_mul(0x9e37_79b9)
                            ^ (col as u32).wrapping_mul(0x85eb_ca6b)
                            ^ r.wrapping_mul(0xc2b2_ae35),
                    );
                    if (h & 0xffff) as f32 <= w.lit * 65535.0 {
                        let warm = w.colours[(h >> 16) as usize & 1];
                        c = mix(c, warm, 0.55 + 0.45 * ((h >> 20) & 0xff) as f32 / 255.0);
                    }
                }
            }
            *px = if cover >= 1.0 { c } else { mix(*px, c, cover) };
        }
    }

    fn opaque_from(&self) -> Option<usize> {
        // Below this row every column is fully covered.
        let bottom = self.top.iter().zip(&self.aa).fold(0.0f32, |m, (&t, &aa)| m.max(t + 0.5 / aa));
        Some(bottom.max(0.0).ceil() as usize + 1)
    }
}

/// A mountain range: broad massifs with sharp ridged detail, `amp` pixels high above `base`.
pub fn mountains(width: usize, base: f32, amp: f32, unit: f32, rng: &mut Rng) -> Vec<f32> {
    let freq = rng.range(1.4, 2.6) / unit;
    let off = rng.range(0.0, 1000.0);
    let (s1, s2) = (rng.next_u32(), rng.next_u32());
    let heights: Vec<f32> = (0..width)
        .map(|x| {
            let u = x as f32 * freq + off;
            let big = fbm1(u * 0.35, 2, s1);
            // Sharp main peaks, then rough but not spiky detail.
            let peaks = ridged1(u, 2, s2);
            let rough = fbm1(u * 5.0, 3, s2 ^ 0x5bd1);
            0.55 * big + 0.6 * peaks * (0.35 + 0.65 * big) + 0.12 * rough
        })
        .collect();
    surface(&heights, base, amp, 0.08)
}

/// Rows of a surface from raw heights, stretched so the lowest point is `floor` of `amp`
/// and the highest is all of it above `base`: every layer uses its full height.
fn surface(heights: &[f32], base: f32, amp: f32, floor: f32) -> Vec<f32> {
    let (lo, hi) = heights.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &h| (lo.min(h), hi.max(h)));
    let k = (1.0 - floor) / (hi - lo).max(1e-6);
    heights.iter().map(|&h| base - amp * (floor + (h - lo) * k)).collect()
}

/// A volcano cone with a crater around column `cx`, `amp` pixels high above `base`, over a
/// low background range. Returns the surface and the crater's rim row.
pub fn volcano(width: usize, base: f32, amp: f32, cx: f32, unit: f32, rng: &mut Rng) -> (Vec<f32>, f32) {
    let half = amp * rng.range(1.7, 2.4);
    let crater = rng.range(0.08, 0.13);
    let (s1, s2) = (rng.next_u32(), rng.next_u32());
    let freq = 2.0 / unit;
    let top = (0..width)
        .map(|x| {
            let xf = x as f32;
            let d = (xf - cx).abs() / half;
            let cone = if d < crater { 1.0 - crater - (crater - d) * 0.4 } else { (1.0 - d).max(0.0) };
            // Concave flanks, slightly rough.
            let h = cone * (0.55 + 0.45 * cone) + (ridged1(xf * freq * 3.0, 3, s1) - 0.5) * 0.05 * cone;
            let range = 0.18 * fbm1(xf * freq, 3, s2);
            base - amp * h.max(range)
        })
        .collect();
    (top, base - amp * (1.0 - crater) * (0.55 + 0.45 * (1.0 - crater)))
}

/// Rolling hills.
pub fn hills(width: usize, base: f32, amp: f32, unit: f32, rng: &mut Rng) -> Vec<f32> {
    let freq = rng.range(0.8, 1.6) / unit;
    let off = rng.range(0.0, 1000.0);
    let seed = rng.next_u32();
    let heights: Vec<f32> = (0..width).map(|x| fbm1(x as f32 * freq + off, 3, seed)).collect();
    surface(&heights, base, amp, 0.1)
}

/// Sand dunes with sharp crests.
pub fn dunes(width: usize, base: f32, amp: f32, unit: f32, rng: &mut Rng) -> Vec<f32> {
    let freq = rng.range(1.0, 1.8) / unit;
    let off = rng.range(0.0, 1000.0);
    let (s1, s2) = (rng.next_u32(), rng.next_u32());
    let heights: Vec<f32> = (0..width)
        .map(|x| {
            let u = x as f32 * freq + off;
            let crest = 1.0 - (2.0 * value1(u, s2) - 1.0).abs();
            0.45 * fbm1(u * 0.4, 2, s1) + 0.6 * crest * crest
        })
        .collect();
    surface(&heights, base, amp, 0.1)
}

/// A city skyline on `base`: buildings up to `max_h` tall, window columns if `windows`.
pub fn skyline(
    width: usize,
    base: f32,
    max_h: f32,
    unit: f32,
    scale_k: f32,
    rng: &mut Rng,
) -> (Vec<f32>, Vec<i32>, Vec<u32>) {
    let mut top = vec![base; width];
    let mut cols = vec![-1i32; width];
    let mut ids = vec![0u32; width];
    let pitch = (unit * 0.012 * scale_k).max(3.0);
    let win_w = (pitch * 0.55).max(1.0);
    let env_seed = rng.next_u32();
    let mut x = -rng.range(0.0, unit * 0.05);
    let mut id = rng.next_u32();
    while x < width as f32 {
        let bw = (unit * rng.range(0.03, 0.08) * scale_k).max(4.0);
        let gap = if rng.chance(0.3) { unit * rng.range(0.003, 0.015) * scale_k } else { 0.0 };
        let env = 0.55 + 0.45 * value1(x / unit * 2.5, env_seed);
        let r = rng.f32();
        let bh = max_h * (0.22 + 0.78 * r * r) * env;
        let x0 = x.round().max(0.0) as usize;
        let x1 = ((x + bw).round().max(0.0) as usize).min(width);
        let roof = base - bh;
        let setback = rng.chance(0.35).then(|| (rng.range(0.15, 0.3), bh * rng.range(0.06, 0.18)));
        let spire = rng.chance(0.22).then(|| bh * rng.range(0.12, 0.3));
        let spire_w = (unit * 0.004 * scale_k).max(1.0);
        let mid = (x + bw * 0.5) as usize;
        let pad = ((bw - ((bw - pitch * 0.5) / pitch).floor() * pitch) * 0.5).max(1.0);
        for px in x0..x1 {
            let local = px as f32 + 0.5 - x;
            let mut t = roof;
            if let Some((inset, extra)) = setback
                && local > bw * inset
                && local < bw * (1.0 - inset)
            {
                t -= extra;
            }
            if let Some(extra) = spire
                && (px as f32 - mid as f32).abs() < spire_w * 0.5 + 0.01
            {
                t -= extra + setback.map_or(0.0, |s| s.1);
            }
            top[px] = t;
            ids[px] = id;
            let wl = local - pad;
            if wl >= 0.0 && wl < bw - 2.0 * pad && (wl % pitch) < win_w {
                cols[px] = (wl / pitch) as i32;
            }
        }
        id = hash32(id);
        x += bw + gap;
    }
    (top, cols, ids)
}

/// Conifers of height about `tree_h` standing on the ground `base`.
pub fn conifers(base: &[f32], tree_h: f32, rng: &mut Rng) -> Vec<f32> {
    let width = base.len();
    let mut top = base.to_vec();
    let mut x = -tree_h * 0.2;
    while x < width as f32 + tree_h * 0.2 {
        let h = tree_h * rng.range(0.55, 1.15);
        let hw = h * rng.range(0.17, 0.24);
        let ground = base[(x.max(0.0) as usize).min(width - 1)] + h * 0.05;
        let tiers = 3 + rng.below(2);
        for k in 0..tiers {
            let kf = k as f32 / tiers as f32;
            let tip = ground - h + h * kf * 0.62;
            let half = hw * (0.45 + 0.55 * (k + 1) as f32 / tiers as f32);
            let tier_h = h * (0.42 + 0.1 * kf);
            let x0 = (x - half).max(0.0) as usize;
            let x1 = ((x + half).max(0.0) as usize + 1).min(width);
            for (px, t) in top.iter_mut().enumerate().take(x1).skip(x0) {
                let dx = ((px as f32 + 0.5 - x).abs() / half).min(1.0);
                *t = t.min(tip + tier_h * dx);
            }
        }
        x += hw * rng.range(0.6, 1.15);
    }
    top
}

/// A line of round-crowned trees of height about `tree_h` on the ground `base`: the
/// surface of their overlapping crowns.
pub fn canopy(base: &[f32], tree_h: f32, rng: &mut Rng) -> Vec<f32> {
    let width = base.len();
    let mut top = base.to_vec();
    let mut x = -tree_h * rng.range(0.0, 0.5);
    while x < width as f32 + tree_h * 0.3 {
        let r = tree_h * rng.range(0.26, 0.36);
        let trunk = tree_h * rng.range(0.25, 0.4);
        let ground = base[(x.max(0.0) as usize).min(width - 1)];
        for _ in 0..5 + rng.below(4) {
            let cx = x + rng.range(-0.75, 0.75) * r;
            let cy = ground - trunk - r + rng.range(-0.5, 0.45) * r;
            let rr = r * rng.range(0.35, 0.6);
            let x0 = (cx - rr).max(0.0) as usize;
            let x1 = ((cx + rr).max(0.0) as usize + 1).min(width);
            for (px, t) in top.iter_mut().enumerate().take(x1).skip(x0) {
                let dx = px as f32 + 0.5 - cx;
                let q = rr * rr - dx * dx;
                if q > 0.0 {
                    *t = t.min(cy - q.sqrt());
                }
            }
        }
        x += r * rng.range(0.7, 1.1);
    }
    top
}
