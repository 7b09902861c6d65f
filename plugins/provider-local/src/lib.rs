//! `local`: Easel's offline provider. Its one model, `procedural`, draws deterministic
//! procedural art from the prompt's words and the seed. It is not an AI model.

#![warn(missing_docs)]

pub mod art;

use easel_plugin_sdk::provider::*;

/// Model id of the procedural generator.
pub const MODEL_ID: &str = "procedural";
/// Most images one call may ask for.
pub const MAX_N: u32 = 4;

/// The `local` provider.
pub struct Local;

impl Provider for Local {
    fn describe() -> ProviderInfo {
        let model = ModelBuilder::any_size(MODEL_ID, "Procedural art (offline)")
            .description(
                "Procedural art, not an AI model: landscapes, abstract patterns and flat icons drawn \
                 from the prompt's words. Offline, instant and deterministic by seed.",
            )
            .kinds(&[ModelKind::TextToImage])
            .side_range(art::MIN_SIDE, art::MAX_SIDE)
            .max_n(MAX_N)
            .deterministic()
            .supports(&["prompt", "negative_prompt", "seed", "style"])
            .info(
                "A procedural image generator that runs inside Easel with no network and no GPU. It \
                 does not understand prompts the way an AI model does: it picks a palette from mood \
                 and colour words and draws skies, mountains, seas, cities, forests, abstract patterns \
                 or flat emblems from subject words. The same prompt and seed always give the same image.",
                &[
                    "Placeholder art and wallpapers without an AI backend",
                    "Flat icons and logo placeholders on white (say \"icon\", \"logo\" or \"vector\")",
                    "Testing the API, webhooks, galleries and pipelines offline and reproducibly",
                ],
                &[
                    "Mood words set the palette: sunset, sunrise, ocean, forest, night, space, neon, desert, \
                     snow, fire, autumn, spring, pastel, noir, gold; or plain colours such as teal or purple.",
                    "Subject words set the scene: mountains, hills, city, ocean, forest, desert, sun, moon, \
                     stars, clouds, aurora, planet, flowers; \"abstract\" or \"portrait\" switch style.",
                    "Leave things out with \"no stars\" or a negative prompt; a colour there is avoided.",
                    "Add \"icon\", \"logo\", \"flat\", \"minimalist\" or \"sticker\" for a centred emblem on \
                     pure white, or \"pixel art\" for chunky pixels.",
                    "Change the seed for a new composition with the same mood.",
                ],
            )
            .build();
        ProviderInfo { models: vec![model] }
    }

    fn generate(req: GenerateRequest) -> Result<GenerateResponse, PluginError> {
        generate_with(&req, |fraction| easel_plugin_sdk::host::progress(fraction, "rendering"))
    }
}

/// Check a request's size and count.
pub fn validate(req: &GenerateRequest) -> Result<(), PluginError> {
    let sides = art::MIN_SIDE..=art::MAX_SIDE;
    if !sides.contains(&req.width) || !sides.contains(&req.height) {
        return Err(PluginError::InvalidInput(format!(
            "width and height must each be {}..={} pixels, got {}x{}",
            art::MIN_SIDE,
            art::MAX_SIDE,
            req.width,
            req.height
        )));
    }
    if !(1..=MAX_N).contains(&req.n) {
        return Err(PluginError::InvalidInput(format!("n must be 1..={MAX_N}, got {}", req.n)));
    }
    Ok(())
}

/// Render every image of `req`, calling `progress` with the finished fraction after each.
/// [`Provider::generate`] uses this with the host's progress report.
pub fn generate_with(req: &GenerateRequest, mut progress: impl FnMut(f32)) -> Result<GenerateResponse, PluginError> {
    validate(req)?;
    let images = (0..req.n)
        .map(|i| {
            let seed = req.seed.wrapping_add(i);
            let pixels = art::render(&art::Params {
                prompt: &req.prompt,
                negative_prompt: req.negative_prompt.as_deref(),
                seed,
                width: req.width,
                height: req.height,
                style_hint: req.style_hint.as_deref(),
            });
            progress((i + 1) as f32 / req.n as f32);
            let image = Rgba::from_pixels(req.width, req.height, pixels)
                .ok_or_else(|| PluginError::Internal("renderer returned a buffer of the wrong size".into()))?;
            Ok((image.into_image(), seed))
        })
        .collect::<Result<Vec<_>, PluginError>>()?;
    Ok(GenerateResponse::raw(images))
}

// Exported only in the wasm build: the component ABI's symbol names (with ':' and '@') are
// not valid in a native shared library's export list, and native builds exist only for tests.
#[cfg(target_arch = "wasm32")]
easel_plugin_sdk::register_provider!(Local);

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: u32, seed: u32, width: u32, height: u32) -> GenerateRequest {
        GenerateRequest {
            model: MODEL_ID.into(),
            prompt: "sunset over the ocean".into(),
            negative_prompt: None,
            width,
            height,
            n,
            seed,
            steps: None,
            guidance_scale: None,
            quality: None,
            style_hint: None,
            input_image: None,
            mask: None,
            strength: None,
            loras: Vec::new(),
            options_json: "{}".into(),
        }
    }

    #[test]
    fn describes_one_honest_procedural_model() {
        let info = Local::describe();
        assert_eq!(info.models.len(), 1);
        let m = &info.models[0];
        assert_eq!(m.id, "procedural");
        assert!(m.description.contains("not an AI model"));
        assert!(m.deterministic && m.any_size);
        assert_eq!((m.min_side, m.max_side, m.max_n), (64, 4096, 4));
        assert!(matches!(m.kinds.as_slice(), [ModelKind::TextToImage]));
        assert_eq!(m.supported_parameters, ["prompt", "negative_prompt", "seed", "style"]);
        assert!(!m.info.what_is.is_empty() && !m.info.use_cases.is_empty() && !m.info.tips.is_empty());
    }

    #[test]
    fn generates_n_images_with_consecutive_seeds() {
        let mut reports = Vec::new();
        let resp = generate_with(&request(3, u32::MAX - 1, 96, 72), |f| reports.push(f)).expect("generate");
        let seeds: Vec<u32> = resp.images.iter().map(|i| i.seed).collect();
        assert_eq!(seeds, [u32::MAX - 1, u32::MAX, 0]);
        assert_eq!(reports, [1.0 / 3.0, 2.0 / 3.0, 1.0]);
        for (i, image) in resp.images.iter().enumerate() {
            let ImageData::Raw(img) = &image.data else { panic!("expected raw image") };
            assert_eq!((img.width, img.height, img.pixels.len()), (96, 72, 96 * 72 * 4));
            let single = art::render(&art::Params {
                prompt: "sunset over the ocean",
                negative_prompt: None,
                seed: seeds[i],
                width: 96,
                height: 72,
                style_hint: None,
            });
            assert_eq!(img.pixels, single, "image {i} is the render of its own seed");
        }
        assert_eq!(resp.metadata_json, "{}");
    }

    #[test]
    fn rejects_bad_sizes_and_counts() {
        for req in [request(1, 0, 63, 64), request(1, 0, 64, 4097), request(0, 0, 64, 64), request(5, 0, 64, 64)] {
            let err = generate_with(&req, |_| {}).expect_err("must be rejected");
            assert!(matches!(err, PluginError::InvalidInput(_)), "{err:?}");
        }
        assert!(generate_with(&request(4, 0, 64, 4096), |_| {}).is_ok());
    }
}
