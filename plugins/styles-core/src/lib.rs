//! `styles-core`: Easel's bundled style pack (the table lives in [`templates`]).
use easel_plugin_sdk::style_pack::{StylePack, StyleTemplate};

pub mod templates;

/// The core style pack.
pub struct Core;

impl StylePack for Core {
    fn templates() -> Vec<StyleTemplate> {
        templates::TEMPLATES.to_vec()
    }
}

// The component export only links on wasm; native builds (tests) use `Core` directly.
#[cfg(target_arch = "wasm32")]
easel_plugin_sdk::register_style_pack!(Core);

#[cfg(test)]
mod tests;
