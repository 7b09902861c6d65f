//! Render sample prompts to PNG files, with timings.
//!
//! ```text
//! cargo run --release -p provider-local --example gallery -- [OUT_DIR] [SIZE|WxH] ["prompt" ...]
//! ```
//!
//! Writes one PNG per prompt (default prompts when none are given) into `OUT_DIR`
//! (default `/tmp/easel-gallery`). A prompt may carry a negative prompt after ` || ` and
//! a seed after ` @ `, e.g. `"sunset over the ocean || orange @ 7"`. A style hint may follow
//! after ` ## `, e.g. `"a fox ## icon"`. Besides the single images, `sheet.png` shows them
//! all side by side, four to a row.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use provider_local::art::{Params, render};

const DEFAULT_PROMPTS: &[&str] = &[
    "sunset over the ocean",
    "neon city at night",
    "forest in autumn",
    "minimalist logo of a fox",
    "snowy mountains at sunrise",
    "starry night over the lake",
    "desert dunes",
    "deep space galaxy with a planet",
    "abstract marble in teal and gold",
    "portrait in pastel",
    "spring meadow with flowers",
    "volcano with lava at night",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "/tmp/easel-gallery".into()));
    let size = args.next().unwrap_or_else(|| "1024".into());
    let (width, height) = match size.split_once('x') {
        Some((w, h)) => (w.parse().expect("width"), h.parse().expect("height")),
        None => {
            let s = size.parse().expect("size");
            (s, s)
        }
    };
    let prompts: Vec<String> = args.collect();
    let prompts: Vec<String> =
        if prompts.is_empty() { DEFAULT_PROMPTS.iter().map(|s| s.to_string()).collect() } else { prompts };
    std::fs::create_dir_all(&out).expect("create output directory");
    let columns = prompts.len().min(4) as u32;
    let rows = (prompts.len() as u32).div_ceil(columns);
    let (sheet_w, sheet_h) = (columns * (width + 8) + 8, rows * (height + 8) + 8);
    let mut sheet = vec![40u8; (sheet_w * sheet_h * 4) as usize];
    for (i, spec) in prompts.iter().enumerate() {
        let (spec, style) = match spec.split_once(" ## ") {
            Some((p, s)) => (p, Some(s)),
            None => (spec.as_str(), None),
        };
        let (spec, seed) = match spec.split_once(" @ ") {
            Some((p, s)) => (p, s.trim().parse().expect("seed")),
            None => (spec, 1),
        };
        let (prompt, negative) = match spec.split_once(" || ") {
            Some((p, n)) => (p, Some(n)),
            None => (spec, None),
        };
        let params = Params { prompt, negative_prompt: negative, seed, width, height, style_hint: style };
        let start = Instant::now();
        let pixels = render(&params);
        let elapsed = start.elapsed();
        let name: String =
            prompt.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
        let path = out.join(format!("{i:02}-{name}-s{seed}.png"));
        write_png(&path, width, height, &pixels);
        println!("{:>7.1} ms  {}", elapsed.as_secs_f64() * 1000.0, path.display());
        let (ox, oy) = (8 + (i as u32 % columns) * (width + 8), 8 + (i as u32 / columns) * (height + 8));
        for y in 0..height {
            let src = (y * width * 4) as usize;
            let dst = (((oy + y) * sheet_w + ox) * 4) as usize;
            sheet[dst..dst + (width * 4) as usize].copy_from_slice(&pixels[src..src + (width * 4) as usize]);
        }
    }
    write_png(&out.join("sheet.png"), sheet_w, sheet_h, &sheet);
}

fn write_png(path: &std::path::Path, width: u32, height: u32, rgba: &[u8]) {
    let mut encoder = png::Encoder::new(BufWriter::new(File::create(path).expect("create png")), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().and_then(|mut w| w.write_image_data(rgba)).expect("write png");
}
