//! Archetype croppers: implement [`Cropper`] and call [`register_cropper!`](crate::register_cropper).

use crate::bindings::cropper::exports::easel::plugin::cropper as abi;

pub use crate::bindings::provider::easel::plugin::types::{AspectRatio, Image, PluginError, Rect};
pub use crate::image::Rgba;
pub use abi::{Anchor, Archetype};

/// Archetypes, exact-ratio crops and background removal.
pub trait Cropper {
    /// The archetypes this plugin offers.
    fn archetypes() -> Vec<Archetype>;

    /// The rectangle of `image` to keep so that it has exactly the `target` ratio.
    fn plan(image: &Rgba, target: AspectRatio, anchor: Anchor) -> Result<Rect, PluginError>;

    /// Make a plain background transparent. `options_json`: `{"tolerance":0..1,"feather":px}`.
    fn remove_background(image: &mut Rgba, options_json: &str) -> Result<(), PluginError>;
}

#[doc(hidden)]
pub use abi::Guest as __Guest;

/// Export a type implementing [`Cropper`]: `easel_plugin_sdk::register_cropper!(MyCropper);`
#[macro_export]
macro_rules! register_cropper {
    ($ty:ty) => {
        #[doc(hidden)]
        #[allow(dead_code)]
        struct __EaselCropperExport;

        impl $crate::cropper::__Guest for __EaselCropperExport {
            fn archetypes() -> ::std::vec::Vec<$crate::cropper::Archetype> {
                <$ty as $crate::cropper::Cropper>::archetypes()
            }
            fn plan(
                image: $crate::cropper::Image,
                target: $crate::cropper::AspectRatio,
                anchor: $crate::cropper::Anchor,
            ) -> ::core::result::Result<$crate::cropper::Rect, $crate::cropper::PluginError> {
                let rgba = $crate::cropper::Rgba::from_image(image).ok_or_else(|| {
                    $crate::cropper::PluginError::InvalidInput("pixel buffer length is not width * height * 4".into())
                })?;
                <$ty as $crate::cropper::Cropper>::plan(&rgba, target, anchor)
            }
            fn remove_background(
                image: $crate::cropper::Image,
                options_json: ::std::string::String,
            ) -> ::core::result::Result<$crate::cropper::Image, $crate::cropper::PluginError> {
                let mut rgba = $crate::cropper::Rgba::from_image(image).ok_or_else(|| {
                    $crate::cropper::PluginError::InvalidInput("pixel buffer length is not width * height * 4".into())
                })?;
                <$ty as $crate::cropper::Cropper>::remove_background(&mut rgba, &options_json)?;
                Ok(rgba.into_image())
            }
        }

        // Component exports exist only on wasm; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::cropper::export_cropper_world!(__EaselCropperExport with_types_in $crate::bindings::cropper);
    };
}
