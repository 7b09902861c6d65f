//! Landscapes: a sky (gradient, glow, nebula, stars, aurora, sun/moon/planet, clouds), layered
//! silhouettes far to near with mist between them, an optional floor (water, neon grid, lava)
//! and foreground particles (snow, embers, leaves, flowers, fireflies).

use std::cell::RefCell;

use super::Scene;
use super::canvas::{Finish, Layer};
use super::color::{Rgb, WHITE, clamp01, mix, scale, smoothstep};
use super::layers::{
    Aurora, Blend, Body, Celestial, Clouds, Dot, Dots, Glow, Halo, Lava, Nebula, NeonGrid, Sky, Water, darkness_gain,
    gradient,
};
use super::noise::{Field, Rng, fbm1, fbm2, value1};
use super::palette::{THEMES, Theme};
use super::shapes::{Sdf, Shape, Shapes};
use super::terrain::{self, Ridge, Windows};

const CITY: &[&str] = &[
    "city",
    "cities",
    "skyline",
    "town",
    "building",
    "skyscraper",
    "metropoli",
    "downtown",
    "urban",
    "street",
    "tower",
];
const OCEAN: &[&str] = &[
    "ocean", "sea", "water", "beach", "coast", "lake", "wave", "shore", "bay", "harbor", "harbour", "river", "island",
    "seascape", "tropical",
];
const MOUNTAIN: &[&str] =
    &["mountain", "peak", "alp", "alpine", "summit", "himalaya", "cliff", "range", "ridge", "mount"];
const VOLCANO: &[&str] = &["volcano", "volcanic", "eruption", "erupting", "crater"];
const SHORE: &[&str] = &["lake", "river", "bay", "fjord", "harbor", "harbour", "island", "shore", "coast", "lagoon"];
const HILL: &[&str] =
    &["hill", "valley", "countryside", "field", "farm", "prairie", "meadow", "landscape", "grassland"];
const FOREST: &[&str] = &["forest", "jungle", "wood", "tree", "pine", "woodland", "rainforest", "grove", "taiga"];
const DESERT: &[&str] = &["desert", "dune", "sand", "sahara", "arid"];
const SUN: &[&str] = &["sun", "sunny", "sunshine", "sunlight", "sunset", "sunrise", "dawn"];
const MOON: &[&str] = &["moon", "lunar", "moonlight", "moonlit", "crescent"];
const STARS: &[&str] = &["star", "starry", "starlight", "constellation"];
const CLOUDS: &[&str] = &["cloud", "cloudy", "overcast", "storm", "fog"];
const AURORA: &[&str] = &["aurora", "borealis", "northern", "polar"];
const GALAXY: &[&str] = &["galaxy", "galaxie", "nebula", "milky", "cosmos", "cosmic"];
const PLANET: &[&str] = &["planet", "saturn", "jupiter", "moons"];
const SNOWFALL: &[&str] = &["snow", "snowfall", "snowing", "blizzard", "snowflake", "snowy"];
const SNOWCAP: &[&str] = &["snow", "snowy", "alp", "alpine", "glacier", "winter", "ice", "icy", "frozen", "himalaya"];
const EMBERS: &[&str] = &["ember", "spark", "fire", "flame", "volcano", "lava"];
const LEAVES: &[&str] = &["leaf", "leave", "foliage"];
const FLOWERS: &[&str] =
    &["flower", "blossom", "bloom", "garden", "meadow", "floral", "tulip", "rose", "poppy", "daisy", "wildflower"];
const FIREFLIES: &[&str] = &["firefly", "fireflie", "magical", "enchanted", "fairy"];

/// What a silhouette layer is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mountain,
    Volcano,
    Hill,
    Dune,
    City,
    Conifer,
    Canopy,
}

/// What covers the ground below the horizon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Floor {
    Land,
    Water,
    Grid,
    Lava,
    Sky,
}

/// Where the sun or moon sits.
#[derive(Clone, Copy, Debug)]
struct Light {
    x: f32,
    y: f32,
    r: f32,
}

/// What a landscape contains, decided from the words and the seed before anything is drawn.
struct Plan {
    /// Silhouette layers, far to near.
    kinds: Vec<Kind>,
    floor: Floor,
    horizon: f32,
    night: bool,
    space: bool,
    volcano: bool,
    forest: bool,
    flowers: bool,
    /// Every theme the words ask for (the palette follows only the first).
    themes: Vec<Theme>,
}

impl Plan {
    fn themed(&self, theme: Theme) -> bool {
        self.themes.contains(&theme)
    }

    fn flat_floor(&self) -> bool {
        matches!(self.floor, Floor::Water | Floor::Grid | Floor::Lava)
    }
}

/// The sky's colours and lights, which the terrain and water below reflect.
struct SkyInfo {
    lut: Vec<Rgb>,
    sun: Option<Light>,
    moon: Option<Light>,
}

/// Build the layers of a landscape for `scene`.
pub fn build(scene: &Scene) -> (Vec<Box<dyn Layer>>, Finish) {
    let mut rng = scene.rng.derive("layout");
    let plan = plan(scene, &mut rng);
    let mut layers: Vec<Box<dyn Layer>> = Vec::new();
    let sky = sky(scene, &plan, &mut rng, &mut layers);
    let nearest = terrain(scene, &plan, &sky, &mut rng, &mut layers);
    floor(scene, &plan, &sky, &mut rng, &mut layers);
    particles(scene, &plan, nearest.as_ref(), &mut rng, &mut layers);
    let finish = Finish {
        vignette: if plan.night { 0.45 } else { 0.3 },
        grain: if plan.themed(Theme::Noir) { 0.09 } else { 0.03 },
        dither: true,
        seed: scene.seed,
    };
    (layers, finish)
}

/// Decide what the picture contains.
fn plan(scene: &Scene, rng: &mut Rng) -> Plan {
    let hf = scene.height as f32;
    let words = scene.words;
    let themes: Vec<Theme> =
        scene.theme.into_iter().chain(THEMES.iter().map(|&(t, _)| t).filter(|t| t.wanted(words))).collect();
    let themed = |t: Theme| themes.contains(&t);
    let refuse = |k: &[&str]| words.refuses(k);
    let night = scene.palette.darkness >= 0.6;
    let space = themed(Theme::Space);
    let mut kinds: Vec<Kind> = Vec::new();
    let mut mountains = words.has(MOUNTAIN);
    let mut volcano = words.has(VOLCANO);
    let mut hills = words.has(HILL);
    let mut forest = words.has(FOREST);
    let mut desert = words.has(DESERT);
    let mut city = words.has(CITY);
    let mut ocean = words.has(OCEAN);
    if !(mountains || volcano || hills || forest || desert || city || ocean) {
        match scene.theme {
            Some(Theme::Neon) => city = true,
            Some(Theme::Fire) => volcano = true,
            Some(Theme::Desert) => desert = true,
            Some(Theme::Winter) => mountains = true,
            Some(Theme::Autumn | Theme::Spring) => {
                hills = true;
                forest = rng.chance(0.7);
            }
            Some(Theme::Forest) => forest = true,
            Some(Theme::Ocean) => ocean = true,
            Some(Theme::Space) => mountains = rng.chance(0.35),
            _ => match rng.below(5) {
                0 => ocean = true,
                1 => mountains = true,
                2 => {
                    hills = true;
                    forest = true;
                }
                3 => {
                    mountains = true;
                    forest = true;
                }
                _ => {
                    mountains = true;
                    ocean = true;
                }
            },
        }
    }
    mountains &= !refuse(MOUNTAIN);
    volcano &= !refuse(VOLCANO);
    if ocean && !(mountains || volcano || hills || forest || desert || city) {
        // A far shore for lakes and rivers, sometimes islands on the open sea.
        if words.has(SHORE) || rng.chance(0.35) {
            if rng.chance(0.5) { mountains = true } else { hills = true }
        }
    }
    hills &= !refuse(HILL);
    forest &= !refuse(FOREST);
    desert &= !refuse(DESERT);
    city &= !refuse(CITY);
    ocean &= !refuse(OCEAN);
    let floor = if ocean {
        Floor::Water
    } else if themed(Theme::Neon) && (city || !(mountains || volcano || hills || forest || desert)) {
        Floor::Grid
    } else if themed(Theme::Fire) && (words.has(&["lava", "magma"]) || rng.chance(0.4)) {
        Floor::Lava
    } else if space && !(mountains || volcano || hills || forest || desert || city) {
        Floor::Sky
    } else {
        Floor::Land
    };
    let flat_floor = matches!(floor, Floor::Water | Floor::Grid | Floor::Lava);
    if mountains {
        let n = if flat_floor {
            1 + rng.below(2)
        } else if hills || forest || city || desert {
            2
        } else {
            3 + rng.below(2)
        };
        kinds.extend(std::iter::repeat_n(Kind::Mountain, n));
    }
    if volcano {
        kinds.push(Kind::Volcano);
        if !flat_floor {
            kinds.push(Kind::Hill);
        }
    }
    if desert {
        kinds.extend(std::iter::repeat_n(Kind::Dune, if flat_floor { 1 } else { 3 }));
    }
    if hills {
        let count = if flat_floor || forest { 1 } else { 2 + rng.below(2) };
        kinds.extend(std::iter::repeat_n(Kind::Hill, count));
    }
    if city {
        kinds.extend(std::iter::repeat_n(Kind::City, if flat_floor { 2 } else { 3 }));
    }
    if forest {
        let round = themed(Theme::Autumn)
            || themed(Theme::Spring)
            || words.has(&["jungle", "rainforest", "oak", "maple", "tropical"])
            || (!words.has(&["pine", "taiga", "conifer", "fir", "spruce"]) && rng.chance(0.35));
        let kind = if round { Kind::Canopy } else { Kind::Conifer };
        kinds.extend(std::iter::repeat_n(kind, if flat_floor { 1 } else { 2 + rng.below(2) }));
    }
    let flowers = !refuse(FLOWERS) && (words.has(FLOWERS) || themed(Theme::Spring));
    if flowers && !flat_floor && kinds.last() != Some(&Kind::Hill) {
        kinds.push(Kind::Hill);
    }
    kinds.truncate(7);

    let horizon = match floor {
        Floor::Sky => hf,
        Floor::Water | Floor::Grid | Floor::Lava => hf * rng.range(0.5, 0.64),
        Floor::Land if kinds.iter().all(|k| matches!(k, Kind::Mountain | Kind::Volcano)) => hf * rng.range(0.5, 0.62),
        Floor::Land => hf * rng.range(0.42, 0.56),
    };

    Plan { kinds, floor, horizon, night, space, volcano, forest, flowers, themes }
}

/// Sky layers: gradient and glow, nebula, stars, aurora, sun, moon, planet and clouds.
fn sky(scene: &Scene, plan: &Plan, rng: &mut Rng, layers: &mut Vec<Box<dyn Layer>>) -> SkyInfo {
    let (w, h, unit) = (scene.width, scene.height, scene.unit);
    let (wf, hf) = (w as f32, h as f32);
    let (words, pal) = (scene.words, scene.palette);
    let refuse = |k: &[&str]| words.refuses(k);
    let themed = |t: Theme| plan.themed(t);
    let Plan { horizon, night, space, volcano, .. } = *plan;
    let lut = gradient(
        h,
        &[(0.0, pal.sky[0]), (horizon * 0.45, pal.sky[1]), (horizon * 0.82, pal.sky[2]), (horizon, pal.sky[3])],
    );
    let low_sun = themed(Theme::Sunset) || themed(Theme::Sunrise) || themed(Theme::Neon);
    let sun_wanted =
        !refuse(SUN) && (words.has(SUN) || low_sun || themed(Theme::Desert) || (!night && !space && rng.chance(0.5)));
    let moon_wanted = !refuse(MOON) && !sun_wanted && (words.has(MOON) || (night && !space && rng.chance(0.85)));
    let min_side = wf.min(hf);
    let sky_h = horizon.min(hf);
    let sun = sun_wanted.then(|| {
        let r = (unit * rng.range(0.06, 0.095)).min(min_side * 0.3).max(3.0);
        let x = if volcano {
            wf * if rng.chance(0.5) { rng.range(0.1, 0.24) } else { rng.range(0.76, 0.9) }
        } else {
            wf * rng.range(0.22, 0.78)
        };
        let y = if low_sun || themed(Theme::Fire) {
            horizon - r * rng.range(0.1, 1.5)
        } else {
            sky_h * rng.range(0.25, 0.6)
        };
        Light { x, y, r }
    });
    let moon = moon_wanted.then(|| {
        let r = (unit * rng.range(0.035, 0.065)).min(min_side * 0.25).max(3.0);
        // Keep clear of a volcano's crater in the middle.
        let x = if volcano {
            wf * if rng.chance(0.5) { rng.range(0.08, 0.24) } else { rng.range(0.76, 0.92) }
        } else {
            wf * rng.range(0.15, 0.85)
        };
        Light { x, y: sky_h * rng.range(0.15, 0.45), r }
    });
    let glow = match (sun, moon) {
        (Some(s), _) => Some(Glow {
            cx: s.x,
            cy: s.y,
            radius: s.r * 2.0,
            squash: 1.5,
            colour: pal.glow,
            strength: 0.3 + 0.25 * pal.darkness.min(0.6),
        }),
        (None, Some(m)) => {
            Some(Glow { cx: m.x, cy: m.y, radius: m.r * 2.0, squash: 1.0, colour: pal.glow, strength: 0.22 })
        }
        (None, None) if !space => Some(Glow {
            cx: wf * rng.range(0.3, 0.7),
            cy: horizon,
            radius: unit * 0.18,
            squash: 2.5,
            colour: pal.glow,
            strength: 0.25 * (1.0 - pal.darkness * 0.5),
        }),
        _ => None,
    };
    layers.push(Box::new(Sky::new(w, lut.clone(), glow)));

    let cell = field_cell(unit);
    let galaxy = !refuse(GALAXY) && (space || words.has(GALAXY) || (night && !refuse(STARS) && rng.chance(0.35)));
    if galaxy {
        layers.push(Box::new(nebula(scene, &mut rng.derive("nebula"), horizon, cell, space)));
    }
    let stars = !refuse(STARS) && (night || space || words.has(STARS));
    if stars {
        layers.push(Box::new(star_field(scene, &mut rng.derive("stars"), horizon, &lut)));
    }
    let aurora = !refuse(AURORA) && (words.has(AURORA) || (night && themed(Theme::Winter) && rng.chance(0.5)));
    if aurora {
        layers.push(Box::new(aurora_layer(scene, &mut rng.derive("aurora"), horizon)));
    }
    if let Some(s) = sun {
        let neon = themed(Theme::Neon);
        let (a, b) = if neon { (pal.sun, pal.accents[0]) } else { (pal.sun, mix(pal.sun, pal.glow, 0.55)) };
        layers.push(Box::new(Celestial { cx: s.x, cy: s.y, r: s.r, a, b, body: Body::Sun { stripes: neon } }));
    }
    if let Some(m) = moon {
        let mut mr = rng.derive("moon");
        let phase = if mr.chance(0.5) { 0.0 } else { mr.range(0.3, 0.65) * if mr.chance(0.5) { 1.0 } else { -1.0 } };
        layers.push(Box::new(Celestial {
            cx: m.x,
            cy: m.y,
            r: m.r,
            a: mix(pal.sun, WHITE, 0.3),
            b: mix(pal.sun, pal.sky[2], 0.45),
            body: Body::Moon { phase, seed: mr.next_u32() },
        }));
    }
    if !refuse(PLANET) && (words.has(PLANET) || (space && rng.chance(0.7))) {
        let mut pr = rng.derive("planet");
        let r = (unit * pr.range(0.08, 0.16)).min(min_side * 0.3);
        layers.push(Box::new(Celestial {
            cx: wf * pr.range(0.2, 0.8),
            cy: sky_h * pr.range(0.25, 0.6),
            r,
            a: pal.accents[2],
            b: pal.accents[3],
            body: Body::Planet { ring: pr.chance(0.6), seed: pr.next_u32() },
        }));
    }
    let cloud_odds = match scene.theme {
        Some(Theme::Sunset | Theme::Sunrise) => 0.75,
        Some(Theme::Space | Theme::Neon) => 0.0,
        _ if night => 0.3,
        _ => 0.55,
    };
    if !refuse(CLOUDS) && !space && (words.has(CLOUDS) || rng.chance(cloud_odds)) {
        let amount = if words.has(&["storm", "overcast", "cloudy"]) { 1.0 } else { rng.range(0.2, 0.7) };
        layers.push(Box::new(clouds(scene, &mut rng.derive("clouds"), horizon, cell, amount, sun.or(moon))));
    }

    SkyInfo { lut, sun, moon }
}

/// Silhouette layers far to near (with lava flows on a volcano); returns the nearest.
fn terrain(
    scene: &Scene,
    plan: &Plan,
    sky: &SkyInfo,
    rng: &mut Rng,
    layers: &mut Vec<Box<dyn Layer>>,
) -> Option<Ridge> {
    let (w, h, unit) = (scene.width, scene.height, scene.unit);
    let (wf, hf) = (w as f32, h as f32);
    let (words, pal) = (scene.words, scene.palette);
    let refuse = |k: &[&str]| words.refuses(k);
    let themed = |t: Theme| plan.themed(t);
    let (horizon, night, flat_floor) = (plan.horizon, plan.night, plan.flat_floor());
    let kinds = &plan.kinds;
    let light_dir = match sky.sun.or(sky.moon) {
        Some(l) if l.x < wf * 0.5 => -1.0,
        Some(_) => 1.0,
        None if rng.chance(0.5) => -1.0,
        None => 1.0,
    };
    let n = kinds.len();
    let floor_y = hf - horizon;
    let mut nearest: Option<Ridge> = None;
    for (i, &kind) in kinds.iter().enumerate() {
        let t = if n > 1 { i as f32 / (n - 1) as f32 } else { 0.5 };
        let mut lr = rng.derive(&format!("ridge{i}"));
        let depth_t = if flat_floor { 0.15 * t } else { t };
        let colour = mix(pal.land_far, pal.land_near, depth_t.sqrt().min(1.0));
        let reach = if matches!(kind, Kind::Conifer | Kind::Canopy) { 0.8 } else { 0.55 };
        let ground = if flat_floor { horizon + 1.0 } else { horizon + floor_y * (0.03 + reach * t) };
        let far_scale = if flat_floor { 0.45 } else { 1.0 };
        let top: Vec<f32>;
        let mut crater = None;
        let mut ridge_windows = None;
        let mut body = None;
        match kind {
            Kind::Mountain => {
                let amp = (unit * 0.36 * (1.0 - 0.4 * t) * far_scale).min(horizon * 0.8);
                top = terrain::mountains(w, ground + amp * 0.25, amp, unit, &mut lr);
            }
            Kind::Volcano => {
                let amp = (unit * 0.42).min(horizon * 0.85);
                let cx = wf * lr.range(0.3, 0.7);
                let (tp, rim_y) = terrain::volcano(w, ground + amp * 0.05, amp, cx, unit, &mut lr);
                crater = Some((cx, rim_y, amp));
                top = tp;
            }
            Kind::Hill => {
                let amp = unit * 0.14 * (0.6 + 0.6 * t) * far_scale;
                top = terrain::hills(w, ground + amp * 0.3, amp, unit, &mut lr);
            }
            Kind::Dune => {
                let amp = unit * 0.11 * (0.7 + 0.5 * t) * far_scale;
                top = terrain::dunes(w, ground + amp * 0.3, amp, unit, &mut lr);
            }
            Kind::City => {
                let max_h = (unit * 0.34 * (1.0 - 0.35 * t)).min(horizon * 0.85);
                let (tp, cols, ids) = terrain::skyline(w, ground, max_h, unit, 0.55 + 0.55 * t, &mut lr);
                top = tp;
                let lit = if themed(Theme::Neon) { 0.45 } else { (pal.darkness * 0.6).max(0.08) };
                let colours = if themed(Theme::Neon) {
                    [pal.accents[1], pal.accents[0]]
                } else if night || pal.darkness > 0.4 {
                    [pal.light, mix(pal.light, pal.glow, 0.6)]
                } else {
                    [mix(colour, pal.sky[1], 0.5), mix(colour, pal.sky[3], 0.35)]
                };
                let pitch = (unit * 0.016 * (0.55 + 0.55 * t)).max(3.0);
                ridge_windows = Some(Windows {
                    col: cols,
                    id: ids,
                    pitch,
                    size: (pitch * 0.5).max(1.0),
                    margin: pitch,
                    lit,
                    colours,
                });
            }
            Kind::Conifer | Kind::Canopy => {
                let ground_profile = terrain::hills(w, ground + unit * 0.02, unit * 0.05 * far_scale, unit, &mut lr);
                let tree_h = unit * (0.05 + 0.16 * t) * far_scale;
                if kind == Kind::Conifer {
                    top = terrain::conifers(&ground_profile, tree_h, &mut lr);
                } else {
                    top = terrain::canopy(&ground_profile, tree_h, &mut lr);
                    if themed(Theme::Autumn) {
                        body = Some(mix(pal.accents[i % 3], pal.land_near, 0.15 + 0.6 * t));
                    }
                }
            }
        }
        let colour = body.unwrap_or(colour);
        let mean_top = top.iter().sum::<f32>() / w as f32;
        let mist = if i + 1 == n && !flat_floor { 0.08 } else { 0.55 * (1.0 - 0.7 * t) };
        let rows = gradient(
            h,
            &[
                (mean_top, colour),
                (mean_top + (hf - mean_top) * 0.35 + 1.0, mix(colour, pal.haze, mist)),
                (hf, mix(colour, pal.haze, mist * 0.8)),
            ],
        );
        let sharp = kind == Kind::City;
        let mut ridge = Ridge::new(top, rows, sharp);
        match kind {
            Kind::Mountain => {
                let amp = (unit * 0.36 * (1.0 - 0.4 * t)).min(horizon * 0.8);
                ridge = ridge.shaded(light_dir, unit * 0.05, amp * 0.9, 2.5);
                let snowy = words.has(SNOWCAP)
                    || themed(Theme::Winter)
                    || (!night && rng.chance(0.25) && scene.theme.is_none());
                if snowy && !refuse(&["snow"]) {
                    let peak = ridge.top().iter().fold(f32::MAX, |m, &v| m.min(v));
                    let line = peak + (mean_top - peak) * lr.range(0.5, 0.9);
                    let bright = 1.0 - 0.6 * pal.darkness;
                    let lit = scale(mix(WHITE, pal.light, 0.3), bright);
                    let shadow = mix(lit, pal.sky[1], 0.45);
                    ridge = ridge.snow(line, unit * 0.012, lit, shadow, lr.next_u32(), unit);
                }
                if themed(Theme::Fire) {
                    ridge = ridge.rim(scale(pal.glow, 0.35), unit * 0.02);
                }
            }
            Kind::Volcano => {
                ridge = ridge.shaded(light_dir, unit * 0.04, unit * 0.3, 2.0);
            }
            Kind::Dune => ridge = ridge.shaded(light_dir, 1.0, unit * 0.25, 3.0),
            Kind::Hill => ridge = ridge.shaded(light_dir, unit * 0.02, unit * 0.08, 1.5),
            Kind::City if themed(Theme::Neon) => {
                ridge = ridge.rim(scale(pal.accents[(i + 1) % 2], 0.25), unit * 0.012);
            }
            _ => {}
        }
        if let Some(wins) = ridge_windows {
            ridge = ridge.windows(wins);
        }
        if i + 1 == n {
            nearest = Some(ridge.clone());
        }
        let surface = crater.map(|_| ridge.top().to_vec());
        layers.push(Box::new(ridge));
        if let (Some((cx, rim_y, amp)), Some(surface)) = (crater, surface) {
            lava_flows(scene, &mut lr, layers, &surface, cx, rim_y, amp);
        }
    }

    nearest
}

/// The ground below the horizon when it is not terrain: water, a neon grid or lava.
fn floor(scene: &Scene, plan: &Plan, sky: &SkyInfo, rng: &mut Rng, layers: &mut Vec<Box<dyn Layer>>) {
    let (w, h, unit) = (scene.width, scene.height, scene.unit);
    let (wf, hf) = (w as f32, h as f32);
    let pal = scene.palette;
    let horizon = plan.horizon;
    let (lut, sun, moon) = (&sky.lut, sky.sun, sky.moon);
    let cell = field_cell(unit);
    match plan.floor {
        Floor::Water => {
            let span = (hf - horizon).max(1.0);
            let rows = (0..h)
                .map(|y| {
                    let d = (y as f32 + 0.5 - horizon).max(0.0);
                    let mirror = ((horizon - d * 1.2).max(0.0) as usize).min(h - 1);
                    let t = d / span;
                    mix(lut[mirror], pal.water, 0.3 + 0.5 * t)
                })
                .collect();
            let path = match (sun, moon) {
                (Some(s), _) => Some((s.x, mix(pal.sun, pal.glow, 0.5), 0.9)),
                (None, Some(m)) => Some((m.x, pal.sun, 0.55)),
                _ => None,
            };
            let path_width = sun.or(moon).map_or(unit * 0.05, |l| l.r);
            layers.push(Box::new(Water {
                horizon,
                rows,
                path,
                path_width,
                cx: wf * 0.5,
                sparkle: pal.light,
                seed: rng.next_u32(),
            }));
        }
        Floor::Grid => layers.push(Box::new(NeonGrid {
            horizon,
            height: hf,
            cx: wf * 0.5,
            floor: (mix(pal.sky[2], pal.land_near, 0.6), pal.land_near),
            line: pal.accents[0],
            spacing: rng.range(3.0, 5.0),
        })),
        Floor::Lava => {
            let seed = rng.next_u32();
            let span = (hf - horizon).max(1.0);
            let cracks = Field::new(w, h, cell, |x, y| {
                let t = ((y - horizon) / span).max(0.02);
                let z = 1.0 / t;
                let n = fbm2((x - wf * 0.5) / span * z * 1.2, z * 2.0, 4, seed);
                (n - 0.5).abs() * 3.0
            });
            layers.push(Box::new(Lava {
                horizon,
                cracks,
                height: hf,
                crust: scale(pal.land_near, 1.4),
                hot: pal.accents[1],
                core: pal.accents[0],
                glow: pal.glow,
                scratch: RefCell::new(vec![0.0; w]),
            }));
        }
        Floor::Land | Floor::Sky => {}
    }
}

/// Foreground particles: flowers on the nearest meadow, fireflies, leaves, snow and embers.
fn particles(scene: &Scene, plan: &Plan, nearest: Option<&Ridge>, rng: &mut Rng, layers: &mut Vec<Box<dyn Layer>>) {
    let (w, h, unit) = (scene.width, scene.height, scene.unit);
    let (wf, hf) = (w as f32, h as f32);
    let (words, pal) = (scene.words, scene.palette);
    let refuse = |k: &[&str]| words.refuses(k);
    let themed = |t: Theme| plan.themed(t);
    let Plan { horizon, night, forest, flowers, .. } = *plan;
    let area = wf * hf;
    let px_scale = (unit / 1024.0).max(0.5);
    if flowers && let Some(near) = nearest {
        let mut fr = rng.derive("flowers");
        let mut dots = Vec::new();
        let count = (area / 450.0) as usize;
        for _ in 0..count {
            let x = fr.range(0.0, wf);
            let ground = near.top()[(x as usize).min(w - 1)];
            let y = fr.range(ground, hf);
            let depth = clamp01((y - ground) / (hf - ground).max(1.0));
            let r = px_scale * (1.2 + 7.0 * depth * depth) * fr.range(0.7, 1.3);
            if y - r < ground + 1.0 {
                continue;
            }
            let colour = pal.accents[fr.below(3)];
            dots.push(Dot { x, y, r, colour, alpha: 0.95, spike: 0.0 });
            if r > 3.0 {
                dots.push(Dot { x, y, r: r * 0.35, colour: pal.accents[1], alpha: 1.0, spike: 0.0 });
            }
        }
        layers.push(Box::new(Dots::new(w, dots, Blend::Over, false, None)));
    }
    if !refuse(FIREFLIES) && (words.has(FIREFLIES) || (forest && night && rng.chance(0.6))) {
        let mut fr = rng.derive("fireflies");
        let dots = (0..(area / 9000.0) as usize)
            .map(|_| Dot {
                x: fr.range(0.0, wf),
                y: fr.range(horizon, hf),
                r: px_scale * fr.range(2.0, 5.0),
                colour: pal.light,
                alpha: fr.range(0.4, 1.0),
                spike: 0.0,
            })
            .collect();
        layers.push(Box::new(Dots::new(w, dots, Blend::Add, true, None)));
    }
    if !refuse(LEAVES) && (words.has(LEAVES) || (themed(Theme::Autumn) && rng.chance(0.6))) {
        let mut lr = rng.derive("leaves");
        let dots = (0..(area / 14000.0) as usize)
            .map(|_| Dot {
                x: lr.range(0.0, wf),
                y: lr.range(0.0, hf),
                r: px_scale * lr.range(1.5, 4.5),
                colour: pal.accents[lr.below(4)],
                alpha: lr.range(0.7, 1.0),
                spike: 0.0,
            })
            .collect();
        layers.push(Box::new(Dots::new(w, dots, Blend::Over, false, None)));
    }
    if !refuse(SNOWFALL) && (words.has(SNOWFALL) || (themed(Theme::Winter) && rng.chance(0.5))) {
        let mut sr = rng.derive("snowfall");
        let flake = mix(WHITE, pal.sky[3], 0.15);
        let dots = (0..(area / 1100.0) as usize)
            .map(|_| {
                let near = sr.f32();
                Dot {
                    x: sr.range(0.0, wf),
                    y: sr.range(0.0, hf),
                    r: px_scale * (1.0 + 3.5 * near * near * near),
                    colour: flake,
                    alpha: 0.35 + 0.55 * sr.f32(),
                    spike: 0.0,
                }
            })
            .collect();
        layers.push(Box::new(Dots::new(w, dots, Blend::Over, true, None)));
    }
    if !refuse(EMBERS) && (words.has(EMBERS) || themed(Theme::Fire)) {
        let mut er = rng.derive("embers");
        let dots = (0..(area / 2600.0) as usize)
            .map(|_| {
                let v = er.f32();
                Dot {
                    x: er.range(0.0, wf),
                    y: hf * (1.0 - v * v),
                    r: px_scale * er.range(1.2, 4.0),
                    colour: pal.accents[er.below(2)],
                    alpha: er.range(0.4, 1.2),
                    spike: 0.0,
                }
            })
            .collect();
        layers.push(Box::new(Dots::new(w, dots, Blend::Add, true, None)));
    }
}

/// Coarse grid step of noise fields: about 160 samples along the geometric-mean side.
fn field_cell(unit: f32) -> usize {
    ((unit / 160.0) as usize).clamp(2, 32)
}

/// Glowing lava streams down a volcano's front from its crater, and a glow above it.
fn lava_flows(
    scene: &Scene,
    rng: &mut Rng,
    layers: &mut Vec<Box<dyn Layer>>,
    surface: &[f32],
    cx: f32,
    rim: f32,
    amp: f32,
) {
    let pal = scene.palette;
    let w = scene.width;
    let mut flows = Shapes::new(w);
    let width = (scene.unit * 0.006).max(1.0);
    for _ in 0..2 + rng.below(3) {
        let side = rng.range(-1.0, 1.0);
        let (mut x, mut y) = (cx + side * amp * 0.15, rim + amp * 0.03);
        let steps = 6 + rng.below(6);
        for _ in 0..steps {
            let nx = x + side * amp * rng.range(0.04, 0.12) + rng.range(-0.04, 0.04) * amp;
            let ny = y + amp * rng.range(0.06, 0.11);
            let inside = |px: f32, py: f32| py > surface[(px.max(0.0) as usize).min(w - 1)] + width * 2.0;
            if !inside(nx, ny) {
                break;
            }
            flows.push(
                Shape::solid(Sdf::Capsule { a: [x, y], b: [nx, ny], r: width * 2.5 }, pal.accents[1])
                    .alpha(0.5)
                    .feather(width * 3.0),
            );
            flows.push(Shape::solid(Sdf::Capsule { a: [x, y], b: [nx, ny], r: width * 0.7 }, pal.accents[0]));
            (x, y) = (nx, ny);
        }
    }
    layers.push(Box::new(flows));
    let glow = Glow { cx, cy: rim, radius: amp * 0.12, squash: 0.8, colour: pal.glow, strength: 0.8 };
    layers.push(Box::new(Halo::new(w, glow, 8.0)));
}

/// A star field above the horizon, fading where the sky is bright.
fn star_field(scene: &Scene, rng: &mut Rng, horizon: f32, lut: &[Rgb]) -> Dots {
    let (wf, hf) = (scene.width as f32, scene.height as f32);
    let top = horizon.min(hf);
    let count = (wf * top * 0.0011) as usize;
    let px = (scene.unit / 1024.0).max(0.6);
    let pal = scene.palette;
    let dots = (0..count)
        .map(|_| {
            let b = rng.f32();
            let b3 = b * b * b;
            let tint = match rng.below(4) {
                0 => mix(pal.light, [0.7, 0.8, 1.0], 0.5),
                1 => mix(pal.light, [1.0, 0.85, 0.7], 0.4),
                _ => pal.light,
            };
            Dot {
                x: rng.range(0.0, wf),
                y: rng.range(0.0, top),
                r: px * (0.45 + 1.3 * b3),
                colour: tint,
                alpha: 0.35 + 0.65 * b,
                spike: if b > 0.985 { px * rng.range(5.0, 11.0) } else { 0.0 },
            }
        })
        .collect();
    let mut gain = darkness_gain(lut);
    for (y, g) in gain.iter_mut().enumerate() {
        *g *= 1.0 - smoothstep(top * 0.85, top, y as f32);
    }
    Dots::new(scene.width, dots, Blend::Add, false, Some(gain))
}

/// Clouds stretched along the horizon, lit from `light` (or from above).
fn clouds(scene: &Scene, rng: &mut Rng, horizon: f32, cell: usize, amount: f32, light: Option<Light>) -> Clouds {
    let (w, h, unit) = (scene.width, scene.height, scene.unit);
    let pal = scene.palette;
    let seed = rng.next_u32();
    let freq = rng.range(1.8, 3.0) / unit;
    let (ox, oy) = (rng.range(0.0, 500.0), rng.range(0.0, 500.0));
    let threshold = 0.62 - 0.2 * amount;
    let density = |x: f32, y: f32| fbm2(x * freq + ox, y * freq * 2.6 + oy, 5, seed);
    let bottom = horizon.min(h as f32);
    let band = move |y: f32| smoothstep(0.0, bottom * 0.1, y) * (1.0 - smoothstep(bottom * 0.55, bottom * 0.97, y));
    let step = unit * 0.02;
    let [cover, light] = Field::many(w, h, cell, |x, y| {
        let n = density(x, y);
        let cover = smoothstep(threshold, threshold + 0.22, n) * band(y) * 0.92;
        if cover <= 0.0 {
            return [0.0, 0.5];
        }
        let (dx, dy) = match light {
            Some(l) => {
                let (vx, vy) = (l.x - x, l.y - y);
                let len = (vx * vx + vy * vy).sqrt().max(1.0);
                (vx / len, vy / len)
            }
            None => (0.0, -1.0),
        };
        let toward = density(x + dx * step, y + dy * step);
        [cover, clamp01(0.55 + (n - toward) * 5.0)]
    });
    let night = pal.darkness >= 0.6;
    let (lit, shade) = if night {
        (mix(pal.sky[3], pal.light, 0.35), scale(pal.sky[1], 0.9))
    } else {
        (mix(pal.light, pal.glow, 0.45), mix(pal.sky[1], pal.land_far, 0.35))
    };
    Clouds { cover, light, lit, shade, bottom: bottom as usize, scratch: RefCell::new((vec![0.0; w], vec![0.0; w])) }
}

/// A glowing band of nebula (space) or the Milky Way (night skies).
fn nebula(scene: &Scene, rng: &mut Rng, horizon: f32, cell: usize, space: bool) -> Nebula {
    let (w, h, unit) = (scene.width, scene.height, scene.unit);
    let (wf, hf) = (w as f32, h as f32);
    let pal = scene.palette;
    let seed = rng.next_u32();
    let freq = rng.range(1.5, 2.5) / unit;
    // The band runs through a random point at a random slope.
    let (px, py) = (wf * rng.range(0.3, 0.7), horizon.min(hf) * rng.range(0.3, 0.6));
    let angle = rng.range(-0.9, 0.9);
    let (nx, ny) = (super::noise::sin(angle), super::noise::cos(angle));
    let width = unit * if space { rng.range(0.3, 0.5) } else { rng.range(0.12, 0.2) };
    let strength = if space {
        0.75
    } else if scene.words.has(GALAXY) {
        0.55
    } else {
        0.32
    };
    let bottom = horizon.min(hf);
    let band = move |x: f32, y: f32| {
        let d = ((x - px) * nx + (y - py) * ny) / width;
        1.0 / (1.0 + d * d)
    };
    let warp = |x: f32, y: f32| {
        let qx = fbm2(x * freq, y * freq, 3, seed ^ 1);
        let qy = fbm2(x * freq + 5.2, y * freq + 1.3, 3, seed ^ 2);
        fbm2(x * freq + 1.8 * qx, y * freq + 1.8 * qy, 5, seed)
    };
    let fade = move |y: f32| 1.0 - smoothstep(bottom * 0.7, bottom, y);
    let [glow, tone, dust] = Field::many(w, h, cell, |x, y| {
        let f = fade(y);
        if f <= 0.0 {
            return [0.0, 0.0, 0.0];
        }
        let b = band(x, y);
        let glow = smoothstep(0.35, 0.8, warp(x, y)) * if space { 0.35 + 0.65 * b } else { b } * strength * f;
        let tone = smoothstep(0.3, 0.7, fbm2(x * freq * 0.7 + 9.0, y * freq * 0.7, 3, seed ^ 3));
        let dust = smoothstep(0.55, 0.75, fbm2(x * freq * 2.2 + 3.0, y * freq * 2.2, 4, seed ^ 4)) * b * 0.6 * f;
        [glow, tone, dust]
    });
    let (a, b) = if space { (pal.accents[0], pal.accents[1]) } else { (pal.glow, pal.light) };
    Nebula {
        glow,
        tone,
        dust,
        a,
        b,
        bottom: bottom as usize,
        scratch: RefCell::new([vec![0.0; w], vec![0.0; w], vec![0.0; w]]),
    }
}

/// Aurora curtains in the upper sky.
fn aurora_layer(scene: &Scene, rng: &mut Rng, horizon: f32) -> Aurora {
    let (w, unit) = (scene.width, scene.unit);
    let sky = horizon.min(scene.height as f32);
    let seed = rng.next_u32();
    let freq = rng.range(1.0, 2.0) / unit;
    let base_y = sky * rng.range(0.45, 0.7);
    let amp = sky * 0.18;
    let height = sky * rng.range(0.3, 0.45);
    let base: Vec<f32> = (0..w).map(|x| base_y + amp * (fbm1(x as f32 * freq, 3, seed) - 0.5) * 2.0).collect();
    let power = (0..w)
        .map(|x| {
            let xf = x as f32;
            let rays = value1(xf * freq * 30.0, seed ^ 7);
            let broad = fbm1(xf * freq * 1.5 + 40.0, 2, seed ^ 9);
            (0.15 + 0.85 * smoothstep(0.3, 0.7, broad)) * (0.55 + 0.45 * rays) * 0.7
        })
        .collect();
    let top = (base_y - amp - height).max(0.0) as usize;
    let bottom = ((base_y + amp + height * 0.1) as usize + 2).min(scene.height);
    let pal = scene.palette;
    let low = mix([0.2, 1.0, 0.6], pal.accents[0], 0.2);
    let high = mix([0.6, 0.3, 1.0], pal.accents[2], 0.3);
    Aurora { base, power, height, low, high, top, bottom }
}
