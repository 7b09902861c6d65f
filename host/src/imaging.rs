//! Pixel work the host does itself: sizing rules, exact-ratio crops, resizing, encoding and
//! decoding with limits. Pure functions, unit-tested here.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbaImage};

/// Smallest side of a generated image, in pixels.
pub const MIN_SIDE: u32 = 64;
/// Largest side of a generated image, in pixels.
pub const MAX_SIDE: u32 = 4096;
/// Pixel budget of a request that names a ratio but no size (about one megapixel).
pub const DEFAULT_PIXELS: u64 = 1 << 20;

/// An aspect ratio `width:height`, reduced to lowest terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    /// Horizontal term.
    pub w: u32,
    /// Vertical term.
    pub h: u32,
}

impl Ratio {
    /// Parse `"W:H"` with 1 ≤ W, H ≤ 64; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (w, h) = s.split_once(':').ok_or_else(|| format!("{s:?} is not of the form \"W:H\" (e.g. \"16:9\")"))?;
        let parse = |t: &str| {
            t.trim()
                .parse::<u32>()
                .ok()
                .filter(|v| (1..=64).contains(v))
                .ok_or_else(|| format!("{s:?}: each side must be a whole number from 1 to 64"))
        };
        Ok(Self::new(parse(w)?, parse(h)?))
    }

    /// `w:h` reduced by their greatest common divisor.
    pub fn new(w: u32, h: u32) -> Self {
        let g = gcd(w, h).max(1);
        Self { w: w / g, h: h / g }
    }

    /// The ratio as a float (width / height).
    pub fn value(self) -> f64 {
        f64::from(self.w) / f64::from(self.h)
    }

    /// The largest exact-ratio size near `pixels` whose sides lie in [MIN_SIDE, MAX_SIDE].
    ///
    /// Sides are exact multiples of the ratio's terms, so `width * h == height * w` always.
    pub fn size_for_pixels(self, pixels: u64) -> (u32, u32) {
        let area = u64::from(self.w) * u64::from(self.h);
        let mut k = ((pixels as f64 / area as f64).sqrt().round() as u64).max(1);
        let max_k = u64::from(MAX_SIDE / self.w.max(self.h));
        let min_k = u64::from(MIN_SIDE.div_ceil(self.w.min(self.h)));
        k = k.clamp(min_k.min(max_k), max_k.max(1));
        (self.w * k as u32, self.h * k as u32)
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.w, self.h)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Named sizes (the fal.ai presets) and their pixel sizes.
pub const SIZE_PRESETS: &[(&str, u32, u32)] = &[
    ("square_hd", 1024, 1024),
    ("square", 512, 512),
    ("portrait_4_3", 768, 1024),
    ("portrait_16_9", 576, 1024),
    ("landscape_4_3", 1024, 768),
    ("landscape_16_9", 1024, 576),
];

/// Parse a `size`: a preset name or `"WxH"`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    if let Some(&(_, w, h)) = SIZE_PRESETS.iter().find(|(name, ..)| *name == s) {
        return Ok((w, h));
    }
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| {
        let names: Vec<_> = SIZE_PRESETS.iter().map(|p| p.0).collect();
        format!("{s:?} is neither a preset ({}) nor \"WIDTHxHEIGHT\"", names.join(", "))
    })?;
    let side = |t: &str| t.trim().parse::<u32>().map_err(|_| format!("{s:?}: width and height must be whole numbers"));
    Ok((side(w)?, side(h)?))
}

/// The centred crop of a `width`×`height` image to exactly `ratio`: (x, y, w, h).
pub fn center_crop(width: u32, height: u32, ratio: Ratio) -> (u32, u32, u32, u32) {
    // Compare width/height with ratio.w/ratio.h in integers.
    let lhs = u64::from(width) * u64::from(ratio.h);
    let rhs = u64::from(height) * u64::from(ratio.w);
    if lhs == rhs {
        return (0, 0, width, height);
    }
    if lhs > rhs {
        // Too wide: keep the height, cut the width to the largest exact multiple.
        let k = height / ratio.h;
        let (w, h) = (ratio.w * k, ratio.h * k);
        ((width - w) / 2, (height - h) / 2, w, h)
    } else {
        let k = width / ratio.w;
        let (w, h) = (ratio.w * k, ratio.h * k);
        ((width - w) / 2, (height - h) / 2, w, h)
    }
}

/// Crop `img` to the rectangle.
pub fn crop(img: &RgbaImage, (x, y, w, h): (u32, u32, u32, u32)) -> RgbaImage {
    image::imageops::crop_imm(img, x, y, w, h).to_image()
}

/// Resize `img` to exactly `width`×`height` (Lanczos3 via fast_image_resize).
pub fn resize(img: &RgbaImage, width: u32, height: u32) -> anyhow::Result<RgbaImage> {
    if img.width() == width && img.height() == height {
        return Ok(img.clone());
    }
    let mut dst = RgbaImage::new(width, height);
    let mut resizer = fast_image_resize::Resizer::new();
    let options = fast_image_resize::ResizeOptions::new()
        .resize_alg(fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Lanczos3));
    resizer.resize(img, &mut dst, &options)?;
    Ok(dst)
}

/// Output formats the server stores and converts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Lossless, with alpha.
    Png,
    /// Lossy, no alpha (flattened on white).
    Jpeg,
    /// Lossless WebP, with alpha.
    Webp,
}

impl Format {
    /// Parse `png`, `jpeg`/`jpg` or `webp`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Some(Self::Png),
            "jpeg" | "jpg" => Some(Self::Jpeg),
            "webp" => Some(Self::Webp),
            _ => None,
        }
    }

    /// The name stored and shown: `png`, `jpeg`, `webp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Webp => "webp",
        }
    }

    /// The media type, e.g. `image/png`.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }
}

/// Encode RGBA pixels. JPEG has no alpha, so transparent pixels are composited on white.
pub fn encode(img: &RgbaImage, format: Format, jpeg_quality: u8) -> anyhow::Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::with_capacity(img.as_raw().len() / 4));
    match format {
        Format::Png => {
            let encoder = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            );
            img.write_with_encoder(encoder)?;
        }
        Format::Jpeg => {
            let rgb = flatten_on_white(img);
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, jpeg_quality.clamp(1, 100));
            rgb.write_with_encoder(encoder)?;
        }
        Format::Webp => {
            let encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            img.write_with_encoder(encoder)?;
        }
    }
    Ok(out.into_inner())
}

fn flatten_on_white(img: &RgbaImage) -> image::RgbImage {
    let mut rgb = image::RgbImage::new(img.width(), img.height());
    for (src, dst) in img.pixels().zip(rgb.pixels_mut()) {
        let a = u32::from(src[3]);
        for c in 0..3 {
            dst[c] = ((u32::from(src[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    rgb
}

/// Decode PNG, JPEG or WebP bytes with caps on pixels and allocation (no decompression bombs).
pub fn decode(bytes: &[u8], max_pixels: u64) -> anyhow::Result<RgbaImage> {
    let format = image::guess_format(bytes).map_err(|_| anyhow::anyhow!("not a PNG, JPEG or WebP image"))?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) {
        anyhow::bail!("unsupported image format {format:?}");
    }
    // Read the header first: refuse an oversized image before allocating anything for it.
    let (w, h) = image::ImageReader::with_format(Cursor::new(bytes), format).into_dimensions()?;
    if u64::from(w) * u64::from(h) > max_pixels {
        anyhow::bail!("image is {w}x{h}, over the limit of {max_pixels} pixels");
    }
    // Then decode with an allocation cap as a second line of defence (8 bytes a pixel covers
    // 16-bit PNGs before conversion to RGBA8).
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(1 << 20));
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    Ok(reader.decode().map(DynamicImage::into_rgba8)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_parsing() {
        assert_eq!(Ratio::parse("16:9").unwrap(), Ratio { w: 16, h: 9 });
        assert_eq!(Ratio::parse("4:2").unwrap(), Ratio { w: 2, h: 1 });
        for bad in ["", "16", "16:0", "0:1", "65:1", "a:b", "1:2:3", "-1:2"] {
            assert!(Ratio::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ratio_sizes_are_exact_and_about_one_megapixel() {
        for s in ["1:1", "2:7", "11:18", "21:9", "16:9", "9:7", "1:3", "64:1", "1:64", "63:64"] {
            let r = Ratio::parse(s).unwrap();
            let (w, h) = r.size_for_pixels(DEFAULT_PIXELS);
            assert_eq!(u64::from(w) * u64::from(r.h), u64::from(h) * u64::from(r.w), "{s}");
            assert!((MIN_SIDE..=MAX_SIDE).contains(&w) && (MIN_SIDE..=MAX_SIDE).contains(&h), "{s}: {w}x{h}");
            if r.w.max(r.h) / r.w.min(r.h) < 8 {
                let px = u64::from(w) * u64::from(h);
                assert!((800_000..1_300_000).contains(&px), "{s}: {w}x{h}");
            }
        }
        assert_eq!(Ratio::parse("1:1").unwrap().size_for_pixels(DEFAULT_PIXELS), (1024, 1024));
    }

    #[test]
    fn center_crop_is_exact() {
        let r = Ratio::parse("2:7").unwrap();
        let (x, y, w, h) = center_crop(1024, 1024, r);
        assert_eq!(w * 7, h * 2);
        assert_eq!((x, y), ((1024 - w) / 2, (1024 - h) / 2));
        assert!(h > 1015, "keeps nearly the full height");
        assert_eq!(center_crop(1344, 768, Ratio::parse("16:9").unwrap()), (0, 6, 1344, 756));
        assert_eq!(center_crop(100, 100, Ratio::new(1, 1)), (0, 0, 100, 100));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("square_hd").unwrap(), (1024, 1024));
        assert_eq!(parse_size("640x480").unwrap(), (640, 480));
        assert!(parse_size("huge").is_err());
        assert!(parse_size("10xq").is_err());
    }

    #[test]
    fn encode_decode_round_trip_and_limits() {
        let mut img = RgbaImage::new(40, 30);
        img.put_pixel(3, 4, image::Rgba([1, 2, 3, 255]));
        for f in [Format::Png, Format::Webp] {
            let bytes = encode(&img, f, 90).unwrap();
            let back = decode(&bytes, 10_000).unwrap();
            assert_eq!(back, img, "{f:?}");
        }
        let jpeg = encode(&img, Format::Jpeg, 90).unwrap();
        assert_eq!(decode(&jpeg, 10_000).unwrap().dimensions(), (40, 30));
        let png = encode(&img, Format::Png, 90).unwrap();
        assert!(decode(&png, 1000).is_err(), "1200 pixels exceed a 1000-pixel cap");
        assert!(decode(b"not an image", 1000).is_err());
    }
}
