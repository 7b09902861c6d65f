//! Gaussian blur as three extended-box passes per axis (Gwosdek et al., "Theoretical foundations
//! of Gaussian convolution by extended box filtering", 2011).
//!
//! An extended box of radius `l + α` weighs the `2l + 1` central samples 1 and the two next ones
//! `α`, which matches any variance exactly, so fractional radii blur smoothly. Each pass keeps a
//! running sum of the central samples: O(1) per sample whatever the radius. Weights are fixed
//! point summing to 2¹³, so normalising is a shift. Edges repeat the border pixel.
//!
//! A pixel is held as one `u64` with R, G, B in 21-bit lanes (bits 0, 21 and 42), so every add,
//! multiply and shift serves all three channels: no lane can overflow, since a running sum times
//! its weight plus the edge term stays below 255 · 2¹³ + 2¹² < 2²¹.
//!
//! The whole blur is one streaming sweep down the image: each row is read once, blurred
//! horizontally (three passes over an L1-sized line) into a ring of rows, and three vertical
//! stages, each a running sum over whole rows, cascade through two more rings; the last stage
//! hands finished rows to a `combine` callback while the source row is still original (it is
//! 3l + 3 rows behind the reader). Memory is read and written sequentially, and the scratch is
//! three rings of 2l + 3 rows, not an image copy. Alpha is never touched.
//!
//! The kernels are small non-inlined functions over plain `u64` slices so that the wasm
//! compiler (Cranelift) keeps their few live values in registers.

/// Pixels per kernel loop iteration.
const UNROLL: usize = 8;
/// Fractional bits of the weights.
const SHIFT: u32 = 13;
/// Bit position of each channel's lane.
const G_LANE: u32 = 21;
const B_LANE: u32 = 42;
/// How far the weights' total may be from 2¹³: small enough that a flat area stays exactly
/// flat (255 · 15 < 2¹²) and no lane overflows (255 · (2¹³ + 15) + 2¹² < 2²¹).
const TOLERANCE: u64 = 15;
/// 0.5 in every lane, for rounding.
const HALF: u64 = (1 << (SHIFT - 1)) * (1 | 1 << G_LANE | 1 << B_LANE);
/// The 8-bit results of every lane after the normalising shift.
const MASK: u64 = 0xFF * (1 | 1 << G_LANE | 1 << B_LANE);

/// Blur `pixels` (`w × h` RGBA8) with a Gaussian of standard deviation `sigma` pixels, letting
/// `combine(pixel, r, g, b)` merge each blurred R, G, B (0..=255) into the original pixel.
pub(crate) fn gaussian(pixels: &mut [u8], w: usize, h: usize, sigma: f32, combine: impl Fn(&mut [u8], u32, u32, u32)) {
    if w == 0 || h == 0 {
        return;
    }
    let k = BoxKernel::for_sigma(sigma);
    let (l, p) = (k.l, k.pad());
    // Rows a vertical stage needs at once: its 2l + 3 inputs (fewer in a short image).
    let ring_rows = (2 * l + 3).min(h);
    let mut rings = [Ring::new(w, ring_rows), Ring::new(w, ring_rows), Ring::new(w, ring_rows)];
    let mut sums = [vec![0u64; w], vec![0u64; w], vec![0u64; w]];
    let mut line_a = vec![0u64; w + 2 * p];
    let mut line_b = vec![0u64; w + 2 * p];
    let mut out = vec![0u64; w];
    // done[0]: rows blurred horizontally into rings[0]; done[s]: rows output by vertical stage s,
    // which reads rings[s - 1] and writes rings[s] (stage 3 writes the image).
    let mut done = [0usize; 4];
    let ready = |done: &[usize; 4], s: usize| done[s] < h && (done[s - 1] == h || done[s] + l + 1 < done[s - 1]);
    while done[3] < h {
        if let Some(s) = (1..4).rev().find(|&s| ready(&done, s)) {
            let y = done[s];
            let (inputs, outputs) = rings.split_at_mut(s);
            let input = &inputs[s - 1];
            if y == 0 {
                k.start_sums(&mut sums[s - 1], input, h);
            }
            let clamp = |j: isize| j.clamp(0, h as isize - 1) as usize;
            let (y, l) = (y as isize, l as isize);
            let (lo, leaving, hi) = (input.row(clamp(y - l - 1)), input.row(clamp(y - l)), input.row(clamp(y + l + 1)));
            let dst = match outputs.first_mut() {
                Some(ring) => ring.row_mut(y as usize),
                None => &mut out[..],
            };
            k.vertical(&mut sums[s - 1], lo, leaving, hi, dst);
            if s == 3 {
                let y = y as usize;
                emit(&out, &mut pixels[y * w * 4..(y + 1) * w * 4], &combine);
            }
            done[s] += 1;
        } else {
            let y = done[0];
            load(&pixels[y * w * 4..(y + 1) * w * 4], &mut line_a[p..p + w]);
            fill_pad(&mut line_a, p);
            k.horizontal(&line_a, &mut line_b[p..p + w]);
            fill_pad(&mut line_b, p);
            k.horizontal(&line_b, &mut line_a[p..p + w]);
            fill_pad(&mut line_a, p);
            k.horizontal(&line_a, rings[0].row_mut(y));
            done[0] += 1;
        }
    }
}

/// Unpack RGBA8 bytes into lane words.
#[inline(never)]
fn load(row: &[u8], dst: &mut [u64]) {
    for (px, d) in row.chunks_exact(4).zip(dst) {
        *d = px[0] as u64 | (px[1] as u64) << G_LANE | (px[2] as u64) << B_LANE;
    }
}

/// Hand each finished lane word to `combine` with its pixel.
#[inline(never)]
fn emit(src: &[u64], row: &mut [u8], combine: &impl Fn(&mut [u8], u32, u32, u32)) {
    for (&v, px) in src.iter().zip(row.chunks_exact_mut(4)) {
        combine(px, (v & 0xFF) as u32, (v >> G_LANE) as u32 & 0xFF, (v >> B_LANE) as u32 & 0xFF);
    }
}

/// Repeat the first and last real pixel of a line padded by `p` on each side into the padding.
fn fill_pad(line: &mut [u64], p: usize) {
    let len = line.len();
    let (first, last) = (line[p], line[len - p - 1]);
    line[..p].fill(first);
    line[len - p..].fill(last);
}

/// Rows `r` of an image kept in `r % rows`: the recent output of one stage.
struct Ring {
    data: Vec<u64>,
    w: usize,
    rows: usize,
}

impl Ring {
    fn new(w: usize, rows: usize) -> Self {
        Self { data: vec![0; w * rows], w, rows }
    }

    fn row(&self, r: usize) -> &[u64] {
        let at = (r % self.rows) * self.w;
        &self.data[at..at + self.w]
    }

    fn row_mut(&mut self, r: usize) -> &mut [u64] {
        let at = (r % self.rows) * self.w;
        &mut self.data[at..at + self.w]
    }
}

/// One extended box: central radius `l`; central weight `wi` and edge weight `we`, with
/// `(2l + 1)·wi + 2·we` within [`TOLERANCE`] of 2¹³.
#[derive(Clone, Copy, Debug)]
struct BoxKernel {
    l: usize,
    wi: u64,
    we: u64,
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
        // The best integer weights near that extended box (or the next larger plain box): total
        // within 2¹³ ± TOLERANCE (so flat areas stay exactly flat and no lane overflows) and
        // variance closest to the target.
        let var = var as f64;
        let one = 1u64 << SHIFT;
        let mut best: Option<(f64, Self)> = None;
        for l in [l, l + 1] {
            let lf = l as f64;
            let inner: f64 = (1..=l).map(|i| (i * i) as f64).sum();
            let alpha = ((2.0 * lf + 1.0) * (var - lf * (lf + 1.0) / 3.0) / (2.0 * ((lf + 1.0) * (lf + 1.0) - var)))
                .clamp(0.0, 1.0);
            let base = (one as f64 / (2.0 * lf + 1.0 + 2.0 * alpha)) as u64;
            for wi in base.saturating_sub(6).max(1)..=base + 6 {
                let centre = (2 * l as u64 + 1) * wi;
                for total in
                    (one - TOLERANCE..=one + TOLERANCE).filter(|&t| t >= centre && (t - centre).is_multiple_of(2))
                {
                    let we = (total - centre) / 2;
                    let error =
                        (2.0 * (wi as f64 * inner + we as f64 * (lf + 1.0) * (lf + 1.0)) / total as f64 - var).abs();
                    if best.as_ref().is_none_or(|(e, _)| error < *e) {
                        best = Some((error, Self { l, wi, we }));
                    }
                }
            }
        }
        best.expect("some weights fit").1
    }

    /// Padding a line needs on each side, in pixels.
    fn pad(&self) -> usize {
        self.l + 1
    }

    /// One horizontal pass: `dst[i]` from `src` padded by [`Self::pad`] (so `src[i + l + 1]` is
    /// the pixel under `dst[i]`).
    #[inline(never)]
    fn horizontal(&self, src: &[u64], dst: &mut [u64]) {
        let (l, wi, we) = (self.l, self.wi, self.we);
        let n = dst.len();
        debug_assert_eq!(src.len(), n + 2 * l + 2, "line padded by l + 1 on each side");
        // dst[i] weighs src[i + 1 ..= i + 2l + 1] by wi and src[i], src[i + 2l + 2] by we.
        let mut sum: u64 = src[1..2 * l + 2].iter().sum();
        let mut step = |d: &mut u64, lo: u64, lv: u64, hi: u64| {
            *d = ((sum * wi + (lo + hi) * we + HALF) >> SHIFT) & MASK;
            sum = sum + hi - lv;
        };
        // UNROLL pixels a step, each stream walked by its own pointer so that every access is a
        // constant offset (folded into the wasm load/store), and fewer loop back-edges (each
        // costs Cranelift an interrupt check and register reloads). `lo` and `leaving` share
        // one window.
        let main = n / UNROLL * UNROLL;
        let (d, d_rest) = dst.split_at_mut(main);
        let (mut lo, mut hi, mut d) = (&src[..main + 1], &src[2 * l + 2..2 * l + 2 + main], d);
        while let (Some(win), Some(hi8)) = (lo.first_chunk::<{ UNROLL + 1 }>(), hi.first_chunk::<UNROLL>()) {
            let Some((d8, d_next)) = std::mem::take(&mut d).split_first_chunk_mut::<UNROLL>() else {
                break;
            };
            for j in 0..UNROLL {
                step(&mut d8[j], win[j], win[j + 1], hi8[j]);
            }
            (lo, hi, d) = (&lo[UNROLL..], &hi[UNROLL..], d_next);
        }
        for (i, d) in (main..).zip(d_rest) {
            step(d, src[i], src[i + 1], src[i + 2 * l + 2]);
        }
    }

    /// Running sums of vertical output row 0: rows `-l ..= l` of `input` (clamped to `0..h`).
    fn start_sums(&self, sums: &mut [u64], input: &Ring, h: usize) {
        let l = self.l as isize;
        sums.fill(0);
        for j in -l..=l {
            for (s, v) in sums.iter_mut().zip(input.row(j.clamp(0, h as isize - 1) as usize)) {
                *s += v;
            }
        }
    }

    /// One vertical pass, one output row: `lo`, `leaving` and `hi` are the input rows
    /// `y - l - 1`, `y - l` and `y + l + 1` (clamped); `sums` holds rows `y - l ..= y + l` and
    /// moves on to row `y + 1`.
    #[inline(never)]
    fn vertical(&self, sums: &mut [u64], lo: &[u64], leaving: &[u64], hi: &[u64], dst: &mut [u64]) {
        let (wi, we) = (self.wi, self.we);
        let step = |d: &mut u64, s: &mut u64, lo: u64, lv: u64, hi: u64| {
            *d = ((*s * wi + (lo + hi) * we + HALF) >> SHIFT) & MASK;
            *s = *s + hi - lv;
        };
        let main = dst.len() / UNROLL * UNROLL;
        let (d, d_rest) = dst.split_at_mut(main);
        let (s, s_rest) = sums.split_at_mut(main);
        let ((lo, lo_rest), (lv, lv_rest), (hi, hi_rest)) =
            (lo.split_at(main), leaving.split_at(main), hi.split_at(main));
        // Walk every row with its own pointer, UNROLL pixels a step, so that each access is a
        // constant offset from a pointer (folded into the wasm load/store) and loop back-edges
        // (each costs Cranelift an interrupt check and register reloads) are few.
        let (mut d, mut s, mut lo, mut lv, mut hi) = (d, s, lo, lv, hi);
        // (`main` is a multiple of UNROLL, so the loop ends exactly when the rows run out.)
        while let (Some((d8, d_next)), Some((s8, s_next))) = (
            std::mem::take(&mut d).split_first_chunk_mut::<UNROLL>(),
            std::mem::take(&mut s).split_first_chunk_mut::<UNROLL>(),
        ) {
            let (Some((lo8, lo_next)), Some((lv8, lv_next)), Some((hi8, hi_next))) =
                (lo.split_first_chunk::<UNROLL>(), lv.split_first_chunk::<UNROLL>(), hi.split_first_chunk::<UNROLL>())
            else {
                break;
            };
            for j in 0..UNROLL {
                step(&mut d8[j], &mut s8[j], lo8[j], lv8[j], hi8[j]);
            }
            (d, s, lo, lv, hi) = (d_next, s_next, lo_next, lv_next, hi_next);
        }
        for ((((d, s), &lo), &lv), &hi) in d_rest.iter_mut().zip(s_rest).zip(lo_rest).zip(lv_rest).zip(hi_rest) {
            step(d, s, lo, lv, hi);
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
        for sigma in (0..=200).map(|i| 0.5 + i as f32 * 0.2475) {
            let k = BoxKernel::for_sigma(sigma);
            let total = (2 * k.l as u64 + 1) * k.wi + 2 * k.we;
            assert!(
                (8192 - TOLERANCE..=8192 + TOLERANCE).contains(&total),
                "sigma {sigma}: weights sum to {total} ({k:?})"
            );
            let got = sigma_of(&k);
            assert!((got - sigma).abs() < 0.01 * sigma + 0.005, "sigma {sigma}: got {got} ({k:?})");
        }
    }

    /// The same arithmetic, one channel at a time, straight from the definition.
    fn reference(pixels: &[u8], w: usize, h: usize, sigma: f32) -> Vec<u8> {
        let k = BoxKernel::for_sigma(sigma);
        let l = k.l as isize;
        let pass = |line: &[u64]| -> Vec<u64> {
            let n = line.len() as isize;
            let at = |j: isize| line[j.clamp(0, n - 1) as usize];
            (0..n)
                .map(|i| {
                    let inner: u64 = (i - l..=i + l).map(at).sum();
                    (inner * k.wi + (at(i - l - 1) + at(i + l + 1)) * k.we + (1 << (SHIFT - 1))) >> SHIFT
                })
                .collect()
        };
        let mut out = pixels.to_vec();
        for c in 0..3 {
            let mut img: Vec<u64> = (0..w * h).map(|i| pixels[i * 4 + c] as u64).collect();
            for y in 0..h {
                let mut row = img[y * w..(y + 1) * w].to_vec();
                for _ in 0..3 {
                    row = pass(&row);
                }
                img[y * w..(y + 1) * w].copy_from_slice(&row);
            }
            for x in 0..w {
                let mut col: Vec<u64> = (0..h).map(|y| img[y * w + x]).collect();
                for _ in 0..3 {
                    col = pass(&col);
                }
                for (y, v) in col.into_iter().enumerate() {
                    img[y * w + x] = v;
                }
            }
            for (i, v) in img.into_iter().enumerate() {
                out[i * 4 + c] = u8::try_from(v).expect("channel in range");
            }
        }
        out
    }

    #[test]
    fn streaming_blur_matches_the_definition() {
        let mut state = 12345u32;
        for (w, h) in [(1, 1), (3, 7), (7, 3), (17, 5), (40, 33), (2, 64)] {
            let pixels: Vec<u8> = (0..w * h * 4)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 24) as u8
                })
                .collect();
            for sigma in [0.5, 1.3, 3.0, 9.7, 50.0] {
                let mut got = pixels.clone();
                gaussian(&mut got, w, h, sigma, |px, r, g, b| {
                    px[0] = r as u8;
                    px[1] = g as u8;
                    px[2] = b as u8;
                });
                assert!(got == reference(&pixels, w, h, sigma), "{w}×{h}, sigma {sigma}");
            }
        }
    }
}
