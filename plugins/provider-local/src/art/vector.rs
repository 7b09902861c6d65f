//! Flat vector mode: a few crisp shapes in two to four palette colours, centred on pure
//! white with a wide margin, so a flood fill from the borders removes the whole background.

use super::Scene;
use super::canvas::{Finish, Layer, Paper};
use super::color::{Rgb, WHITE, from_hsl, hex, hue_delta, luma, mix, to_hsl};
use super::noise::{Rng, cos, sin};
use super::shapes::{Sdf, Shape, Shapes, Vec2};

/// Words that switch a request to flat vector mode.
pub const TRIGGERS: &[&str] = &[
    "icon",
    "logo",
    "vector",
    "flat",
    "minimalist",
    "minimal",
    "emblem",
    "sticker",
    "badge",
    "logotype",
    "clipart",
    "pictogram",
];

/// Share of the shorter side the emblem may use (the rest is white margin).
const EMBLEM: f32 = 0.62;

/// What the emblem shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Glyph {
    Fox,
    Cat,
    Sun,
    Moon,
    Mountain,
    Tree,
    Leaf,
    Heart,
    Drop,
    Flame,
    Star,
    City,
    Rocket,
    Abstract,
}

impl Glyph {
    /// True when the glyph uses at most the primary, secondary and light inks (or fewer), so
    /// a badge (secondary ring, pale fill) keeps the emblem within four colours.
    fn badge_fits(self) -> bool {
        matches!(self, Glyph::Fox | Glyph::Moon | Glyph::Leaf | Glyph::Heart | Glyph::Star)
    }
}

/// Subject words of each glyph, and its natural colour when the prompt names none.
const GLYPHS: &[(Glyph, &[&str], u32)] = &[
    (Glyph::Fox, &["fox", "wolf", "foxe", "dog", "coyote"], 0xe8702a),
    (Glyph::Cat, &["cat", "kitten", "kitty", "lion", "tiger"], 0x4a4e69),
    (Glyph::Rocket, &["rocket", "launch", "startup", "spaceship", "space"], 0xe63946),
    (Glyph::Sun, &["sun", "sunny", "sunshine", "solar", "summer"], 0xf4a300),
    (Glyph::Moon, &["moon", "night", "crescent", "lunar", "sleep"], 0x3d5a80),
    (Glyph::Mountain, &["mountain", "peak", "alp", "hiking", "outdoor", "summit", "adventure"], 0x355070),
    (Glyph::Tree, &["tree", "forest", "pine", "wood", "christmas"], 0x2b9348),
    (Glyph::Leaf, &["leaf", "plant", "eco", "nature", "organic", "green", "garden", "vegan"], 0x40916c),
    (Glyph::Heart, &["heart", "love", "valentine", "care", "health"], 0xe63946),
    (Glyph::Drop, &["water", "drop", "ocean", "sea", "rain", "wave", "aqua", "liquid"], 0x1d8cd8),
    (Glyph::Flame, &["fire", "flame", "hot", "burn", "spicy", "energy"], 0xf3722c),
    (Glyph::Star, &["star", "favorite", "favourite", "award", "premium"], 0xf9a825),
    (Glyph::City, &["city", "building", "skyline", "town", "architecture", "real", "estate"], 0x457b9d),
];

/// Maps emblem coordinates (`-1..1` on both axes, y down) to pixels.
#[derive(Clone, Copy, Debug)]
struct Frame {
    cx: f32,
    cy: f32,
    s: f32,
}

impl Frame {
    fn p(&self, u: f32, v: f32) -> Vec2 {
        [self.cx + u * self.s, self.cy + v * self.s]
    }
    fn circle(&self, u: f32, v: f32, r: f32) -> Sdf {
        Sdf::Circle { c: self.p(u, v), r: r * self.s }
    }
    fn ellipse(&self, u: f32, v: f32, rx: f32, ry: f32) -> Sdf {
        Sdf::Ellipse { c: self.p(u, v), r: [rx * self.s, ry * self.s] }
    }
    fn rect(&self, u: f32, v: f32, hw: f32, hh: f32, round: f32) -> Sdf {
        Sdf::RoundBox { c: self.p(u, v), half: [hw * self.s, hh * self.s], round: round * self.s }
    }
    fn poly(&self, pts: &[(f32, f32)]) -> Sdf {
        let pts: Vec<Vec2> = pts.iter().map(|&(u, v)| self.p(u, v)).collect();
        Sdf::polygon(&pts)
    }
    fn capsule(&self, a: (f32, f32), b: (f32, f32), r: f32) -> Sdf {
        Sdf::Capsule { a: self.p(a.0, a.1), b: self.p(b.0, b.1), r: r * self.s }
    }
    /// A frame for a glyph drawn at `k` times the size.
    fn shrink(&self, k: f32) -> Frame {
        Frame { s: self.s * k, ..*self }
    }
}

/// Emblem colours: primary, secondary (darker), accent and a light detail colour (never
/// pure white, so details never merge with the background).
#[derive(Clone, Copy, Debug)]
struct Inks {
    primary: Rgb,
    secondary: Rgb,
    accent: Rgb,
    light: Rgb,
}

/// A colour dark and saturated enough to read on white.
fn on_white(c: Rgb) -> Rgb {
    let (h, s, l) = to_hsl(c);
    let l = if luma(c) > 0.72 { l * 0.75 } else { l };
    from_hsl(h, s.max(0.35), l.min(0.62))
}

fn inks(scene: &Scene, natural: Option<u32>) -> Inks {
    let pal = scene.palette;
    let named_colour = super::palette::COLOURS.iter().any(|(name, ..)| scene.words.has(&[name]));
    let primary = match natural {
        Some(c) if !named_colour && scene.theme.is_none() => hex(c),
        _ => pal.accents[0],
    };
    let mut primary = on_white(primary);
    // Honour refused colours even for a glyph's natural colour.
    for &(name, hue, ..) in super::palette::COLOURS {
        let (h, s, l) = to_hsl(primary);
        if scene.words.refuses(&[name]) && s > 0.12 && hue_delta(h, hue).abs() < 30.0 {
            let side = if hue_delta(h, hue) >= 0.0 { 1.0 } else { -1.0 };
            primary = from_hsl(hue + side * 60.0, s, l);
        }
    }
    let (h, s, l) = to_hsl(primary);
    let secondary = from_hsl(h + 8.0, (s * 0.9).min(0.8), (l * 0.55).max(0.12));
    let accent = pal
        .accents
        .iter()
        .copied()
        .map(on_white)
        .max_by(|a, b| {
            let da = hue_delta(to_hsl(*a).0, h).abs();
            let db = hue_delta(to_hsl(*b).0, h).abs();
            da.total_cmp(&db)
        })
        .unwrap_or(secondary);
    let accent = if hue_delta(to_hsl(accent).0, h).abs() < 25.0 { from_hsl(h + 150.0, 0.6, 0.5) } else { accent };
    let light = mix(hex(0xfbf3e4), primary, 0.06);
    Inks { primary, secondary, accent, light }
}

/// Build a flat emblem on white.
pub fn build(scene: &Scene) -> (Vec<Box<dyn Layer>>, Finish) {
    let (w, h) = (scene.width, scene.height);
    let mut rng = scene.rng.derive("vector");
    let found = GLYPHS
        .iter()
        .filter_map(|&(g, keys, c)| scene.words.first_index(keys).filter(|_| scene.words.has(keys)).map(|i| (i, g, c)))
        .min_by_key(|&(i, ..)| i);
    let (glyph, natural) = found.map_or((Glyph::Abstract, None), |(_, g, c)| (g, Some(c)));
    let ink = inks(scene, natural);
    let side = (w.min(h)) as f32;
    let frame = Frame { cx: w as f32 * 0.5, cy: h as f32 * 0.5, s: side * EMBLEM * 0.5 };
    let mut shapes = Shapes::new(w);
    // A badge adds a pale disc or tile ringed in the secondary ink: only for glyphs that stay
    // within four colours with it.
    let badge = if glyph.badge_fits() { rng.below(3) } else { 0 };
    let pale = mix(hex(0xfbf3e4), ink.accent, 0.2);
    match badge {
        1 => {
            shapes.push(Shape::solid(frame.circle(0.0, 0.0, 1.0), ink.secondary));
            shapes.push(Shape::solid(frame.circle(0.0, 0.0, 0.9), pale));
        }
        2 => {
            shapes.push(Shape::solid(frame.rect(0.0, 0.0, 0.92, 0.92, 0.3), ink.secondary));
            shapes.push(Shape::solid(frame.rect(0.0, 0.0, 0.83, 0.83, 0.23), pale));
        }
        _ => {}
    }
    let g = if badge == 0 { frame } else { frame.shrink(0.6) };
    draw(glyph, &g, &ink, &mut rng, &mut shapes);
    (vec![Box::new(Paper(WHITE)), Box::new(shapes)], Finish::CRISP)
}

fn draw(glyph: Glyph, f: &Frame, ink: &Inks, rng: &mut Rng, out: &mut Shapes) {
    let mut add = |sdf: Sdf, c: Rgb| out.push(Shape::solid(sdf, c));
    match glyph {
        Glyph::Fox => {
            add(
                f.poly(&[
                    (-0.85, -0.3),
                    (-0.62, -0.95),
                    (-0.22, -0.5),
                    (0.22, -0.5),
                    (0.62, -0.95),
                    (0.85, -0.3),
                    (0.0, 0.8),
                ]),
                ink.primary,
            );
            add(f.poly(&[(-0.6, -0.78), (-0.36, -0.5), (-0.7, -0.42)]), ink.secondary);
            add(f.poly(&[(0.6, -0.78), (0.36, -0.5), (0.7, -0.42)]), ink.secondary);
            add(f.poly(&[(-0.85, -0.3), (-0.1, 0.2), (0.0, 0.8)]), ink.light);
            add(f.poly(&[(0.85, -0.3), (0.1, 0.2), (0.0, 0.8)]), ink.light);
            add(f.poly(&[(-0.11, 0.58), (0.11, 0.58), (0.0, 0.78)]), ink.secondary);
            add(f.ellipse(-0.3, -0.08, 0.07, 0.09), ink.secondary);
            add(f.ellipse(0.3, -0.08, 0.07, 0.09), ink.secondary);
        }
        Glyph::Cat => {
            add(f.poly(&[(-0.78, -0.05), (-0.62, -0.9), (-0.2, -0.48)]), ink.primary);
            add(f.poly(&[(0.78, -0.05), (0.62, -0.9), (0.2, -0.48)]), ink.primary);
            add(f.ellipse(0.0, 0.12, 0.8, 0.66), ink.primary);
            add(f.poly(&[(-0.6, -0.68), (-0.56, -0.3), (-0.32, -0.44)]), ink.accent);
            add(f.poly(&[(0.6, -0.68), (0.56, -0.3), (0.32, -0.44)]), ink.accent);
            add(f.ellipse(-0.3, 0.02, 0.12, 0.15), ink.light);
            add(f.ellipse(0.3, 0.02, 0.12, 0.15), ink.light);
            add(f.ellipse(-0.3, 0.03, 0.04, 0.12), ink.secondary);
            add(f.ellipse(0.3, 0.03, 0.04, 0.12), ink.secondary);
            add(f.poly(&[(-0.09, 0.28), (0.09, 0.28), (0.0, 0.39)]), ink.accent);
        }
        Glyph::Sun => {
            let rays = 8 + 2 * rng.below(3);
            for i in 0..rays {
                let a = i as f32 / rays as f32 * core::f32::consts::TAU;
                let (s, c) = (sin(a), cos(a));
                add(f.capsule((c * 0.66, s * 0.66), (c * 0.9, s * 0.9), 0.065), ink.accent);
            }
            add(f.circle(0.0, 0.0, 0.45), ink.primary);
            add(f.circle(-0.12, -0.12, 0.19), mix(ink.primary, ink.light, 0.35));
        }
        Glyph::Moon => {
            add(f.circle(-0.05, 0.05, 0.78).minus(f.circle(0.3, -0.2, 0.62)), ink.primary);
            add(star_points(f, 0.5, 0.35, 0.2, 0.08, 4, 0.0), ink.accent);
            add(star_points(f, 0.72, -0.62, 0.12, 0.05, 4, 0.0), ink.accent);
        }
        Glyph::Mountain => {
            add(f.circle(0.5, -0.5, 0.2), ink.accent);
            add(f.poly(&[(-0.95, 0.62), (-0.15, -0.72), (0.65, 0.62)]), ink.primary);
            add(f.poly(&[(0.0, 0.62), (0.45, -0.15), (0.95, 0.62)]), ink.secondary);
            add(
                f.poly(&[(-0.15, -0.72), (-0.4, -0.3), (-0.26, -0.36), (-0.15, -0.24), (-0.04, -0.36), (0.1, -0.3)]),
                ink.light,
            );
            add(f.rect(0.0, 0.72, 0.95, 0.08, 0.08), ink.secondary);
        }
        Glyph::Tree => {
            add(f.rect(0.0, 0.72, 0.1, 0.2, 0.03), ink.secondary);
            for (k, (top, half, bottom)) in
                [(-0.95, 0.42, -0.3), (-0.6, 0.58, 0.12), (-0.25, 0.75, 0.58)].into_iter().enumerate()
            {
                let c = if k % 2 == 0 { ink.primary } else { mix(ink.primary, ink.secondary, 0.35) };
                add(f.poly(&[(0.0, top), (half, bottom), (-half, bottom)]), c);
            }
            add(f.circle(0.0, -0.92, 0.08), ink.accent);
        }
        Glyph::Leaf => {
            // A lens (two intersecting circles) on a diagonal, with a stem and a vein.
            let d = 0.55;
            let (ux, uy) = (core::f32::consts::FRAC_1_SQRT_2, -core::f32::consts::FRAC_1_SQRT_2);
            let (nx, ny) = (-uy, ux);
            let lens = f.circle(nx * d, ny * d, 1.0).and(f.circle(-nx * d, -ny * d, 1.0));
            add(lens, ink.primary);
            add(f.capsule((-ux * 0.95, -uy * 0.95), (-ux * 0.55, -uy * 0.55), 0.05), ink.secondary);
            add(f.capsule((-ux * 0.55, -uy * 0.55), (ux * 0.55, uy * 0.55), 0.035), ink.light);
            for k in [-0.3f32, 0.0, 0.3] {
                let (bx, by) = (ux * k, uy * k);
                add(f.capsule((bx, by), (bx + (ux + nx) * 0.22, by + (uy + ny) * 0.22), 0.025), ink.light);
            }
        }
        Glyph::Heart => {
            // Two lobes joined by their tangents to the tip.
            let heart = f.circle(-0.36, -0.22, 0.42).union(f.circle(0.36, -0.22, 0.42)).union(f.poly(&[
                (0.0, 0.8),
                (0.667, 0.06),
                (0.36, -0.22),
                (-0.36, -0.22),
                (-0.667, 0.06),
            ]));
            add(heart, ink.primary);
            add(f.circle(-0.42, -0.34, 0.12), mix(ink.primary, ink.light, 0.55));
        }
        Glyph::Drop => {
            add(drop(f, 0.0, 0.0, 1.0), ink.primary);
            add(drop(f, 0.0, 0.25, 0.45), ink.accent);
            add(f.ellipse(-0.28, 0.3, 0.08, 0.16), ink.light);
        }
        Glyph::Flame => {
            add(drop(f, 0.0, 0.0, 1.0), ink.primary);
            add(drop(f, 0.0, 0.28, 0.55), ink.accent);
            add(drop(f, 0.0, 0.45, 0.25), ink.light);
        }
        Glyph::Star => {
            add(star_points(f, 0.0, 0.05, 0.95, 0.4, 5, -core::f32::consts::FRAC_PI_2), ink.primary);
            add(star_points(f, 0.0, 0.08, 0.42, 0.18, 5, -core::f32::consts::FRAC_PI_2), ink.accent);
        }
        Glyph::City => {
            let towers =
                [(-0.55, 0.3, 0.5, ink.secondary), (0.0, 0.28, 0.9, ink.primary), (0.55, 0.3, 0.65, ink.accent)];
            for (x, hw, hgt, c) in towers {
                add(f.rect(x, 0.85 - hgt, hw, hgt, 0.05), c);
                let mut wy = 0.85 - 2.0 * hgt + 0.2;
                while wy < 0.7 {
                    add(f.rect(x - hw * 0.4, wy, hw * 0.18, 0.05, 0.02), ink.light);
                    add(f.rect(x + hw * 0.4, wy, hw * 0.18, 0.05, 0.02), ink.light);
                    wy += 0.22;
                }
            }
        }
        Glyph::Rocket => {
            // Fins overlap the body; the exhaust overlaps its base: no enclosed gaps.
            add(f.poly(&[(-0.24, 0.05), (-0.62, 0.52), (-0.62, 0.78), (-0.16, 0.5)]), ink.secondary);
            add(f.poly(&[(0.24, 0.05), (0.62, 0.52), (0.62, 0.78), (0.16, 0.5)]), ink.secondary);
            add(f.circle(0.0, 0.66, 0.17).union(f.poly(&[(-0.16, 0.7), (0.16, 0.7), (0.0, 1.0)])), ink.accent);
            add(f.ellipse(0.0, -0.05, 0.3, 0.82).and(f.rect(0.0, -0.2, 0.5, 0.8, 0.0)), ink.primary);
            add(f.circle(0.0, -0.2, 0.13), ink.light);
        }
        Glyph::Abstract => abstract_mark(f, ink, rng, out),
    }
}

/// A drop pointing up, centred at (`u`, `v`), `k` times the full size.
fn drop(f: &Frame, u: f32, v: f32, k: f32) -> Sdf {
    let g = Frame { cx: f.cx + u * f.s, cy: f.cy + v * f.s, s: f.s * k };
    g.circle(0.0, 0.3, 0.58).union(g.poly(&[(-0.52, 0.05), (0.0, -0.95), (0.52, 0.05)]))
}

/// A star with `n` points of outer radius `r1` and inner radius `r2`, rotated by `rot`.
fn star_points(f: &Frame, u: f32, v: f32, r1: f32, r2: f32, n: usize, rot: f32) -> Sdf {
    let pts: Vec<(f32, f32)> = (0..n * 2)
        .map(|i| {
            let a = rot + i as f32 / (n * 2) as f32 * core::f32::consts::TAU;
            let r = if i % 2 == 0 { r1 } else { r2 };
            (u + cos(a) * r, v + sin(a) * r)
        })
        .collect();
    f.poly(&pts)
}

/// A geometric mark for prompts without a known subject.
fn abstract_mark(f: &Frame, ink: &Inks, rng: &mut Rng, out: &mut Shapes) {
    let mut add = |sdf: Sdf, c: Rgb| out.push(Shape::solid(sdf, c));
    match rng.below(4) {
        0 => {
            let hex: Vec<(f32, f32)> = (0..6)
                .map(|i| {
                    let a = i as f32 / 6.0 * core::f32::consts::TAU + core::f32::consts::FRAC_PI_6;
                    (cos(a) * 0.95, sin(a) * 0.95)
                })
                .collect();
            add(f.poly(&hex), ink.primary);
            add(f.poly(&[(0.0, -0.5), (0.45, 0.32), (-0.45, 0.32)]), ink.light);
            add(f.circle(0.0, 0.08, 0.16), ink.accent);
        }
        1 => {
            add(f.circle(0.0, 0.0, 0.9), ink.primary);
            add(f.circle(0.0, 0.0, 0.9).and(f.poly(&[(-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)])), ink.secondary);
            add(f.circle(-0.3, -0.3, 0.22), ink.accent);
        }
        2 => {
            add(f.circle(-0.25, 0.1, 0.62), ink.primary);
            add(f.circle(0.32, -0.15, 0.5), ink.accent);
            add(f.circle(-0.25, 0.1, 0.62).and(f.circle(0.32, -0.15, 0.5)), ink.secondary);
        }
        _ => {
            add(f.poly(&[(0.0, -0.95), (0.6, 0.0), (0.0, 0.95), (-0.6, 0.0)]), ink.primary);
            add(f.poly(&[(0.0, -0.95), (0.6, 0.0), (0.0, 0.0)]), ink.secondary);
            add(f.poly(&[(-0.6, 0.0), (0.0, 0.0), (0.0, 0.95)]), ink.accent);
        }
    }
}
