//! Deterministic randomness: integer hashes, a SplitMix64 generator, value noise and fBm,
//! and [`Field`], a low-resolution scalar field sampled back at full size.
//!
//! Only integer maths and IEEE basic float operations (`+ - * /`, `sqrt`, `floor`) are used,
//! so results are bit-identical natively and on wasm.

/// A 32-bit integer hash with good avalanche ("lowbias32").
#[inline]
pub fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The SplitMix64 output function: a strong 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a hash of a string, for turning words into seeds.
pub fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A small seeded pseudo-random generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: mix64(seed ^ 0x6a09_e667_f3bc_c909) }
    }

    /// An independent generator for one part of the picture, named by `tag`, so adding
    /// draws in one part never reshuffles another.
    pub fn derive(&self, tag: &str) -> Self {
        Self::new(self.state ^ hash_str(tag))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0.0..1.0` (24 random bits, exact in `f32`).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.f32()
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.f32() < p
    }
}

/// Lattice value in `0.0..1.0` of column `x` in the lattice row whose hash is `row`
/// (`hash32(y + seed)`, computed once per row by [`value2`]).
#[inline]
fn lattice2(x: i32, row: u32) -> f32 {
    // Signed conversion: 24 bits fit, and it is one instruction on every target.
    (hash32((x as u32).wrapping_mul(0x27d4_eb2d) ^ row) >> 8) as i32 as f32 * (1.0 / 16_777_216.0)
}

#[inline]
fn lattice1(x: i32, seed: u32) -> f32 {
    (hash32((x as u32).wrapping_mul(0x9e37_79b1) ^ seed) >> 8) as i32 as f32 * (1.0 / 16_777_216.0)
}

/// `x.floor()` as an integer, without a libm call on targets lacking a rounding instruction.
#[inline]
fn floor_i(x: f32) -> i32 {
    let i = x as i32;
    if (i as f32) > x { i - 1 } else { i }
}

#[inline]
fn fade(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// Smooth 2D value noise in `0.0..1.0`, one lattice cell per unit.
#[inline]
pub fn value2(x: f32, y: f32, seed: u32) -> f32 {
    let (ix, iy) = (floor_i(x), floor_i(y));
    let (u, v) = (fade(x - ix as f32), fade(y - iy as f32));
    let (r0, r1) = (hash32((iy as u32).wrapping_add(seed)), hash32((iy as u32).wrapping_add(1).wrapping_add(seed)));
    let a = lattice2(ix, r0);
    let b = lattice2(ix + 1, r0);
    let c = lattice2(ix, r1);
    let d = lattice2(ix + 1, r1);
    let top = a + (b - a) * u;
    let bottom = c + (d - c) * u;
    top + (bottom - top) * v
}

/// Smooth 1D value noise in `0.0..1.0`.
#[inline]
pub fn value1(x: f32, seed: u32) -> f32 {
    let i = floor_i(x);
    let a = lattice1(i, seed);
    let b = lattice1(i + 1, seed);
    a + (b - a) * fade(x - i as f32)
}

/// Fractal (fBm) 2D value noise in roughly `0.0..1.0`: `octaves` layers, each at double
/// frequency and half amplitude, rotated to hide the lattice.
pub fn fbm2(x: f32, y: f32, octaves: u32, seed: u32) -> f32 {
    let (mut x, mut y) = (x, y);
    let (mut sum, mut amp, mut norm) = (0.0, 0.5, 0.0);
    for o in 0..octaves {
        sum += amp * value2(x, y, seed.wrapping_add(o.wrapping_mul(0x9e37_79b9)));
        norm += amp;
        amp *= 0.5;
        let (nx, ny) = (0.8 * x - 0.6 * y, 0.6 * x + 0.8 * y);
        x = nx * 2.03 + 17.1;
        y = ny * 2.03 - 9.7;
    }
    sum / norm
}

/// Fractal 1D value noise in `0.0..1.0`.
pub fn fbm1(x: f32, octaves: u32, seed: u32) -> f32 {
    let (mut x, mut sum, mut amp, mut norm) = (x, 0.0, 0.5, 0.0);
    for o in 0..octaves {
        sum += amp * value1(x, seed.wrapping_add(o.wrapping_mul(0x9e37_79b9)));
        norm += amp;
        amp *= 0.5;
        x = x * 2.07 + 3.3;
    }
    sum / norm
}

/// Ridged 1D noise in `0.0..1.0`: sharp crests where plain noise crosses its middle.
pub fn ridged1(x: f32, octaves: u32, seed: u32) -> f32 {
    let (mut x, mut sum, mut amp, mut norm) = (x, 0.0, 0.5, 0.0);
    for o in 0..octaves {
        let n = 1.0 - (2.0 * value1(x, seed.wrapping_add(o.wrapping_mul(0x85eb_ca6b))) - 1.0).abs();
        sum += amp * n * n;
        norm += amp;
        amp *= 0.5;
        x = x * 2.11 + 5.9;
    }
    sum / norm
}

/// A fast sine (max error about 0.001) built from basic operations, so it is identical on
/// every platform. Used for layout, never per pixel.
pub fn sin(x: f32) -> f32 {
    const TAU: f32 = core::f32::consts::TAU;
    const PI: f32 = core::f32::consts::PI;
    let r = x / TAU;
    let a = (r - floor_i(r + 0.5) as f32) * TAU;
    let y = (4.0 / PI) * a - (4.0 / (PI * PI)) * a * a.abs();
    0.225 * (y * y.abs() - y) + y
}

/// Cosine companion of [`sin`].
pub fn cos(x: f32) -> f32 {
    sin(x + core::f32::consts::FRAC_PI_2)
}

/// A scalar field computed on a coarse grid (one sample every `cell` pixels) and sampled
/// back bilinearly a row at a time: expensive noise at a fraction of the cost.
#[derive(Clone, Debug)]
pub struct Field {
    grid_w: usize,
    cell: usize,
    data: Vec<f32>,
    cols: Vec<(u32, f32)>,
}

impl Field {
    /// Evaluate `f(x, y)` (pixel coordinates) on the coarse grid covering `width`×`height`.
    pub fn new(width: usize, height: usize, cell: usize, mut f: impl FnMut(f32, f32) -> f32) -> Self {
        let [field] = Self::many(width, height, cell, |x, y| [f(x, y)]);
        field
    }

    /// `N` fields on the same grid from one function returning all `N` values at a point,
    /// so work they share (such as a common noise) is done once.
    pub fn many<const N: usize>(
        width: usize,
        height: usize,
        cell: usize,
        mut f: impl FnMut(f32, f32) -> [f32; N],
    ) -> [Self; N] {
        let cell = cell.max(1);
        let grid_w = (width.max(1) - 1) / cell + 2;
        let grid_h = (height.max(1) - 1) / cell + 2;
        let mut data: [Vec<f32>; N] = std::array::from_fn(|_| Vec::with_capacity(grid_w * grid_h));
        for gy in 0..grid_h {
            for gx in 0..grid_w {
                for (d, v) in data.iter_mut().zip(f((gx * cell) as f32, (gy * cell) as f32)) {
                    d.push(v);
                }
            }
        }
        let inv = 1.0 / cell as f32;
        let cols: Vec<(u32, f32)> = (0..width).map(|x| ((x / cell) as u32, (x % cell) as f32 * inv)).collect();
        data.map(|data| Self { grid_w, cell, data, cols: cols.clone() })
    }

    /// Bilinearly sampled values of row `y`, written into `out` (one per pixel column).
    pub fn row(&self, y: usize, out: &mut [f32]) {
        let gy = y / self.cell;
        let ty = (y % self.cell) as f32 / self.cell as f32;
        let r0 = &self.data[gy * self.grid_w..(gy + 1) * self.grid_w];
        let r1 = &self.data[(gy + 1) * self.grid_w..(gy + 2) * self.grid_w];
        for (o, &(i, tx)) in out.iter_mut().zip(&self.cols) {
            let i = i as usize;
            let a = r0[i] + (r0[i + 1] - r0[i]) * tx;
            let b = r1[i] + (r1[i + 1] - r1[i]) * tx;
            *o = a + (b - a) * ty;
        }
    }

    /// A field on the same grid computed from each sample and its per-pixel slopes
    /// (`f(value, d/dx, d/dy)`, central differences).
    pub fn derive(&self, f: impl Fn(f32, f32, f32) -> f32) -> Field {
        let gw = self.grid_w;
        let gh = self.data.len() / gw;
        let inv = 1.0 / self.cell as f32;
        let mut data = Vec::with_capacity(self.data.len());
        for gy in 0..gh {
            for gx in 0..gw {
                let at = |x: usize, y: usize| self.data[y * gw + x];
                let (l, r) = (gx.saturating_sub(1), (gx + 1).min(gw - 1));
                let (u, d) = (gy.saturating_sub(1), (gy + 1).min(gh - 1));
                let dx = (at(r, gy) - at(l, gy)) * inv / (r - l).max(1) as f32;
                let dy = (at(gx, d) - at(gx, u)) * inv / (d - u).max(1) as f32;
                data.push(f(at(gx, gy), dx, dy));
            }
        }
        Field { grid_w: gw, cell: self.cell, data, cols: self.cols.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_stays_in_range() {
        for i in 0..2000 {
            let x = i as f32 * 0.37 - 100.0;
            let y = i as f32 * 0.11 + 3.0;
            for v in [value2(x, y, 7), fbm2(x, y, 4, 9), value1(x, 3), fbm1(x, 3, 1), ridged1(x, 4, 2)] {
                assert!((0.0..=1.0).contains(&v), "{v}");
            }
        }
    }

    #[test]
    fn fast_sine_is_close() {
        for i in -100..100 {
            let x = i as f32 * 0.173;
            assert!((sin(x) - x.sin()).abs() < 2e-3, "{x}");
            assert!((cos(x) - x.cos()).abs() < 2e-3, "{x}");
        }
    }

    #[test]
    fn field_interpolates_its_samples() {
        let field = Field::new(33, 17, 8, |x, y| x + 100.0 * y);
        let mut row = vec![0.0; 33];
        field.row(8, &mut row);
        assert_eq!(row[0], 800.0);
        assert_eq!(row[4], 804.0);
        assert_eq!(row[32], 832.0);
    }

    #[test]
    fn rng_is_reproducible() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let mut c = Rng::new(43);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!((0..1000).all(|_| a.below(7) < 7));
    }
}
