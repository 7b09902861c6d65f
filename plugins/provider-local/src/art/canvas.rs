//! Scanline composition: every layer paints each row in turn (painter's order), then the row
//! is finished (vignette, grain, dither) and quantised to RGBA8. Only one row of floats is
//! ever alive, so memory stays at the size of the output.

use super::color::Rgb;
use super::noise::hash32;

/// One layer of a picture, painted a row at a time over the layers below it.
pub trait Layer {
    /// Paint row `y` (pixels `0..row.len()`) over what is already there.
    fn paint(&self, y: usize, row: &mut [Rgb]);

    /// The first row from which this layer paints every pixel fully opaquely, if any:
    /// layers below it are then skipped on those rows.
    fn opaque_from(&self) -> Option<usize> {
        None
    }
}

/// Final touches applied to every pixel before quantisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finish {
    /// Darkening toward the corners, 0 for none.
    pub vignette: f32,
    /// Amplitude of monochrome film grain, 0 for none.
    pub grain: f32,
    /// Add sub-LSB noise before rounding to hide banding in gradients.
    pub dither: bool,
    /// Seed of the grain and dither pattern.
    pub seed: u32,
}

impl Finish {
    /// No vignette, grain or dither: flat colours stay exactly flat.
    pub const CRISP: Finish = Finish { vignette: 0.0, grain: 0.0, dither: false, seed: 0 };
}

/// Paint `layers` bottom-up into a `width`×`height` RGBA8 buffer.
pub fn compose(
    width: usize,
    height: usize,
    background: Rgb,
    layers: &[Box<dyn Layer + '_>],
    finish: Finish,
) -> Vec<u8> {
    let mut out = vec![0u8; width * height * 4];
    let mut row = vec![background; width];
    let fx = |x: usize, n: usize| {
        let d = (x as f32 + 0.5) / n as f32 * 2.0 - 1.0;
        d * d * 0.5
    };
    let vig_x: Vec<f32> = (0..width).map(|x| finish.vignette * fx(x, width)).collect();
    let opaque: Vec<Option<usize>> = layers.iter().map(|l| l.opaque_from()).collect();
    let dither = if finish.dither { 1.0 / 256.0 } else { 0.0 };
    for (y, line) in out.chunks_exact_mut(width * 4).enumerate() {
        // Start at the last layer that hides everything below it on this row.
        let first = opaque.iter().rposition(|o| o.is_some_and(|from| from <= y)).unwrap_or(0);
        if first == 0 {
            row.fill(background);
        }
        for layer in &layers[first..] {
            layer.paint(y, &mut row);
        }
        let vig_y = 1.0 - finish.vignette * fx(y, height);
        let mut state = hash32(finish.seed ^ (y as u32).wrapping_mul(0x9e37_79b9));
        for ((px, c), vx) in line.chunks_exact_mut(4).zip(&row).zip(&vig_x) {
            let k = vig_y - vx;
            let v = [c[0] * k, c[1] * k, c[2] * k];
            if finish.dither || finish.grain > 0.0 {
                // A per-row LCG: cheap, and different for every pixel.
                state = state.wrapping_mul(0x0019_660d).wrapping_add(0x3c6e_f35f);
                let h = state ^ (state >> 15);
                let g = finish.grain * ((h >> 24) as i32 as f32 * (1.0 / 256.0) - 0.5);
                px[0] = quantise(v[0] + g, ((h & 0xff) as i32 as f32 - 127.5) * dither);
                px[1] = quantise(v[1] + g, (((h >> 8) & 0xff) as i32 as f32 - 127.5) * dither);
                px[2] = quantise(v[2] + g, (((h >> 16) & 0xff) as i32 as f32 - 127.5) * dither);
            } else {
                px[0] = quantise(v[0], 0.0);
                px[1] = quantise(v[1], 0.0);
                px[2] = quantise(v[2], 0.0);
            }
            px[3] = 255;
        }
    }
    out
}

/// Round a channel value to a byte, with `dither` in `-0.5..0.5` LSB.
#[inline]
fn quantise(v: f32, dither: f32) -> u8 {
    // Adding 2^23 leaves the value rounded to an integer in the low mantissa bits: no
    // float-to-int conversion (with its saturation checks) at all, identical on every target.
    let t = (v * 255.0 + dither).clamp(0.0, 255.0);
    ((t + 8_388_608.0).to_bits() & 0xff) as u8
}

/// A plain colour over the whole picture.
pub struct Paper(pub Rgb);

impl Layer for Paper {
    fn paint(&self, _: usize, row: &mut [Rgb]) {
        row.fill(self.0);
    }

    fn opaque_from(&self) -> Option<usize> {
        Some(0)
    }
}
