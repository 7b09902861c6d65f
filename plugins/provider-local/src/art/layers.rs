//! Layers of a landscape's sky and water: gradient with glow, clouds, nebulae, aurora,
//! dots (stars, snow, embers, flowers), sun/moon/planet discs, water, a neon grid and lava.

use std::cell::RefCell;

use super::canvas::Layer;
use super::color::{Rgb, add, clamp01, fmin, luma, mix, round, scale, smoothstep};
use super::noise::{Field, value1, value2};

/// A per-row colour table interpolating `stops` (`(y, colour)`, increasing `y`) smoothly.
pub fn gradient(height: usize, stops: &[(f32, Rgb)]) -> Vec<Rgb> {
    (0..height)
        .map(|y| {
            let y = y as f32 + 0.5;
            match stops.iter().position(|&(sy, _)| sy > y) {
                None => stops[stops.len() - 1].1,
                Some(0) => stops[0].1,
                Some(i) => {
                    let (y0, c0) = stops[i - 1];
                    let (y1, c1) = stops[i];
                    mix(c0, c1, smoothstep(y0, y1, y))
                }
            }
        })
        .collect()
}

/// A soft elliptical glow added to the sky.
#[derive(Clone, Debug)]
pub struct Glow {
    /// Centre.
    pub cx: f32,
    /// Centre.
    pub cy: f32,
    /// Core radius in pixels: the glow halves at this distance.
    pub radius: f32,
    /// How much flatter than wide the glow is (1 = round).
    pub squash: f32,
    /// Colour added at full strength.
    pub colour: Rgb,
    /// Strength at the centre.
    pub strength: f32,
}

/// The sky: a vertical gradient plus an optional glow.
pub struct Sky {
    lut: Vec<Rgb>,
    glow: Option<(Glow, Vec<f32>)>,
}

impl Sky {
    /// A sky of per-row colours `lut` with an optional `glow`.
    pub fn new(width: usize, lut: Vec<Rgb>, glow: Option<Glow>) -> Self {
        let glow = glow.map(|g| {
            let dx2 = (0..width)
                .map(|x| {
                    let d = x as f32 + 0.5 - g.cx;
                    d * d
                })
                .collect();
            (g, dx2)
        });
        Self { lut, glow }
    }
}

impl Layer for Sky {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let base = self.lut[y];
        match &self.glow {
            None => row.fill(base),
            Some((g, dx2)) => {
                let dy = (y as f32 + 0.5 - g.cy) * g.squash;
                let r2 = g.radius * g.radius;
                let k0 = g.strength * r2;
                let dy2 = dy * dy + r2;
                for (px, &d) in row.iter_mut().zip(dx2) {
                    let k = k0 / (dy2 + d);
                    *px = [base[0] + g.colour[0] * k, base[1] + g.colour[1] * k, base[2] + g.colour[2] * k];
                }
            }
        }
    }

    fn opaque_from(&self) -> Option<usize> {
        Some(0)
    }
}

/// An additive glow on its own (volcano craters, city light).
pub struct Halo {
    glow: Glow,
    dx2: Vec<f32>,
    reach: f32,
}

impl Halo {
    /// A glow for rows `width` wide; rows farther than `reach` radii from the centre are skipped.
    pub fn new(width: usize, glow: Glow, reach: f32) -> Self {
        let dx2 = (0..width)
            .map(|x| {
                let d = x as f32 + 0.5 - glow.cx;
                d * d
            })
            .collect();
        Self { glow, dx2, reach }
    }
}

impl Layer for Halo {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let g = &self.glow;
        let dy = (y as f32 + 0.5 - g.cy) * g.squash;
        if dy.abs() > g.radius * self.reach {
            return;
        }
        let r2 = g.radius * g.radius;
        let k0 = g.strength * r2;
        let dy2 = dy * dy + r2;
        for (px, &d) in row.iter_mut().zip(&self.dx2) {
            let k = k0 / (dy2 + d);
            *px = add(*px, scale(g.colour, k));
        }
    }
}

/// Clouds: coverage and lighting fields mixed between a shadow and a lit colour.
pub struct Clouds {
    /// Coverage `0..1`.
    pub cover: Field,
    /// Lighting `0..1` (1 = facing the light).
    pub light: Field,
    /// Colour of the lit side.
    pub lit: Rgb,
    /// Colour of the shadowed side.
    pub shade: Rgb,
    /// Rows below this are left alone.
    pub bottom: usize,
    /// Scratch rows.
    pub scratch: RefCell<(Vec<f32>, Vec<f32>)>,
}

impl Layer for Clouds {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        if y >= self.bottom {
            return;
        }
        let mut scratch = self.scratch.borrow_mut();
        let (cover, light) = &mut *scratch;
        self.cover.row(y, cover);
        self.light.row(y, light);
        for ((px, &c), &l) in row.iter_mut().zip(cover.iter()).zip(light.iter()) {
            if c > 0.003 {
                *px = mix(*px, mix(self.shade, self.lit, l), c);
            }
        }
    }
}

/// Glowing nebula or galaxy band: an intensity field and a hue field over two colours,
/// with darker dust lanes.
pub struct Nebula {
    /// Brightness `0..1`.
    pub glow: Field,
    /// Colour choice `0..1` between `a` and `b`.
    pub tone: Field,
    /// Dust that dims what is behind, `0..1`.
    pub dust: Field,
    /// First colour.
    pub a: Rgb,
    /// Second colour.
    pub b: Rgb,
    /// Rows below this are left alone.
    pub bottom: usize,
    /// Scratch rows.
    pub scratch: RefCell<[Vec<f32>; 3]>,
}

impl Layer for Nebula {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        if y >= self.bottom {
            return;
        }
        let mut s = self.scratch.borrow_mut();
        let [g, t, d] = &mut *s;
        self.glow.row(y, g);
        self.tone.row(y, t);
        self.dust.row(y, d);
        for (i, px) in row.iter_mut().enumerate() {
            let c = mix(self.a, self.b, t[i]);
            let k = 1.0 - d[i];
            *px = [px[0] * k + c[0] * g[i], px[1] * k + c[1] * g[i], px[2] * k + c[2] * g[i]];
        }
    }
}

/// Aurora curtains: per-column lower edge and brightness, fading upward.
pub struct Aurora {
    /// Lower edge of the curtain per column.
    pub base: Vec<f32>,
    /// Brightness per column.
    pub power: Vec<f32>,
    /// Height of the curtain in pixels.
    pub height: f32,
    /// Colour at the lower edge.
    pub low: Rgb,
    /// Colour at the top.
    pub high: Rgb,
    /// First row touched.
    pub top: usize,
    /// Last row touched (exclusive).
    pub bottom: usize,
}

impl Layer for Aurora {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        if y < self.top || y >= self.bottom {
            return;
        }
        let yf = y as f32;
        let inv_h = 1.0 / self.height;
        for ((px, &b), &p) in row.iter_mut().zip(&self.base).zip(&self.power) {
            let t = (b - yf) * inv_h;
            if t > -0.08 && t < 1.0 {
                let fade = if t < 0.0 { 1.0 + t / 0.08 } else { (1.0 - t) * (1.0 - t) };
                let k = p * fade;
                *px = add(*px, scale(mix(self.low, self.high, clamp01(t * 1.3)), k));
            }
        }
    }
}

/// How dots combine with what is below them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blend {
    /// Cover (alpha blending).
    Over,
    /// Add light.
    Add,
}

/// One round dot.
#[derive(Clone, Copy, Debug)]
pub struct Dot {
    /// Centre.
    pub x: f32,
    /// Centre.
    pub y: f32,
    /// Radius in pixels.
    pub r: f32,
    /// Colour.
    pub colour: Rgb,
    /// Opacity or intensity.
    pub alpha: f32,
    /// Length of a four-point sparkle in pixels, 0 for none.
    pub spike: f32,
}

/// Many small dots, soft or crisp, sorted by row for quick lookup.
pub struct Dots {
    dots: Vec<Dot>,
    reach: f32,
    blend: Blend,
    soft: bool,
    /// Optional per-row factor (e.g. stars fading into a bright horizon).
    row_gain: Option<Vec<f32>>,
    width: usize,
}

impl Dots {
    /// A layer of `dots`; `soft` dots fade out from the centre, others have crisp edges.
    pub fn new(width: usize, mut dots: Vec<Dot>, blend: Blend, soft: bool, row_gain: Option<Vec<f32>>) -> Self {
        dots.sort_by(|a, b| a.y.total_cmp(&b.y));
        let reach = dots.iter().map(|d| (d.r + 1.0).max(d.spike)).fold(1.0, f32::max);
        Self { dots, reach, blend, soft, row_gain, width }
    }
}

impl Layer for Dots {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let py = y as f32 + 0.5;
        let gain = self.row_gain.as_ref().map_or(1.0, |g| g[y]);
        if gain <= 0.0 {
            return;
        }
        let lo = self.dots.partition_point(|d| d.y < py - self.reach);
        let hi = self.dots.partition_point(|d| d.y <= py + self.reach);
        for d in &self.dots[lo..hi] {
            let dy = py - d.y;
            let alpha = d.alpha * gain;
            if d.spike > 0.0 {
                let cx = d.x as usize;
                if dy.abs() < d.spike && cx < self.width {
                    let k = cube(1.0 - dy.abs() / d.spike) * alpha * 0.6;
                    row[cx] = add(row[cx], scale(d.colour, k));
                }
                if dy.abs() < 0.5 {
                    let x0 = (d.x - d.spike).max(0.0) as usize;
                    let x1 = ((d.x + d.spike) as usize + 1).min(self.width);
                    for (x, px) in row.iter_mut().enumerate().take(x1).skip(x0) {
                        let t = (x as f32 + 0.5 - d.x).abs() / d.spike;
                        if t < 1.0 {
                            *px = add(*px, scale(d.colour, cube(1.0 - t) * alpha * 0.6));
                        }
                    }
                }
            }
            let outer = d.r + 1.0;
            if dy.abs() >= outer {
                continue;
            }
            let half = (outer * outer - dy * dy).sqrt();
            let x0 = (d.x - half).max(0.0) as usize;
            let x1 = ((d.x + half) as usize + 1).min(self.width);
            let inv_r = 1.0 / d.r;
            for (x, px) in row.iter_mut().enumerate().take(x1).skip(x0) {
                let dx = x as f32 + 0.5 - d.x;
                let dist = (dx * dx + dy * dy).sqrt();
                let k = if self.soft {
                    let t = 1.0 - dist * inv_r;
                    if t <= 0.0 { continue } else { t * t }
                } else {
                    clamp01(d.r + 0.5 - dist)
                } * alpha;
                *px = match self.blend {
                    Blend::Over => mix(*px, d.colour, fmin(k, 1.0)),
                    Blend::Add => add(*px, scale(d.colour, k)),
                };
            }
        }
    }
}

/// What kind of disc a [`Celestial`] is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Body {
    /// A sun; `stripes` cuts synthwave slits into its lower half.
    Sun {
        /// Synthwave slits.
        stripes: bool,
    },
    /// A moon; `phase` offsets the shadow disc (0 = full).
    Moon {
        /// Shadow offset as a fraction of the radius (0 = full moon).
        phase: f32,
        /// Noise seed of the maria.
        seed: u32,
    },
    /// A shaded planet with bands and an optional ring.
    Planet {
        /// Draw a ring.
        ring: bool,
        /// Noise seed of the bands.
        seed: u32,
    },
}

/// A sun, moon or planet.
#[derive(Clone, Debug)]
pub struct Celestial {
    /// Centre.
    pub cx: f32,
    /// Centre.
    pub cy: f32,
    /// Radius.
    pub r: f32,
    /// Main colour (top / lit side).
    pub a: Rgb,
    /// Second colour (bottom / shadow / bands).
    pub b: Rgb,
    /// Kind.
    pub body: Body,
}

impl Celestial {
    fn planet_ring(&self, x: f32, y: f32) -> Option<(f32, bool)> {
        // A ring tilted by a fixed slope, squashed to 28 % of its width.
        let (dx, dy) = (x - self.cx, y - self.cy);
        let (u, v) = (dx * 0.96 + dy * 0.28, -dx * 0.28 + dy * 0.96);
        let rho = (u * u + (v / 0.28) * (v / 0.28)).sqrt() / self.r;
        (1.35..2.15).contains(&rho).then(|| {
            let band = 0.55 + 0.45 * value1(rho * 9.0, 77);
            (band * smoothstep(1.35, 1.42, rho) * (1.0 - smoothstep(2.05, 2.15, rho)), v > 0.0)
        })
    }
}

impl Layer for Celestial {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let py = y as f32 + 0.5;
        let reach = if matches!(self.body, Body::Planet { ring: true, .. }) { self.r * 2.2 } else { self.r + 1.0 };
        let dy = py - self.cy;
        if dy.abs() > reach {
            return;
        }
        let x0 = (self.cx - reach).max(0.0) as usize;
        let x1 = ((self.cx + reach) as usize + 1).min(row.len());
        let inv_r = 1.0 / self.r;
        for (x, px) in row.iter_mut().enumerate().take(x1).skip(x0) {
            let fx = x as f32 + 0.5;
            let dx = fx - self.cx;
            let dist = (dx * dx + dy * dy).sqrt();
            let cover = clamp01(self.r + 0.5 - dist);
            let ring = match self.body {
                Body::Planet { ring: true, .. } => self.planet_ring(fx, py),
                _ => None,
            };
            if let Some((k, false)) = ring {
                *px = mix(*px, mix(self.a, self.b, 0.4), k * 0.85);
            }
            if cover > 0.0 {
                let (nx, ny) = (dx * inv_r, dy * inv_r);
                let colour = match self.body {
                    Body::Sun { stripes } => {
                        if stripes && ny > 0.0 {
                            // Slits grow thicker toward the bottom.
                            let t = (ny * 6.0).fract();
                            if t < ny * 0.55 {
                                continue;
                            }
                        }
                        let v = clamp01(ny * 0.5 + 0.5);
                        if stripes {
                            mix(self.a, self.b, v)
                        } else {
                            // Brighter than the glow around it: the core burns out to white.
                            add(mix(self.a, self.b, (nx * nx + ny * ny) * 0.6), scale(self.a, 0.3))
                        }
                    }
                    Body::Moon { phase, seed } => {
                        let maria = value2(fx * inv_r * 2.5, py * inv_r * 2.5, seed);
                        let base = mix(self.a, self.b, smoothstep(0.45, 0.75, maria) * 0.55);
                        let sx = dx - phase * self.r;
                        let shadow = clamp01(self.r * 1.02 + 0.5 - (sx * sx + dy * dy).sqrt());
                        if phase == 0.0 { base } else { mix(base, mix(*px, base, 0.08), shadow) }
                    }
                    Body::Planet { seed, .. } => {
                        let nz = (1.0 - fmin(nx * nx + ny * ny, 1.0)).sqrt();
                        let light = clamp01(-0.6 * nx - 0.35 * ny + 0.7 * nz);
                        let bands = value1(ny * 7.0 + value2(nx * 3.0, ny * 3.0, seed) * 0.8, seed);
                        let base = mix(self.a, self.b, bands);
                        scale(base, 0.12 + 0.88 * light)
                    }
                };
                *px = mix(*px, colour, cover);
            }
            if let Some((k, true)) = ring {
                *px = mix(*px, mix(self.a, self.b, 0.4), k * 0.9);
            }
        }
    }
}

/// Open water below the horizon: a darkened reflection of the sky, perspective waves
/// stretched along the horizon, and a glittering path under the sun or moon.
pub struct Water {
    /// Horizon row.
    pub horizon: f32,
    /// Base colour per row (reflection mixed with the water colour).
    pub rows: Vec<Rgb>,
    /// Column of the light path, with its colour and strength.
    pub path: Option<(f32, Rgb, f32)>,
    /// Radius of the light source in pixels (path width near the horizon).
    pub path_width: f32,
    /// Vanishing column of the waves.
    pub cx: f32,
    /// Sparkle colour.
    pub sparkle: Rgb,
    /// Noise seed.
    pub seed: u32,
}

impl Layer for Water {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let yf = y as f32 + 0.5;
        if yf < self.horizon {
            return;
        }
        let span = (self.rows.len() as f32 - self.horizon).max(1.0);
        let t = ((yf - self.horizon) / span).max(0.002);
        // Ground-plane perspective: world depth z = 1/t, world x = (x - cx) z / span.
        let z = 1.0 / t;
        let wave_y = z * 42.0;
        let wave_x = z * 4.0 / span;
        let contrast = smoothstep(0.0, 0.2, t);
        let base = self.rows[y];
        let path_w = self.path_width * (0.7 + 5.0 * t);
        let inv_w2 = 1.0 / (path_w * path_w);
        for (x, px) in row.iter_mut().enumerate() {
            let fx = x as f32 + 0.5;
            let u = (fx - self.cx) * wave_x;
            let n = 0.62 * value2(u, wave_y, self.seed) + 0.38 * value2(u * 2.7 + 3.1, wave_y * 2.3, self.seed ^ 0x51);
            let mut c = scale(base, 1.0 + (n - 0.5) * 0.34 * contrast);
            if let Some((sx, colour, strength)) = self.path {
                let dx = fx - sx;
                let path = strength / (1.0 + dx * dx * inv_w2);
                let glint = 0.18 + smoothstep(0.45 - 0.2 * contrast, 0.75, n) * (0.6 + 0.7 * contrast);
                c = add(c, scale(colour, path * glint));
            }
            let sparkle = smoothstep(0.84, 0.97, n) * 0.1 * contrast;
            *px = add(c, scale(self.sparkle, sparkle));
        }
    }

    fn opaque_from(&self) -> Option<usize> {
        Some(self.horizon.max(0.0).ceil() as usize)
    }
}

/// A glowing perspective grid on a dark floor, synthwave style.
pub struct NeonGrid {
    /// Horizon row.
    pub horizon: f32,
    /// Image height.
    pub height: f32,
    /// Vanishing point column.
    pub cx: f32,
    /// Floor colour near the horizon and near the viewer.
    pub floor: (Rgb, Rgb),
    /// Line colour.
    pub line: Rgb,
    /// Lines per unit of depth.
    pub spacing: f32,
}

impl Layer for NeonGrid {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let yf = y as f32 + 0.5;
        if yf < self.horizon {
            return;
        }
        let span = (self.height - self.horizon).max(1.0);
        let t = ((yf - self.horizon) / span).max(1e-3);
        let depth = 1.0 / t;
        let base = mix(self.floor.0, self.floor.1, t);
        // Horizontal lines at equal depth steps: distance in pixels via dz/dy = 1/(t² span).
        let z = depth * self.spacing * 0.5;
        let dz_px = self.spacing * 0.5 / (t * t * span);
        let hd = (z - round(z)).abs() / dz_px;
        let fade = smoothstep(0.06, 0.45, t);
        let h_line = (1.0 / (1.0 + hd * hd * 0.6) + 0.12 / (1.0 + hd * 0.3)) * fade;
        // Vertical lines converge on the vanishing point: world x = (x - cx) * depth.
        let du_px = depth / span * self.spacing * 2.0;
        for (x, px) in row.iter_mut().enumerate() {
            let u = (x as f32 + 0.5 - self.cx) * du_px;
            let vd = (u - round(u)).abs() / du_px;
            let v_line = (1.0 / (1.0 + vd * vd * 0.6) + 0.12 / (1.0 + vd * 0.3)) * fade;
            let k = fmin(h_line + v_line, 1.2);
            *px = add(base, scale(self.line, k));
        }
    }

    fn opaque_from(&self) -> Option<usize> {
        Some(self.horizon.max(0.0).ceil() as usize)
    }
}

/// A lava field: dark crust with glowing cracks, brighter toward the horizon.
pub struct Lava {
    /// Horizon row.
    pub horizon: f32,
    /// Crack field: 0 on a crack, 1 far from cracks.
    pub cracks: Field,
    /// Image height.
    pub height: f32,
    /// Crust colour.
    pub crust: Rgb,
    /// Glow colour around cracks.
    pub hot: Rgb,
    /// Colour of the crack cores.
    pub core: Rgb,
    /// Glow colour near the horizon.
    pub glow: Rgb,
    /// Scratch row.
    pub scratch: RefCell<Vec<f32>>,
}

impl Layer for Lava {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let yf = y as f32 + 0.5;
        if yf < self.horizon {
            return;
        }
        let mut s = self.scratch.borrow_mut();
        self.cracks.row(y, &mut s);
        let span = (self.height - self.horizon).max(1.0);
        let t = clamp01((yf - self.horizon) / span);
        let detail = smoothstep(0.0, 0.25, t);
        let haze = scale(self.glow, (1.0 - t) * (1.0 - t) * 0.45);
        for (px, &c) in row.iter_mut().zip(s.iter()) {
            let core = (1.0 - smoothstep(0.0, 0.12, c)) * detail;
            let warm = (1.0 - smoothstep(0.0, 0.45, c)) * detail;
            let col = add(self.crust, scale(self.hot, warm * 0.55));
            *px = add(mix(col, self.core, core), haze);
        }
    }

    fn opaque_from(&self) -> Option<usize> {
        Some(self.horizon.max(0.0).ceil() as usize)
    }
}

#[inline]
fn cube(x: f32) -> f32 {
    x * x * x
}

/// Per-row factor for stars: full where the sky is dark, none where it is bright.
pub fn darkness_gain(lut: &[Rgb]) -> Vec<f32> {
    lut.iter().map(|&c| clamp01(1.0 - luma(c) * 1.6)).collect()
}
