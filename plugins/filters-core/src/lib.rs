//! `filters-core`: Easel's bundled editing filters (grayscale, sepia, vintage, invert, blur,
//! sharpen, vignette, brightness, contrast, saturation, posterize, hue_rotate).
//!
//! The pixel work lives in [`ops`], plain Rust over an RGBA8 byte slice, so the host (or a
//! benchmark) can run the very same code natively; the [`Filter`] impl only adapts the SDK types.

use easel_plugin_sdk::filter::{Filter, FilterInfo, PluginError, Rgba};

pub mod ops;

/// The plugin: every filter of [`ops::FILTERS`].
pub struct CoreFilters;

impl Filter for CoreFilters {
    fn filters() -> Vec<FilterInfo> {
        ops::FILTERS
            .iter()
            .map(|def| FilterInfo::new(def.id, def.name, def.description).params_schema(&def.params_schema()))
            .collect()
    }

    fn apply(id: &str, image: &mut Rgba, intensity: f32, params_json: &str) -> Result<(), PluginError> {
        let (width, height) = (image.width(), image.height());
        ops::apply_filter(id, image.pixels_mut(), width, height, intensity, params_json)
            .map_err(PluginError::InvalidInput)
    }
}

// The component exports have names (`easel:plugin/filter@0.1.0#apply`) a native linker's
// version script rejects, so they exist only in the wasm build; native code uses `ops`.
#[cfg(target_arch = "wasm32")]
easel_plugin_sdk::register_filter!(CoreFilters);

#[cfg(test)]
mod tests;
