//! Abstract compositions: marbled flow fields with contour lines, Bauhaus tiles, and soft
//! mesh gradients; and a stylised portrait silhouette.

use std::cell::RefCell;

use super::Scene;
use super::canvas::{Finish, Layer, Paper};
use super::color::{Rgb, add, clamp01, fmax, mix, round, scale, smoothstep};
use super::layers::{Glow, Sky, gradient};
use super::noise::{Field, Rng, fbm2};
use super::shapes::{Fill, Sdf, Shape, Shapes};

const FLOW: &[&str] =
    &["marble", "flow", "fluid", "swirl", "topographic", "contour", "wave", "liquid", "psychedelic", "fractal"];
const TILES: &[&str] =
    &["bauhaus", "geometric", "tile", "tiles", "grid", "mosaic", "shape", "modernist", "circle", "pattern"];
const BLOBS: &[&str] = &["gradient", "blur", "mesh", "aura", "dreamy", "glow", "bokeh", "smooth"];

/// A 256-entry colour ramp through `stops` (evenly spaced).
fn ramp(stops: &[Rgb]) -> Vec<Rgb> {
    let n = stops.len() - 1;
    (0..256)
        .map(|i| {
            let t = i as f32 / 255.0 * n as f32;
            let k = (t as usize).min(n - 1);
            mix(stops[k], stops[k + 1], smoothstep(0.0, 1.0, t - k as f32))
        })
        .collect()
}

/// Marbled flow: a domain-warped noise field through a colour ramp, embossed, with contour
/// lines of constant width.
struct Flow {
    value: Field,
    /// Pixels per contour band: `1 / (|∇value| · bands)`.
    spacing: Field,
    relief: Field,
    ramp: Vec<Rgb>,
    bands: f32,
    line: Option<Rgb>,
    line_w: f32,
    scratch: RefCell<[Vec<f32>; 3]>,
}

impl Layer for Flow {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let mut s = self.scratch.borrow_mut();
        let [v, g, r] = &mut *s;
        self.value.row(y, v);
        self.spacing.row(y, g);
        self.relief.row(y, r);
        for (i, px) in row.iter_mut().enumerate() {
            let t = clamp01(v[i]);
            let mut c = scale(self.ramp[(t * 255.0) as i32 as usize], 1.0 + r[i]);
            if let Some(line) = self.line {
                let b = t * self.bands;
                let dist = (b - round(b)).abs() * g[i];
                let k = clamp01(self.line_w - dist);
                c = mix(c, line, k * 0.85);
            }
            *px = c;
        }
    }

    fn opaque_from(&self) -> Option<usize> {
        Some(0)
    }
}

/// Soft mesh gradient: colour channels computed coarse and upsampled.
struct Blobs {
    channels: [Field; 3],
    scratch: RefCell<[Vec<f32>; 3]>,
}

impl Layer for Blobs {
    fn paint(&self, y: usize, row: &mut [Rgb]) {
        let mut s = self.scratch.borrow_mut();
        let [r, g, b] = &mut *s;
        self.channels[0].row(y, r);
        self.channels[1].row(y, g);
        self.channels[2].row(y, b);
        for (i, px) in row.iter_mut().enumerate() {
            *px = [r[i], g[i], b[i]];
        }
    }

    fn opaque_from(&self) -> Option<usize> {
        Some(0)
    }
}

/// Build an abstract picture; the variant follows the words, else the seed.
pub fn build(scene: &Scene) -> (Vec<Box<dyn Layer>>, Finish) {
    let mut rng = scene.rng.derive("abstract");
    let words = scene.words;
    let variant = if words.has(FLOW) {
        0
    } else if words.has(TILES) {
        1
    } else if words.has(BLOBS) {
        2
    } else {
        rng.below(3)
    };
    let layers = match variant {
        0 => flow(scene, &mut rng),
        1 => tiles(scene, &mut rng),
        _ => blobs(scene, &mut rng),
    };
    let finish =
        Finish { vignette: 0.2, grain: if variant == 1 { 0.05 } else { 0.03 }, dither: true, seed: scene.seed };
    (layers, finish)
}

fn cell_for(unit: f32) -> usize {
    ((unit / 160.0) as usize).clamp(2, 32)
}

fn flow(scene: &Scene, rng: &mut Rng) -> Vec<Box<dyn Layer>> {
    let (w, h, unit) = (scene.width, scene.height, scene.unit);
    let pal = scene.palette;
    let seed = rng.next_u32();
    let freq = rng.range(1.2, 2.4) / unit;
    let warp = rng.range(1.5, 3.0);
    let cell = cell_for(unit);
    let f = |x: f32, y: f32| {
        let (x, y) = (x * freq, y * freq);
        let qx = fbm2(x, y, 3, seed ^ 11);
        let qy = fbm2(x + 5.2, y + 1.3, 3, seed ^ 12);
        let rx = fbm2(x + warp * qx + 1.7, y + warp * qy + 9.2, 3, seed ^ 13);
        let ry = fbm2(x + warp * qx + 8.3, y + warp * qy + 2.8, 3, seed ^ 14);
        fbm2(x + warp * rx, y + warp * ry, 4, seed)
    };
    // Stretch the narrow middle range of fBm to the full ramp.
    let value = Field::new(w, h, cell, |x, y| smoothstep(0.12, 0.88, f(x, y)));
    // Gradient magnitude (for constant-width contours) and an emboss term, per pixel.
    let bands = rng.range(8.0, 18.0);
    let spacing = value.derive(|_, dx, dy| 1.0 / fmax((dx * dx + dy * dy).sqrt() * bands, 1e-4));
    let relief = value.derive(|_, dx, dy| ((dx - dy) * unit * 0.05).clamp(-0.12, 0.12));
    let stops = [pal.sky[0], pal.accents[0], pal.sky[2], pal.accents[1], mix(pal.light, pal.accents[3], 0.5)];
    let line = rng.chance(0.7).then(|| mix(pal.light, pal.sky[3], 0.3));
    vec![Box::new(Flow {
        value,
        spacing,
        relief,
        ramp: ramp(&stops),
        bands,
        line,
        line_w: (unit / 700.0).max(0.8),
        scratch: RefCell::new([vec![0.0; w], vec![0.0; w], vec![0.0; w]]),
    })]
}

fn tiles(scene: &Scene, rng: &mut Rng) -> Vec<Box<dyn Layer>> {
    let (w, h) = (scene.width, scene.height);
    let (wf, hf) = (w as f32, h as f32);
    let pal = scene.palette;
    let dark_bg = rng.chance(0.4);
    let bg = if dark_bg { pal.land_near } else { mix(pal.sky[3], [0.96, 0.94, 0.9], 0.6) };
    let colours = [pal.accents[0], pal.accents[1], pal.accents[2], if dark_bg { pal.sky[3] } else { pal.land_near }];
    let per_side = 3 + rng.below(4) as u32;
    let size = wf.min(hf) / per_side as f32;
    let cols = (wf / size).ceil() as i32;
    let rows = (hf / size).ceil() as i32;
    let (ox, oy) = ((wf - cols as f32 * size) * 0.5, (hf - rows as f32 * size) * 0.5);
    let mut shapes = Shapes::new(w);
    for j in 0..rows {
        for i in 0..cols {
            let x0 = ox + i as f32 * size;
            let y0 = oy + j as f32 * size;
            let c = [x0 + size * 0.5, y0 + size * 0.5];
            let pick = |rng: &mut Rng| colours[rng.below(colours.len())];
            let square = Sdf::RoundBox { c, half: [size * 0.5, size * 0.5], round: 0.0 };
            if rng.chance(0.6) {
                shapes.push(Shape::solid(square.clone(), pick(rng)));
            }
            let corner = [x0 + size * (rng.below(2) as f32), y0 + size * (rng.below(2) as f32)];
            let shape = match rng.below(6) {
                0 => Sdf::Circle { c, r: size * 0.42 },
                1 => Sdf::Circle { c: corner, r: size }.and(square),
                2 => Sdf::Circle { c, r: size * 0.42 }.minus(Sdf::Circle { c, r: size * 0.2 }),
                3 => {
                    let a = [x0, y0 + size];
                    let b = [x0 + size, y0 + size];
                    let t = if rng.chance(0.5) { [x0, y0] } else { [x0 + size, y0] };
                    Sdf::polygon(&[a, b, t])
                }
                4 => Sdf::Circle { c: [c[0], y0 + size], r: size * 0.5 }.and(square),
                _ => Sdf::RoundBox { c, half: [size * 0.5, size * 0.16], round: size * 0.16 },
            };
            shapes.push(Shape::solid(shape, pick(rng)));
        }
    }
    vec![Box::new(Paper(bg)), Box::new(shapes)]
}

fn blobs(scene: &Scene, rng: &mut Rng) -> Vec<Box<dyn Layer>> {
    let (w, h, unit) = (scene.width, scene.height, scene.unit);
    let (wf, hf) = (w as f32, h as f32);
    let pal = scene.palette;
    let colours = [pal.accents[0], pal.accents[1], pal.sky[0], pal.accents[2], pal.sky[3]];
    let blobs: Vec<([f32; 2], f32, Rgb)> = colours
        .iter()
        .map(|&c| ([rng.range(-0.1, 1.1) * wf, rng.range(-0.1, 1.1) * hf], unit * rng.range(0.2, 0.4), c))
        .collect();
    let seed = rng.next_u32();
    let freq = 1.5 / unit;
    let cell = cell_for(unit) * 2;
    let colour_at = |x: f32, y: f32| {
        let wx = x + (fbm2(x * freq, y * freq, 3, seed) - 0.5) * unit * 0.35;
        let wy = y + (fbm2(x * freq + 7.0, y * freq, 3, seed ^ 5) - 0.5) * unit * 0.35;
        let (mut acc, mut total) = ([0.0f32; 3], 0.0);
        for &(c, r, col) in &blobs {
            let d2 = ((wx - c[0]) * (wx - c[0]) + (wy - c[1]) * (wy - c[1])) / (r * r);
            let k = 1.0 / (1.0 + d2 * d2 * d2);
            acc = add(acc, scale(col, k));
            total += k;
        }
        scale(acc, 1.0 / total.max(1e-6))
    };
    let channels = Field::many(w, h, cell, colour_at);
    vec![Box::new(Blobs { channels, scratch: RefCell::new([vec![0.0; w], vec![0.0; w], vec![0.0; w]]) })]
}

/// A stylised head-and-shoulders silhouette with rim light, in front of a halo and a
/// gradient backdrop. Procedural art: no face is drawn.
pub fn portrait(scene: &Scene) -> (Vec<Box<dyn Layer>>, Finish) {
    let (w, h, unit) = (scene.width, scene.height, scene.unit);
    let (wf, hf) = (w as f32, h as f32);
    let pal = scene.palette;
    let mut rng = scene.rng.derive("portrait");
    let s = wf.min(hf * 0.8).min(unit * 1.2);
    let cx = wf * rng.range(0.42, 0.58);
    let head_y = hf * 0.42;
    let lut = gradient(h, &[(0.0, pal.sky[0]), (hf * 0.5, pal.sky[1]), (hf, pal.sky[2])]);
    let glow = Glow { cx, cy: head_y, radius: s * 0.3, squash: 1.0, colour: pal.glow, strength: 0.5 };
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(Sky::new(w, lut, Some(glow)))];

    let mut back = Shapes::new(w);
    for i in 0..5 {
        let c = [rng.range(0.0, wf), rng.range(0.0, hf)];
        let r = s * rng.range(0.05, 0.25);
        back.push(Shape::solid(Sdf::Circle { c, r }, pal.accents[i % 4]).alpha(rng.range(0.12, 0.3)).feather(s * 0.02));
    }
    let halo_r = s * rng.range(0.28, 0.36);
    back.push(Shape::new(
        Sdf::Circle { c: [cx, head_y - s * 0.02], r: halo_r },
        Fill::Linear { a: pal.accents[1], b: pal.accents[0], from: [cx, head_y - halo_r], to: [cx, head_y + halo_r] },
    ));
    layers.push(Box::new(back));

    let head_rx = s * 0.12;
    let head_ry = s * 0.155;
    let figure = |dx: f32| -> Sdf {
        let head = Sdf::Ellipse { c: [cx + dx, head_y], r: [head_rx, head_ry] };
        let neck = Sdf::RoundBox {
            c: [cx + dx, head_y + head_ry * 1.1],
            half: [head_rx * 0.42, head_ry * 0.5],
            round: head_rx * 0.15,
        };
        let sy = head_y + head_ry * 1.45 + s * 0.17;
        let shoulders = Sdf::Ellipse { c: [cx + dx, sy], r: [s * 0.34, s * 0.17] };
        let torso = Sdf::polygon(&[
            [cx + dx - s * 0.34, sy],
            [cx + dx + s * 0.34, sy],
            [cx + dx + s * 0.4, hf + 2.0],
            [cx + dx - s * 0.4, hf + 2.0],
        ]);
        head.union(neck).union(shoulders).union(torso)
    };
    let hair_style = rng.below(3);
    let hair = |dx: f32| -> Sdf {
        let cap = Sdf::Ellipse { c: [cx + dx, head_y - head_ry * 0.18], r: [head_rx * 1.12, head_ry * 0.95] };
        match hair_style {
            0 => cap,
            1 => cap.union(Sdf::RoundBox {
                c: [cx + dx, head_y + head_ry * 0.6],
                half: [head_rx * 1.15, head_ry * 1.1],
                round: head_rx * 0.6,
            }),
            _ => cap.union(Sdf::Circle { c: [cx + dx, head_y - head_ry * 1.05], r: head_rx * 0.55 }),
        }
    };
    let light = if rng.chance(0.5) { -1.0 } else { 1.0 };
    let rim = s * 0.012 * light;
    let mut front = Shapes::new(w);
    front.push(Shape::solid(hair(rim).union(figure(rim)), mix(pal.glow, pal.light, 0.5)));
    front.push(Shape::solid(hair(0.0), scale(pal.land_near, 0.8)));
    front.push(Shape::solid(figure(0.0), pal.land_near));
    layers.push(Box::new(front));
    (layers, Finish { vignette: 0.35, grain: 0.035, dither: true, seed: scene.seed })
}
