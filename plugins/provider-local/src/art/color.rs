//! Colours as `[f32; 3]` RGB triples (sRGB-encoded, each channel `0.0..=1.0`) and small helpers.

/// An RGB colour, each channel in `0.0..=1.0`.
pub type Rgb = [f32; 3];

/// Pure white.
pub const WHITE: Rgb = [1.0, 1.0, 1.0];

/// A colour from a `0xRRGGBB` literal.
pub const fn hex(v: u32) -> Rgb {
    [((v >> 16) & 0xff) as f32 / 255.0, ((v >> 8) & 0xff) as f32 / 255.0, (v & 0xff) as f32 / 255.0]
}

/// Linear interpolation from `a` (t = 0) to `b` (t = 1).
#[inline]
pub fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// Channel-wise sum.
#[inline]
pub fn add(a: Rgb, b: Rgb) -> Rgb {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// Every channel multiplied by `k`.
#[inline]
pub fn scale(a: Rgb, k: f32) -> Rgb {
    [a[0] * k, a[1] * k, a[2] * k]
}

/// Perceived brightness (Rec. 709 weights on the encoded values).
#[inline]
pub fn luma(c: Rgb) -> f32 {
    0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
}

/// The smaller of `a` and `b`. Unlike `f32::min` this is a plain comparison, which stays
/// inline on wasm (where `f32::min` becomes a call to `fminf`).
#[inline]
pub fn fmin(a: f32, b: f32) -> f32 {
    if b < a { b } else { a }
}

/// The larger of `a` and `b` (a plain comparison, like [`fmin`]).
#[inline]
pub fn fmax(a: f32, b: f32) -> f32 {
    if b > a { b } else { a }
}

/// `x` rounded to the nearest integer, halves up (inline on every target, unlike `f32::round`).
#[inline]
pub fn round(x: f32) -> f32 {
    (x + 0.5).floor()
}

/// `x` clamped to `0.0..=1.0`.
#[inline]
pub fn clamp01(x: f32) -> f32 {
    x.clamp(0.0, 1.0)
}

/// Hermite smoothstep of `x` between the edges `e0` and `e1`.
#[inline]
pub fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = clamp01((x - e0) / (e1 - e0));
    t * t * (3.0 - 2.0 * t)
}

/// Hue (degrees, `0.0..360.0`), saturation and lightness of a colour.
pub fn to_hsl(c: Rgb) -> (f32, f32, f32) {
    let max = c[0].max(c[1]).max(c[2]);
    let min = c[0].min(c[1]).min(c[2]);
    let l = (max + min) * 0.5;
    let d = max - min;
    if d <= 1e-6 {
        return (0.0, 0.0, l);
    }
    let s = d / (1.0 - (2.0 * l - 1.0).abs()).max(1e-6);
    let h = if max == c[0] {
        ((c[1] - c[2]) / d).rem_euclid(6.0)
    } else if max == c[1] {
        (c[2] - c[0]) / d + 2.0
    } else {
        (c[0] - c[1]) / d + 4.0
    };
    ((h * 60.0).rem_euclid(360.0), s.min(1.0), l)
}

/// The colour with hue `h` (degrees, any value), saturation `s` and lightness `l`.
pub fn from_hsl(h: f32, s: f32, l: f32) -> Rgb {
    let s = clamp01(s);
    let l = clamp01(l);
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h.rem_euclid(360.0) / 60.0;
    let x = c * (1.0 - (hp.rem_euclid(2.0) - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c * 0.5;
    [r + m, g + m, b + m]
}

/// Signed shortest angle from hue `b` to hue `a`, in `-180.0..=180.0` degrees.
pub fn hue_delta(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(360.0);
    if d > 180.0 { d - 360.0 } else { d }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsl_round_trips() {
        for c in [hex(0xff8800), hex(0x123456), hex(0x7b2cbf), hex(0x2b9348), [0.5, 0.5, 0.5]] {
            let (h, s, l) = to_hsl(c);
            let back = from_hsl(h, s, l);
            for i in 0..3 {
                assert!((back[i] - c[i]).abs() < 1e-4, "{c:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn hue_delta_wraps() {
        assert_eq!(hue_delta(10.0, 350.0), 20.0);
        assert_eq!(hue_delta(350.0, 10.0), -20.0);
    }
}
