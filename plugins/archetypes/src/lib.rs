//! `archetypes`: Easel's bundled cropper plugin: the archetype list, exact-ratio crop planning
//! (anchors incl. content-aware `smart`) and plain-background removal.
//!
//! The algorithms are pure functions in [`crop`] and [`background`]; this file only adapts them
//! to the [`Cropper`] trait.

pub mod background;
pub mod catalog;
pub mod crop;

use easel_plugin_sdk::cropper::*;

/// The exported cropper.
pub struct Archetypes;

impl Cropper for Archetypes {
    fn archetypes() -> Vec<Archetype> {
        catalog::archetypes()
    }

    fn plan(image: &Rgba, target: AspectRatio, anchor: Anchor) -> Result<Rect, PluginError> {
        crop::plan(image.pixels(), image.width(), image.height(), target.width, target.height, anchor)
            .map_err(PluginError::InvalidInput)
    }

    fn remove_background(image: &mut Rgba, options_json: &str) -> Result<(), PluginError> {
        let options = background::parse_options(options_json).map_err(PluginError::InvalidInput)?;
        let (width, height) = (image.width(), image.height());
        background::remove_background(image.pixels_mut(), width, height, options).map_err(PluginError::InvalidInput)
    }
}

// Exported only in the component: natively the cdylib cannot carry the component's export names.
#[cfg(target_arch = "wasm32")]
easel_plugin_sdk::register_cropper!(Archetypes);

#[cfg(test)]
mod tests;
