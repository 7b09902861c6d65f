//! Gaussian blur as three extended-box passes per axis (Gwosdek et al., "Theoretical foundations
//! of Gaussian convolution by extended box filtering", 2011).
//!
//! An extended box of radius `l + α` weighs the `2l + 1` central samples 1 and the two next ones
//! `α`, which matches any variance exactly, so fractional radii blur smoothly. Each pass keeps a
//! running sum of the central samples: O(1) per sample whatever the radius. Weights are fixed
//! point summing to 2¹⁶, so normalising is a shift. Edges repeat the border pixel.
//!
//! Lines are held unpacked: R and B in the two 32-bit lanes of a `u64`, G in a `u32`, so one
//! 64-bit add or multiply serves two channels (no lane can overflow: every intermediate stays
//! below 2²⁴). Rows are blurred through two padded line buffers; columns are gathered a strip at
//! a time into padded lines, blurred with the same kernel and scattered back, so both axes read
//! memory sequentially and no image-sized scratch is needed. Alpha is never touched.

/// Columns gathered per vertical strip (16 pixels = one 64-byte cache line of a row).
const STRIP: usize = 16;

/// Blur `pixels` (`w × h` RGBA8) in place with a Gaussian of standard deviation `sigma` pixels.
pub(crate) fn gaussian(pixels: &mut [u8], w: usize, h: usize, sigma: f32) {
    if w == 0 || h == 0 {
        return;
    }
    let k = BoxKernel::for_sigma(sigma);
    let mut rows = RowBlur::new(&k, w);
    for row in pixels.chunks_exact_mut(w * 4) {
        rows.a.load(row);
        rows.run(&k, row);
    }
    let mut cols = ColumnBlur::new(&k, w, h);
    let mut x0 = 0;
    while x0 < w {
        let sw = STRIP.min(w - x0);
        cols.gather(&k, pixels, w, x0, sw);
        cols.scatter(pixels, w, x0, sw, |px, r, g, b| {
            px[0] = r as u8;
            px[1] = g as u8;
            px[2] = b as u8;
        });
        x0 += sw;
    }
}

/// Blur a copy of `pixels` and let `combine(pixel, r, g, b)` merge each blurred R, G, B (0..=255)
/// into the original pixel. Needs one image-sized scratch buffer (the row-blurred copy).
pub(crate) fn gaussian_combine(
    pixels: &mut [u8],
    w: usize,
    h: usize,
    sigma: f32,
    combine: impl Fn(&mut [u8], u32, u32, u32),
) {
    if w == 0 || h == 0 {
        return;
    }
    let k = BoxKernel::for_sigma(sigma);
    let mut rows = RowBlur::new(&k, w);
    let mut blurred = vec![0u8; pixels.len()];
    for (row, out) in pixels.chunks_exact(w * 4).zip(blurred.chunks_exact_mut(w * 4)) {
        rows.a.load(row);
        rows.run(&k, out);
    }
    let mut cols = ColumnBlur::new(&k, w, h);
    let mut x0 = 0;
    while x0 < w {
        let sw = STRIP.min(w - x0);
        cols.gather(&k, &blurred, w, x0, sw);
        cols.scatter(pixels, w, x0, sw, &combine);
        x0 += sw;
    }
}

/// Rounding constant for both lanes of an R|B word.
const HALF_RB: u64 = 0x8000 | (0x8000 << 32);
/// The two 8-bit results of a normalised R|B word.
const MASK_RB: u64 = 0xFF | (0xFF << 32);

/// One padded, unpacked line of pixels.
struct Line {
    /// R in bits 0..32, B in bits 32..64.
    rb: Vec<u64>,
    g: Vec<u32>,
    /// Padding on each side, in pixels.
    pad: usize,
}

impl Line {
    fn new(n: usize, pad: usize) -> Self {
        Self { rb: vec![0; n + 2 * pad], g: vec![0; n + 2 * pad], pad }
    }

    /// The unpadded part.
    fn center(&mut self) -> (&mut [u64], &mut [u32]) {
        let n = self.rb.len() - 2 * self.pad;
        (&mut self.rb[self.pad..self.pad + n], &mut self.g[self.pad..self.pad + n])
    }

    /// Unpack RGBA8 bytes into the unpadded part and fill the padding.
    fn load(&mut self, row: &[u8]) {
        let (rb, g) = self.center();
        for ((px, rb), g) in row.chunks_exact(4).zip(rb).zip(g) {
            *rb = px[0] as u64 | (px[2] as u64) << 32;
            *g = px[1] as u32;
        }
        self.fill_pad();
    }

    /// Repeat the first and last real pixel into the padding.
    fn fill_pad(&mut self) {
        let (p, len) = (self.pad, self.rb.len());
        let (first_rb, first_g) = (self.rb[p], self.g[p]);
        let (last_rb, last_g) = (self.rb[len - p - 1], self.g[len - p - 1]);
        self.rb[..p].fill(first_rb);
        self.g[..p].fill(first_g);
        self.rb[len - p..].fill(last_rb);
        self.g[len - p..].fill(last_g);
    }
}

/// Scratch for blurring rows: row → a → b → a → row.
struct RowBlur {
    a: Line,
    b: Line,
}

impl RowBlur {
    fn new(k: &BoxKernel, w: usize) -> Self {
        Self { a: Line::new(w, k.pad()), b: Line::new(w, k.pad()) }
    }

    /// Blur the row loaded into `a` three times, writing R, G, B into `out` (alpha untouched).
    fn run(&mut self, k: &BoxKernel, out: &mut [u8]) {
        let (rb, g) = self.b.center();
        k.pass(&self.a, rb.iter_mut().zip(g), store_unpacked);
        self.b.fill_pad();
        let (rb, g) = self.a.center();
        k.pass(&self.b, rb.iter_mut().zip(g), store_unpacked);
        self.a.fill_pad();
        k.pass(&self.a, out.chunks_exact_mut(4), |px, rb, g| {
            px[0] = rb as u8;
            px[1] = g as u8;
            px[2] = (rb >> 32) as u8;
        });
    }
}

#[inline(always)]
fn store_unpacked((dst_rb, dst_g): (&mut u64, &mut u32), rb: u64, g: u32) {
    *dst_rb = rb;
    *dst_g = g;
}

/// Scratch for blurring a strip of columns: gather → line → b → c → line → scatter.
struct ColumnBlur {
    lines: Vec<Line>,
    b: Line,
    c: Line,
}

impl ColumnBlur {
    fn new(k: &BoxKernel, w: usize, h: usize) -> Self {
        let lines = (0..STRIP.min(w)).map(|_| Line::new(h, k.pad())).collect();
        Self { lines, b: Line::new(h, k.pad()), c: Line::new(h, k.pad()) }
    }

    /// Load columns `x0..x0 + sw` of `src` and blur each of them.
    fn gather(&mut self, k: &BoxKernel, src: &[u8], w: usize, x0: usize, sw: usize) {
        let p = self.b.pad;
        for (y, row) in src.chunks_exact(w * 4).enumerate() {
            for (line, px) in self.lines.iter_mut().zip(row[x0 * 4..(x0 + sw) * 4].chunks_exact(4)) {
                line.rb[p + y] = px[0] as u64 | (px[2] as u64) << 32;
                line.g[p + y] = px[1] as u32;
            }
        }
        for line in &mut self.lines[..sw] {
            line.fill_pad();
            let (rb, g) = self.b.center();
            k.pass(line, rb.iter_mut().zip(g), store_unpacked);
            self.b.fill_pad();
            let (rb, g) = self.c.center();
            k.pass(&self.b, rb.iter_mut().zip(g), store_unpacked);
            self.c.fill_pad();
            let (rb, g) = line.center();
            k.pass(&self.c, rb.iter_mut().zip(g), store_unpacked);
        }
    }

    /// Hand the blurred columns `x0..x0 + sw` to `put(pixel of dst, r, g, b)`.
    #[inline(always)]
    fn scatter(&self, dst: &mut [u8], w: usize, x0: usize, sw: usize, put: impl Fn(&mut [u8], u32, u32, u32)) {
        let p = self.b.pad;
        for (y, row) in dst.chunks_exact_mut(w * 4).enumerate() {
            for (line, px) in self.lines.iter().zip(row[x0 * 4..(x0 + sw) * 4].chunks_exact_mut(4)) {
                let rb = line.rb[p + y];
                put(px, rb as u32, line.g[p + y], (rb >> 32) as u32);
            }
        }
    }
}

/// One extended box: central radius `l`; central weight `wi` and edge weight `we`, with
/// `(2l + 1)·wi + 2·we ≤ 2¹⁶` (equal up to one unit of rounding).
#[derive(Clone, Copy, Debug)]
struct BoxKernel {
    l: usize,
    wi: u32,
    we: u32,
}

impl BoxKernel {
    /// The extended box whose threefold application has variance `sigma²`.
    fn for_sigma(sigma: f32) -> Self {
        let var = (sigma * sigma / 3.0).max(0.0);
        // Largest l whose plain box (variance l(l+1)/3) does not exceed the target.
        let mut l = (((12.0 * var + 1.0).sqrt() - 1.0) / 2.0).floor().max(0.0) as usize;
        while l > 0 && (l * (l + 1)) as f32 / 3.0 > var {
            l -= 1;
        }
        while ((l + 1) * (l + 2)) as f32 / 3.0 <= var {
            l += 1;
        }
        let lf = l as f32;
        let alpha = (2.0 * lf + 1.0) * (var - lf * (lf + 1.0) / 3.0) / (2.0 * ((lf + 1.0) * (lf + 1.0) - var));
        let alpha = alpha.clamp(0.0, 1.0);
        let wi = (65536.0 / (2.0 * lf + 1.0 + 2.0 * alpha)) as u32;
        let we = (65536 - (2 * l as u32 + 1) * wi) / 2;
        Self { l, wi, we }
    }

    /// Padding a line needs on each side, in pixels.
    fn pad(&self) -> usize {
        self.l + 1
    }

    /// One pass over `src` (padded by [`Self::pad`]): output `i` goes to the `i`-th item of
    /// `dst` through `put(item, r | b << 32, g)`, each channel 0..=255.
    #[inline(always)]
    fn pass<D>(&self, src: &Line, dst: impl Iterator<Item = D>, put: impl Fn(D, u64, u32)) {
        let l = self.l;
        debug_assert_eq!(src.pad, l + 1);
        let (wi, we) = (self.wi, self.we);
        let (wi64, we64) = (wi as u64, we as u64);
        // Output i (padded position i + l + 1) weighs src[i + 1 ..= i + 2l + 1] by wi and
        // src[i], src[i + 2l + 2] by we.
        let mut s_rb: u64 = src.rb[1..2 * l + 2].iter().sum();
        let mut s_g: u32 = src.g[1..2 * l + 2].iter().sum();
        let lows = src.rb.iter().zip(&src.g);
        let leaving = src.rb[1..].iter().zip(&src.g[1..]);
        let highs = src.rb[2 * l + 2..].iter().zip(&src.g[2 * l + 2..]);
        for (((d, (&lo_rb, &lo_g)), (&lv_rb, &lv_g)), (&hi_rb, &hi_g)) in dst.zip(lows).zip(leaving).zip(highs) {
            let t_rb = s_rb * wi64 + (lo_rb + hi_rb) * we64 + HALF_RB;
            let t_g = s_g * wi + (lo_g + hi_g) * we + 0x8000;
            put(d, (t_rb >> 16) & MASK_RB, t_g >> 16);
            s_rb = s_rb + hi_rb - lv_rb;
            s_g = s_g + hi_g - lv_g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard deviation of the kernel after three passes, from its weights.
    fn sigma_of(k: &BoxKernel) -> f32 {
        let (wi, we) = (k.wi as f32, k.we as f32);
        let total = (2 * k.l + 1) as f32 * wi + 2.0 * we;
        let mut m2 = 0.0;
        for i in 1..=k.l {
            m2 += 2.0 * wi * (i * i) as f32;
        }
        m2 += 2.0 * we * ((k.l + 1) * (k.l + 1)) as f32;
        (3.0 * m2 / total).sqrt()
    }

    #[test]
    fn kernel_matches_sigma_and_weights_sum_to_one() {
        for sigma in [0.5f32, 0.8, 1.0, 1.5, 2.0, 3.0, 7.3, 20.0, 33.3, 50.0] {
            let k = BoxKernel::for_sigma(sigma);
            let total = (2 * k.l as u32 + 1) * k.wi + 2 * k.we;
            assert!((65535..=65536).contains(&total), "sigma {sigma}: weights sum to {total} ({k:?})");
            assert!(k.we <= k.wi + 1, "sigma {sigma}: edge weight above centre weight ({k:?})");
            let got = sigma_of(&k);
            assert!((got - sigma).abs() < 0.01 * sigma + 0.01, "sigma {sigma}: got {got} ({k:?})");
        }
    }
}
