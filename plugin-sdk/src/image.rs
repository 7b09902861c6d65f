//! A small owned RGBA8 buffer that converts to and from the ABI's `image` record.

use crate::bindings::provider::easel::plugin::types::{AspectRatio, Image, PluginError};
use base64::Engine as _;

/// An owned RGBA8 image, row-major, 4 bytes a pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgba {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Rgba {
    /// A `width`×`height` image filled with one colour.
    pub fn filled(width: u32, height: u32, rgba: [u8; 4]) -> Self {
        let count = width as usize * height as usize;
        let mut pixels = Vec::with_capacity(count * 4);
        for _ in 0..count {
            pixels.extend_from_slice(&rgba);
        }
        Self { width, height, pixels }
    }

    /// Wrap existing pixels; `None` when `pixels.len() != width * height * 4`.
    pub fn from_pixels(width: u32, height: u32, pixels: Vec<u8>) -> Option<Self> {
        (pixels.len() == width as usize * height as usize * 4).then_some(Self { width, height, pixels })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The raw RGBA8 bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The raw RGBA8 bytes, mutable.
    pub fn pixels_mut(&mut self) -> &mut [u8] {
        &mut self.pixels
    }

    /// The pixel at (`x`, `y`); panics when out of bounds.
    pub fn get(&self, x: u32, y: u32) -> [u8; 4] {
        let i = (y as usize * self.width as usize + x as usize) * 4;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2], self.pixels[i + 3]]
    }

    /// Set the pixel at (`x`, `y`); panics when out of bounds.
    pub fn put(&mut self, x: u32, y: u32, rgba: [u8; 4]) {
        let i = (y as usize * self.width as usize + x as usize) * 4;
        self.pixels[i..i + 4].copy_from_slice(&rgba);
    }

    /// Convert into the ABI record without copying the pixels.
    pub fn into_image(self) -> Image {
        Image { width: self.width, height: self.height, pixels: self.pixels }
    }

    /// Take an ABI record; `None` when its pixel buffer has the wrong length.
    pub fn from_image(image: Image) -> Option<Self> {
        Self::from_pixels(image.width, image.height, image.pixels)
    }
}

/// Encode an RGBA8 image as PNG (for providers that upload the input image or mask).
///
/// Fails only when `pixels.len() != width * height * 4`.
pub fn encode_png(image: &Image) -> Result<Vec<u8>, String> {
    let expected = image.width as usize * image.height as usize * 4;
    if image.pixels.len() != expected || image.width == 0 || image.height == 0 {
        return Err(format!(
            "a {}x{} image needs {expected} bytes, got {}",
            image.width,
            image.height,
            image.pixels.len()
        ));
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&image.pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// An RGBA8 image as a PNG `data:` URI (`data:image/png;base64,…`), the form fal, Replicate
/// and others accept for file inputs. Fails (`InvalidInput`) only on a malformed image.
pub fn png_data_uri(image: &Image) -> Result<String, PluginError> {
    let png = encode_png(image).map_err(PluginError::InvalidInput)?;
    Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png)))
}

/// The bytes of a `data:<mime>;base64,<data>` URI; `None` when it is not one.
pub fn decode_data_uri(uri: &str) -> Option<Vec<u8>> {
    let rest = uri.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    if !meta.ends_with(";base64") {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(data.trim()).ok()
}

/// The aspect ratio of a `width`×`height` size in lowest terms (`1344×768` → `7:4`); a zero
/// side gives `1` for that term.
pub fn aspect_ratio_of(width: u32, height: u32) -> AspectRatio {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let g = gcd(width, height).max(1);
    AspectRatio { width: (width / g).max(1), height: (height / g).max(1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uris_round_trip_and_ratios_reduce() {
        let img = Image { width: 1, height: 1, pixels: vec![1, 2, 3, 255] };
        let uri = png_data_uri(&img).unwrap();
        assert!(uri.starts_with("data:image/png;base64,"));
        assert_eq!(&decode_data_uri(&uri).unwrap()[1..4], b"PNG");
        assert_eq!(decode_data_uri("https://x"), None);
        assert_eq!(decode_data_uri("data:text/plain,hi"), None);
        let r = aspect_ratio_of(1344, 768);
        assert_eq!((r.width, r.height), (7, 4));
        let r = aspect_ratio_of(0, 5);
        assert_eq!((r.width, r.height), (1, 1));
    }
}
