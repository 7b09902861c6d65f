//! # easel-plugin-sdk
//!
//! Everything a plugin author needs to extend [Easel](https://github.com/easel-dev/easel):
//! the ABI (`wit/`, package `easel:plugin@0.1.0`), one trait per plugin kind with default
//! methods, and a `register_*!` macro that exports your type as a WebAssembly component.
//!
//! A model provider in full:
//!
//! ```ignore
//! use easel_plugin_sdk::provider::*;
//!
//! struct Hello;
//!
//! impl Provider for Hello {
//!     fn describe() -> ProviderInfo {
//!         ProviderInfo { models: vec![ModelBuilder::any_size("flat", "Flat colour").build()] }
//!     }
//!     fn generate(req: GenerateRequest) -> Result<GenerateResponse, PluginError> {
//!         let img = Rgba::filled(req.width, req.height, [200, 40, 40, 255]);
//!         Ok(GenerateResponse::raw(vec![(img.into_image(), req.seed)]))
//!     }
//! }
//!
//! easel_plugin_sdk::register_provider!(Hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and drop the `.wasm` with its
//! `plugin.toml` into `<data-dir>/plugins/<id>/`.
#![deny(missing_docs)]

/// The ABI version this SDK speaks; the host refuses plugins whose manifest names another.
pub const API_VERSION: &str = "0.1.0";

#[doc(hidden)]
pub mod bindings {
    /// Generated bindings of the `provider-plugin` world (also the home of the shared interfaces).
    pub mod provider {
        wit_bindgen::generate!({
            world: "provider-plugin",
            path: "wit",
            pub_export_macro: true,
            export_macro_name: "export_provider_world",
            default_bindings_module: "easel_plugin_sdk::bindings::provider",
        });
    }

    /// Generated bindings of the `style-pack-plugin` world.
    pub mod style_pack {
        wit_bindgen::generate!({
            world: "style-pack-plugin",
            path: "wit",
            pub_export_macro: true,
            export_macro_name: "export_style_pack_world",
            default_bindings_module: "easel_plugin_sdk::bindings::style_pack",
            with: {
                "easel:plugin/types@0.1.0": crate::bindings::provider::easel::plugin::types,
                "easel:plugin/log@0.1.0": crate::bindings::provider::easel::plugin::log,
                "easel:plugin/config@0.1.0": crate::bindings::provider::easel::plugin::config,
            },
        });
    }

    /// Generated bindings of the `cropper-plugin` world.
    pub mod cropper {
        wit_bindgen::generate!({
            world: "cropper-plugin",
            path: "wit",
            pub_export_macro: true,
            export_macro_name: "export_cropper_world",
            default_bindings_module: "easel_plugin_sdk::bindings::cropper",
            with: {
                "easel:plugin/types@0.1.0": crate::bindings::provider::easel::plugin::types,
                "easel:plugin/log@0.1.0": crate::bindings::provider::easel::plugin::log,
                "easel:plugin/config@0.1.0": crate::bindings::provider::easel::plugin::config,
            },
        });
    }

    /// Generated bindings of the `filter-plugin` world.
    pub mod filter {
        wit_bindgen::generate!({
            world: "filter-plugin",
            path: "wit",
            pub_export_macro: true,
            export_macro_name: "export_filter_world",
            default_bindings_module: "easel_plugin_sdk::bindings::filter",
            with: {
                "easel:plugin/types@0.1.0": crate::bindings::provider::easel::plugin::types,
                "easel:plugin/log@0.1.0": crate::bindings::provider::easel::plugin::log,
                "easel:plugin/config@0.1.0": crate::bindings::provider::easel::plugin::config,
            },
        });
    }
}

/// Host services available to every plugin kind: logging, operator config, progress.
pub mod host {
    use crate::bindings::provider::easel::plugin as wit;

    /// Log levels accepted by [`log`].
    pub use wit::log::Level;

    /// Write a line to the host's log, tagged with this plugin's id and the request id.
    pub fn log(level: Level, message: &str) {
        wit::log::log(level, message);
    }

    /// A non-secret setting the operator gave this plugin under `[plugins.<id>] config`.
    pub fn config(key: &str) -> Option<String> {
        wit::config::get(key)
    }

    /// Report progress of the current call: `fraction` 0.0..=1.0 and a short stage label.
    ///
    /// Available to providers only (other kinds are not long-running).
    pub fn progress(fraction: f32, stage: &str) {
        wit::progress::report(fraction, stage);
    }
}

pub mod cropper;
pub mod filter;
pub mod http;
pub mod image;
pub mod provider;
pub mod style_pack;
pub mod text;
