//! Editing filters: implement [`Filter`] and call [`register_filter!`](crate::register_filter).

use crate::bindings::filter::exports::easel::plugin::filter as abi;

pub use crate::bindings::provider::easel::plugin::types::{Image, PluginError};
pub use crate::image::Rgba;
pub use abi::FilterInfo;

/// A set of filters.
pub trait Filter {
    /// The filters this plugin offers.
    fn filters() -> Vec<FilterInfo>;

    /// Apply filter `id` to `image` in place. `intensity` is 0.0..=1.0 (0 leaves the image
    /// unchanged); `params_json` is the filter's JSON parameter object ("{}" when none).
    fn apply(id: &str, image: &mut Rgba, intensity: f32, params_json: &str) -> Result<(), PluginError>;
}

impl FilterInfo {
    /// A filter description with no parameters.
    pub fn new(id: &str, name: &str, description: &str) -> Self {
        Self { id: id.into(), name: name.into(), description: description.into(), params_schema: "{}".into() }
    }

    /// Set the JSON schema of the filter's parameters.
    pub fn params_schema(mut self, schema: &str) -> Self {
        self.params_schema = schema.into();
        self
    }
}

#[doc(hidden)]
pub use abi::Guest as __Guest;

/// Export a type implementing [`Filter`]: `easel_plugin_sdk::register_filter!(MyFilters);`
#[macro_export]
macro_rules! register_filter {
    ($ty:ty) => {
        #[doc(hidden)]
        #[allow(dead_code)]
        struct __EaselFilterExport;

        impl $crate::filter::__Guest for __EaselFilterExport {
            fn filters() -> ::std::vec::Vec<$crate::filter::FilterInfo> {
                <$ty as $crate::filter::Filter>::filters()
            }
            fn apply(
                id: ::std::string::String,
                image: $crate::filter::Image,
                intensity: f32,
                params_json: ::std::string::String,
            ) -> ::core::result::Result<$crate::filter::Image, $crate::filter::PluginError> {
                let mut rgba = $crate::filter::Rgba::from_image(image).ok_or_else(|| {
                    $crate::filter::PluginError::InvalidInput("pixel buffer length is not width * height * 4".into())
                })?;
                let intensity = if intensity.is_finite() { intensity.clamp(0.0, 1.0) } else { 1.0 };
                <$ty as $crate::filter::Filter>::apply(&id, &mut rgba, intensity, &params_json)?;
                Ok(rgba.into_image())
            }
        }

        // Component exports exist only on wasm; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::filter::export_filter_world!(__EaselFilterExport with_types_in $crate::bindings::filter);
    };
}
