//! Palettes: chosen from mood and colour words in the prompt, or derived from its hash.

use super::color::{Rgb, from_hsl, hex, hue_delta, mix, to_hsl};
use super::noise::{Rng, hash_str};
use super::words::Words;

/// Every colour a picture uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Palette {
    /// Sky gradient from zenith to horizon.
    pub sky: [Rgb; 4],
    /// Sun (or moon) disc.
    pub sun: Rgb,
    /// Light glow around the sun and the horizon.
    pub glow: Rgb,
    /// Farthest terrain layer.
    pub land_far: Rgb,
    /// Nearest terrain layer.
    pub land_near: Rgb,
    /// Mist between terrain layers.
    pub haze: Rgb,
    /// Deep water.
    pub water: Rgb,
    /// Feature colours: flowers, windows, abstract shapes, logo fills.
    pub accents: [Rgb; 4],
    /// Small lights: stars, lit windows, sparkles.
    pub light: Rgb,
    /// 0 for bright day up to 1 for deep night.
    pub darkness: f32,
}

/// Named moods with a hand-made palette, in priority order (earlier wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    /// Greys only.
    Noir,
    /// Soft, light colours.
    Pastel,
    /// Synthwave magenta and cyan.
    Neon,
    /// Deep space with nebulae.
    Space,
    /// Fire and lava.
    Fire,
    /// Black and gold.
    Gold,
    /// Warm dusk.
    Sunset,
    /// Cool, soft dawn.
    Sunrise,
    /// Moonlit blue night.
    Night,
    /// Warm orange and red.
    Autumn,
    /// Snow and ice.
    Winter,
    /// Fresh greens and blossoms.
    Spring,
    /// Sand and heat.
    Desert,
    /// Sea blues.
    Ocean,
    /// Woodland greens.
    Forest,
}

/// Trigger words (singular forms) for each theme, in priority order.
pub const THEMES: &[(Theme, &[&str])] = &[
    (Theme::Noir, &["monochrome", "noir", "grayscale", "greyscale", "monochromatic", "bw"]),
    (Theme::Pastel, &["pastel", "soft", "kawaii"]),
    (Theme::Neon, &["neon", "cyberpunk", "synthwave", "vaporwave", "retrowave", "outrun"]),
    (Theme::Space, &["space", "galaxy", "galaxie", "nebula", "cosmic", "cosmos", "universe", "planet"]),
    (Theme::Fire, &["fire", "lava", "volcano", "inferno", "flame", "magma", "hell", "ember"]),
    (Theme::Gold, &["gold", "golden", "gilded"]),
    (Theme::Sunset, &["sunset", "dusk", "evening", "twilight"]),
    (Theme::Sunrise, &["sunrise", "dawn", "morning", "daybreak"]),
    (Theme::Night, &["night", "midnight", "moonlit", "moonlight", "nocturnal", "starry", "dark"]),
    (Theme::Autumn, &["autumn", "fall", "autumnal", "harvest", "october"]),
    (Theme::Winter, &["snow", "snowy", "ice", "icy", "winter", "frozen", "arctic", "glacier", "frost"]),
    (Theme::Spring, &["spring", "flower", "blossom", "bloom", "garden", "meadow", "floral", "cherry"]),
    (Theme::Desert, &["desert", "dune", "sand", "sandy", "sahara", "canyon", "arid"]),
    (Theme::Ocean, &["ocean", "sea", "water", "beach", "coast", "wave", "lake", "underwater", "tropical"]),
    (Theme::Forest, &["forest", "jungle", "wood", "tree", "pine", "rainforest", "woodland"]),
];

/// Plain colour words and their hues (degrees); saturation and lightness hints for the few
/// that are not simply a hue.
pub const COLOURS: &[(&str, f32, f32, f32)] = &[
    ("red", 356.0, 0.75, 0.5),
    ("crimson", 348.0, 0.8, 0.42),
    ("scarlet", 5.0, 0.85, 0.5),
    ("orange", 28.0, 0.9, 0.55),
    ("amber", 40.0, 0.9, 0.5),
    ("yellow", 50.0, 0.9, 0.55),
    ("lime", 85.0, 0.7, 0.5),
    ("green", 135.0, 0.55, 0.4),
    ("emerald", 150.0, 0.65, 0.4),
    ("mint", 155.0, 0.55, 0.72),
    ("teal", 178.0, 0.7, 0.35),
    ("turquoise", 174.0, 0.7, 0.5),
    ("cyan", 188.0, 0.85, 0.5),
    ("aqua", 185.0, 0.8, 0.55),
    ("blue", 218.0, 0.75, 0.5),
    ("navy", 225.0, 0.7, 0.25),
    ("azure", 205.0, 0.8, 0.55),
    ("indigo", 250.0, 0.6, 0.38),
    ("purple", 275.0, 0.6, 0.45),
    ("violet", 265.0, 0.65, 0.55),
    ("lavender", 265.0, 0.6, 0.78),
    ("magenta", 310.0, 0.8, 0.5),
    ("pink", 335.0, 0.85, 0.72),
    ("rose", 345.0, 0.7, 0.6),
    ("coral", 10.0, 0.85, 0.65),
    ("brown", 28.0, 0.45, 0.3),
];

/// How far (degrees) around an unwanted colour's hue the palette is cleared.
const AVOID_WINDOW: f32 = 28.0;

impl Theme {
    /// The first theme (by priority) wanted in `words`.
    pub fn detect(words: &Words) -> Option<Theme> {
        THEMES.iter().find(|(_, keys)| words.has(keys)).map(|&(theme, _)| theme)
    }

    /// True when `words` want this theme.
    pub fn wanted(self, words: &Words) -> bool {
        THEMES.iter().any(|&(t, keys)| t == self && words.has(keys))
    }

    /// The hand-made palette of this theme.
    pub fn palette(self) -> Palette {
        let p = |sky: [u32; 4], sun, glow, far, near, haze, water, acc: [u32; 4], light, darkness| Palette {
            sky: sky.map(hex),
            sun: hex(sun),
            glow: hex(glow),
            land_far: hex(far),
            land_near: hex(near),
            haze: hex(haze),
            water: hex(water),
            accents: acc.map(hex),
            light: hex(light),
            darkness,
        };
        match self {
            Theme::Noir => p(
                [0x0b0b0b, 0x262626, 0x5a5a5a, 0xb4b4b4],
                0xf2f2f2,
                0xd0d0d0,
                0x4a4a4a,
                0x050505,
                0x8c8c8c,
                0x1a1a1a,
                [0xe6e6e6, 0x9a9a9a, 0x4d4d4d, 0x1c1c1c],
                0xffffff,
                0.6,
            ),
            Theme::Pastel => p(
                [0xa9c6f5, 0xcdb4f0, 0xffc8dd, 0xffe5d9],
                0xfff8f0,
                0xffd6e0,
                0xb8c0ff,
                0x8e94d9,
                0xf7d9f0,
                0x9fc7f2,
                [0xffafcc, 0xa2d2ff, 0xcdb4db, 0xbde0fe],
                0xffffff,
                0.05,
            ),
            Theme::Neon => p(
                [0x0b0221, 0x2a0a4a, 0x7a1c7a, 0xff3d8b],
                0xffd319,
                0xff2975,
                0x3b1560,
                0x07020f,
                0xb0207a,
                0x12042a,
                [0xff2a6d, 0x05d9e8, 0xf9c80e, 0x8a2be2],
                0xd1f7ff,
                0.85,
            ),
            Theme::Space => p(
                [0x02020a, 0x07061f, 0x100b33, 0x1d1145],
                0xf4e9d8,
                0x6a4cff,
                0x1a1436,
                0x05040c,
                0x2a1d5c,
                0x0a0820,
                [0x7b2ff7, 0xf107a3, 0x00c2ff, 0xffb86b],
                0xffffff,
                1.0,
            ),
            Theme::Fire => p(
                [0x120303, 0x3d0905, 0x8f1d08, 0xff6a1f],
                0xfff0b0,
                0xff7b2e,
                0x4a1208,
                0x0a0202,
                0xc2360f,
                0x200604,
                [0xffb000, 0xff5a1f, 0xd11f0a, 0xfff1a8],
                0xffd27a,
                0.75,
            ),
            Theme::Gold => p(
                [0x140e04, 0x4a3410, 0xb8862b, 0xf6d98a],
                0xfff6d0,
                0xffcf5c,
                0x6b4a17,
                0x120b02,
                0xc99a3f,
                0x2a1c08,
                [0xd4af37, 0xf9e29c, 0x8a6a1f, 0x3b2a0c],
                0xfff3c4,
                0.55,
            ),
            Theme::Sunset => p(
                [0x24164a, 0x7a2d6b, 0xe4584a, 0xffb56b],
                0xfff1c9,
                0xff8e4f,
                0x83406f,
                0x1b1030,
                0xe0708a,
                0x341f4e,
                [0xff6b6b, 0xffb36b, 0xc0397a, 0x3b1f5c],
                0xfff0d8,
                0.45,
            ),
            Theme::Sunrise => p(
                [0x34508f, 0x8f86c2, 0xf2a7a0, 0xffe0a8],
                0xfffbe6,
                0xffd49a,
                0x8d89b8,
                0x2a2f52,
                0xf1c6c0,
                0x55679e,
                [0xf4a261, 0xe9c46a, 0x9d8ec7, 0x2a9d8f],
                0xfffbe6,
                0.2,
            ),
            Theme::Night => p(
                [0x03061a, 0x0a1438, 0x1a2b5e, 0x3a4d85],
                0xf2efdc,
                0x7f8fcc,
                0x1d2650,
                0x04060f,
                0x2f3d70,
                0x08102e,
                [0x4cc9f0, 0xffd166, 0x7b6cf6, 0xe0e7ff],
                0xfff7d6,
                0.9,
            ),
            Theme::Autumn => p(
                [0x5d86ad, 0x9fb8cc, 0xf0d2a8, 0xf7c27e],
                0xfff4d6,
                0xffc27a,
                0xb0703f,
                0x3d1a10,
                0xf0c9a0,
                0x4f6a80,
                [0xd9480f, 0xf08c00, 0xb02a2a, 0xe8b923],
                0xfff1c1,
                0.15,
            ),
            Theme::Winter => p(
                [0x7d9cc4, 0xb3c7e0, 0xdde7f2, 0xf4f7fb],
                0xffffff,
                0xe6f0ff,
                0xa7b9d1,
                0x34475f,
                0xe3ebf5,
                0x6f90b8,
                [0x4a7fb5, 0xa9d6f5, 0x2f4a6b, 0xd95d80],
                0xffffff,
                0.1,
            ),
            Theme::Spring => p(
                [0x7fc3ea, 0xb5e0f3, 0xe3f4ef, 0xfdf5e2],
                0xfffdf0,
                0xfff1c2,
                0x9cc9a0,
                0x2f6b3a,
                0xe4f2df,
                0x5aa0c8,
                [0xff7aa2, 0xffd23f, 0xc77dff, 0xffffff],
                0xffffff,
                0.05,
            ),
            Theme::Desert => p(
                [0x4f93c6, 0x9cc7df, 0xf1dcb9, 0xf7c88d],
                0xfffaf0,
                0xffe2a8,
                0xd39a63,
                0x8a4529,
                0xf2c894,
                0x3f7fa8,
                [0xe07a3f, 0xf2b880, 0xa04b2a, 0x2a9d8f],
                0xfff6e0,
                0.1,
            ),
            Theme::Ocean => p(
                [0x1b6aa5, 0x4aa3d6, 0x9fd6ec, 0xe3f6f7],
                0xffffff,
                0xfff6d8,
                0x5e8fa8,
                0x16384d,
                0xcfe8ee,
                0x0b5c85,
                [0x0e7fa8, 0x38c6d9, 0xf2e3c4, 0xff8c61],
                0xffffff,
                0.1,
            ),
            Theme::Forest => p(
                [0x6f9fb0, 0xa7c8bc, 0xdbe8c8, 0xf0efcf],
                0xfffbe8,
                0xfff2c0,
                0x6e967c,
                0x102a1b,
                0xcfe0c0,
                0x3a6b5e,
                [0x2d6a4f, 0x74c69d, 0xf4d35e, 0xe76f51],
                0xfffbe8,
                0.15,
            ),
        }
    }
}

/// Time of day for palettes built from hues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mood {
    Day,
    Dusk,
    Night,
}

/// A palette around hue `h1` (and a partner hue `h2`) for the given mood.
fn from_hues(h1: f32, h2: f32, sat: f32, mood: Mood) -> Palette {
    let c = |h: f32, s: f32, l: f32| from_hsl(h, s * sat, l);
    let hm = h1 + hue_delta(h2, h1) * 0.5;
    let (sky, land_far, land_near, water, sun, glow, darkness) = match mood {
        Mood::Day => (
            [c(h1, 0.55, 0.42), c(h1, 0.5, 0.6), c(hm, 0.45, 0.76), c(h2, 0.6, 0.87)],
            c(h1, 0.22, 0.62),
            c(h1, 0.35, 0.17),
            c(h1, 0.55, 0.32),
            from_hsl(h2, 0.6, 0.95),
            c(h2, 0.8, 0.82),
            0.1,
        ),
        Mood::Dusk => (
            [c(h1, 0.5, 0.13), c(hm, 0.5, 0.33), c(h2, 0.65, 0.55), c(h2 + 15.0, 0.8, 0.74)],
            c(hm, 0.3, 0.36),
            c(h1, 0.45, 0.07),
            c(h1, 0.45, 0.18),
            from_hsl(h2 + 20.0, 0.9, 0.9),
            c(h2, 0.85, 0.65),
            0.5,
        ),
        Mood::Night => (
            [c(h1, 0.6, 0.035), c(h1, 0.55, 0.09), c(hm, 0.45, 0.19), c(h2, 0.45, 0.33)],
            c(h1, 0.3, 0.15),
            c(h1, 0.4, 0.03),
            c(h1, 0.5, 0.07),
            from_hsl(h2, 0.3, 0.92),
            c(h2, 0.6, 0.5),
            0.9,
        ),
    };
    Palette {
        sky,
        sun,
        glow,
        land_far,
        land_near,
        haze: mix(sky[3], land_far, 0.35),
        water,
        accents: [c(h1, 0.75, 0.55), c(h2, 0.8, 0.6), c(h1 + 180.0, 0.6, 0.55), c(h2, 0.5, 0.85)],
        light: from_hsl(h2, 0.5, 0.92),
        darkness,
    }
}

impl Palette {
    /// The palette for a request: a theme's palette (tinted by any colour words), a palette
    /// built around the colour words, or one derived from the prompt's hash. Colours the
    /// request refuses are then rotated out. `rng` adds a small per-seed hue jitter.
    pub fn choose(words: &Words, prompt: &str, rng: &mut Rng) -> Palette {
        let colours: Vec<(f32, f32, f32)> =
            COLOURS.iter().filter(|(name, ..)| words.has(&[name])).map(|&(_, h, s, l)| (h, s, l)).take(2).collect();
        let theme = Theme::detect(words);
        let hash = hash_str(&prompt.to_lowercase());
        let mut palette = match (theme, colours.first()) {
            (Some(theme), _) => {
                let mut p = theme.palette();
                for (i, &(h, s, l)) in colours.iter().enumerate() {
                    p.tint(h, 0.45 - 0.15 * i as f32);
                    p.accents[i] = from_hsl(h, s, l);
                }
                p
            }
            (None, Some(&(h1, s1, _))) => {
                let h2 = colours.get(1).map_or(h1 + 35.0, |c| c.0);
                from_hues(h1, h2, s1.max(0.5) + 0.2, mood(words, hash))
            }
            (None, None) => {
                let h1 = (hash % 360) as f32;
                let offsets = [35.0, -40.0, 150.0, 180.0, 120.0, 60.0];
                let h2 = h1 + offsets[((hash >> 16) % offsets.len() as u64) as usize];
                let sat = 0.55 + ((hash >> 24) % 30) as f32 / 100.0;
                from_hues(h1, h2, sat, mood(words, hash))
            }
        };
        palette.jitter(rng.range(-7.0, 7.0));
        for &(name, h, ..) in COLOURS {
            if words.refuses(&[name]) {
                palette.avoid(h);
            }
        }
        if words.refuses(&["black", "dark"]) {
            palette.for_each(|c| {
                let (h, s, l) = to_hsl(*c);
                *c = from_hsl(h, s, l.max(0.22));
            });
            palette.darkness = palette.darkness.min(0.4);
        }
        if words.refuses(&["white", "bright"]) {
            palette.for_each(|c| {
                let (h, s, l) = to_hsl(*c);
                *c = from_hsl(h, s, l.min(0.8));
            });
        }
        palette
    }

    /// Apply `f` to every colour of the palette.
    pub fn for_each(&mut self, mut f: impl FnMut(&mut Rgb)) {
        for c in self.sky.iter_mut().chain(self.accents.iter_mut()) {
            f(c);
        }
        for c in [
            &mut self.sun,
            &mut self.glow,
            &mut self.land_far,
            &mut self.land_near,
            &mut self.haze,
            &mut self.water,
            &mut self.light,
        ] {
            f(c);
        }
    }

    /// Pull every colour's hue toward `hue` by `amount` (0..1), keeping lightness.
    fn tint(&mut self, hue: f32, amount: f32) {
        self.for_each(|c| {
            let (h, s, l) = to_hsl(*c);
            let target = from_hsl(h + hue_delta(hue, h) * 0.8, s.max(0.45), l);
            *c = mix(*c, target, amount);
        });
    }

    /// Rotate every hue by `degrees`.
    fn jitter(&mut self, degrees: f32) {
        self.for_each(|c| {
            let (h, s, l) = to_hsl(*c);
            if s > 0.02 {
                *c = from_hsl(h + degrees, s, l);
            }
        });
    }

    /// Move every noticeably saturated colour out of the hue window around `hue`, toward the
    /// side where the rest of the palette already lies.
    pub fn avoid(&mut self, hue: f32) {
        let mut side = 0.0;
        self.for_each(|c| {
            let (h, s, _) = to_hsl(*c);
            let d = hue_delta(h, hue);
            if s > 0.12 && d.abs() >= AVOID_WINDOW {
                side += d.signum() * s;
            }
        });
        let side = if side < 0.0 { -1.0 } else { 1.0 };
        self.for_each(|c| {
            let (h, s, l) = to_hsl(*c);
            let d = hue_delta(h, hue);
            if s > 0.12 && d.abs() < AVOID_WINDOW {
                *c = from_hsl(hue + side * (AVOID_WINDOW + 18.0) + d * 0.3, s * 0.9, l);
            }
        });
    }
}

/// Day, dusk or night for hue-built palettes: from words, else from the prompt hash.
fn mood(words: &Words, hash: u64) -> Mood {
    if words.has(&["night", "dark", "midnight", "star", "moon"]) {
        Mood::Night
    } else if words.has(&["dusk", "evening", "sunset", "moody", "dramatic"]) {
        Mood::Dusk
    } else if words.has(&["day", "bright", "light", "sunny", "noon"]) {
        Mood::Day
    } else {
        [Mood::Day, Mood::Dusk, Mood::Day, Mood::Night, Mood::Dusk][((hash >> 40) % 5) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn palette(prompt: &str, negative: Option<&str>) -> Palette {
        Palette::choose(&Words::parse(prompt, negative, None), prompt, &mut Rng::new(1))
    }

    #[test]
    fn themes_come_from_words() {
        let w = Words::parse("neon city at night", None, None);
        assert_eq!(Theme::detect(&w), Some(Theme::Neon));
        let w = Words::parse("forest in autumn", None, None);
        assert_eq!(Theme::detect(&w), Some(Theme::Autumn));
        let w = Words::parse("a quiet field", None, None);
        assert_eq!(Theme::detect(&w), None);
    }

    #[test]
    fn negative_colour_clears_its_hue() {
        let plain = palette("sunset", None);
        let no_orange = palette("sunset", Some("orange"));
        assert_ne!(plain, no_orange);
        let orange_ish = |p: &Palette| {
            let mut n = 0;
            let mut p = p.clone();
            p.for_each(|c| {
                let (h, s, _) = to_hsl(*c);
                if s > 0.12 && hue_delta(h, 28.0).abs() < AVOID_WINDOW {
                    n += 1;
                }
            });
            n
        };
        assert!(orange_ish(&plain) >= 3);
        assert_eq!(orange_ish(&no_orange), 0);
    }

    #[test]
    fn colour_words_steer_hash_palettes() {
        let (h, _, _) = to_hsl(palette("a red thing", None).accents[0]);
        assert!(hue_delta(h, 356.0).abs() < 12.0, "{h}");
        let (h, _, _) = to_hsl(palette("a teal thing", None).accents[0]);
        assert!(hue_delta(h, 178.0).abs() < 12.0, "{h}");
    }
}
