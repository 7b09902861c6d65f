//! Model providers: implement [`Provider`] and call [`register_provider!`](crate::register_provider).

use crate::bindings::provider::exports::easel::plugin::provider as abi;

pub use crate::bindings::provider::easel::plugin::types::{AspectRatio, Image, PluginError, RetryHint};
pub use crate::image::Rgba;
pub use abi::{
    Callback, GenerateRequest, GenerateResponse, GeneratedImage, ImageData, Lora, Model, ModelInfo, ModelKind,
    NativeSize, ProviderInfo,
};

/// A model provider. `describe` lists the models; `generate` makes images.
///
/// Both run inside a fresh sandbox per call, with the memory and time limits of the plugin's
/// manifest. Keep `describe` free of I/O: the host calls it when the plugin loads.
pub trait Provider {
    /// The models this provider offers.
    fn describe() -> ProviderInfo;

    /// Generate `request.n` images of `request.width`×`request.height`.
    ///
    /// Return [`PluginError::InvalidInput`] for requests the model cannot take; the host shows
    /// the message to the API client as a `plugin_error`.
    fn generate(request: GenerateRequest) -> Result<GenerateResponse, PluginError>;

    /// Verify an inbound callback (webhook) from the provider: `Ok(true)` when authentic,
    /// which wakes the generation's [`crate::http::await_callback`]. The default takes none.
    fn handle_callback(callback: Callback) -> Result<bool, PluginError> {
        let _ = callback;
        Err(PluginError::Unsupported("this provider takes no callbacks".into()))
    }
}

impl GenerateResponse {
    /// A response of raw images, each with the seed that made it, and no metadata.
    pub fn raw(images: Vec<(Image, u32)>) -> Self {
        Self {
            images: images
                .into_iter()
                .map(|(image, seed)| GeneratedImage { data: ImageData::Raw(image), seed })
                .collect(),
            metadata_json: "{}".to_string(),
        }
    }
}

/// Merge the caller's `provider_options` (`options_json`, a JSON object or `""`) into an
/// upstream request body: new keys are added and replace the plugin's defaults; keys in
/// `reserved` (the ones the plugin sets from request fields: prompt, size, seed, image…) are
/// refused with `InvalidInput` naming them, as is anything that is not a JSON object.
pub fn merge_options(
    body: &mut serde_json::Map<String, serde_json::Value>,
    options_json: &str,
    reserved: &[&str],
) -> Result<(), PluginError> {
    let text = options_json.trim();
    if text.is_empty() {
        return Ok(());
    }
    let options: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| PluginError::InvalidInput(format!("provider_options is not JSON: {e}")))?;
    let serde_json::Value::Object(options) = options else {
        return Err(PluginError::InvalidInput("provider_options must be a JSON object".into()));
    };
    for (key, value) in options {
        if reserved.contains(&key.as_str()) {
            return Err(PluginError::InvalidInput(format!(
                "provider_options.{key} is set by Easel from the request; use the request field instead"
            )));
        }
        body.insert(key, value);
    }
    Ok(())
}

/// Builds a [`Model`] with sensible defaults, so a provider states only what differs.
#[derive(Clone, Debug)]
pub struct ModelBuilder {
    model: Model,
}

impl ModelBuilder {
    /// A text-to-image model that draws any size from 64 to 4096 pixels a side, one image a call.
    pub fn any_size(id: &str, name: &str) -> Self {
        Self {
            model: Model {
                id: id.to_string(),
                name: name.to_string(),
                description: String::new(),
                kinds: vec![ModelKind::TextToImage],
                native_sizes: Vec::new(),
                any_size: true,
                min_side: 64,
                max_side: 4096,
                max_n: 1,
                supported_parameters: vec!["prompt".to_string()],
                options_schema: String::new(),
                deterministic: false,
                info: ModelInfo { what_is: String::new(), use_cases: Vec::new(), tips: Vec::new() },
            },
        }
    }

    /// A model that draws only the given `(ratio_w, ratio_h, width, height)` sizes.
    pub fn native_sizes(id: &str, name: &str, sizes: &[(u32, u32, u32, u32)]) -> Self {
        let mut builder = Self::any_size(id, name);
        builder.model.any_size = false;
        builder.model.native_sizes = sizes
            .iter()
            .map(|&(rw, rh, width, height)| NativeSize {
                aspect_ratio: AspectRatio { width: rw, height: rh },
                width,
                height,
            })
            .collect();
        builder
    }

    /// One-line description shown in the catalogue.
    pub fn description(mut self, text: &str) -> Self {
        self.model.description = text.to_string();
        self
    }

    /// What the model can do (default: text-to-image only).
    pub fn kinds(mut self, kinds: &[ModelKind]) -> Self {
        self.model.kinds = kinds.to_vec();
        self
    }

    /// Smallest and largest side in pixels for `any_size` models.
    pub fn side_range(mut self, min: u32, max: u32) -> Self {
        self.model.min_side = min;
        self.model.max_side = max;
        self
    }

    /// Most images per call.
    pub fn max_n(mut self, n: u32) -> Self {
        self.model.max_n = n;
        self
    }

    /// Request fields the model honours ("seed", "negative_prompt", "steps", …). Be truthful:
    /// the host refuses a request that sets `seed`, `steps`, `guidance_scale`, `quality`,
    /// `strength` or `loras` for a model that does not list it (or drops it with a warning,
    /// as the operator chooses), and merges a `negative_prompt` into the prompt ("Avoid: …")
    /// for a model that does not list `negative_prompt`.
    pub fn supports(mut self, params: &[&str]) -> Self {
        self.model.supported_parameters = params.iter().map(|p| p.to_string()).collect();
        self
    }

    /// JSON schema of the `provider_options` this model accepts.
    pub fn options_schema(mut self, schema: &str) -> Self {
        self.model.options_schema = schema.to_string();
        self
    }

    /// Mark the model as deterministic: same request and seed, same pixels.
    pub fn deterministic(mut self) -> Self {
        self.model.deterministic = true;
        self
    }

    /// Guidance shown to users: what it is, use cases, tips.
    pub fn info(mut self, what_is: &str, use_cases: &[&str], tips: &[&str]) -> Self {
        self.model.info = ModelInfo {
            what_is: what_is.to_string(),
            use_cases: use_cases.iter().map(|s| s.to_string()).collect(),
            tips: tips.iter().map(|s| s.to_string()).collect(),
        };
        self
    }

    /// The finished [`Model`].
    pub fn build(self) -> Model {
        self.model
    }
}

#[doc(hidden)]
pub use abi::Guest as __Guest;

/// Export a type implementing [`Provider`] as this component's `provider` interface.
///
/// Use it once per crate: `easel_plugin_sdk::register_provider!(MyProvider);`
#[macro_export]
macro_rules! register_provider {
    ($ty:ty) => {
        #[doc(hidden)]
        #[allow(dead_code)]
        struct __EaselProviderExport;

        impl $crate::provider::__Guest for __EaselProviderExport {
            fn describe() -> $crate::provider::ProviderInfo {
                <$ty as $crate::provider::Provider>::describe()
            }
            fn generate(
                request: $crate::provider::GenerateRequest,
            ) -> ::core::result::Result<$crate::provider::GenerateResponse, $crate::provider::PluginError> {
                <$ty as $crate::provider::Provider>::generate(request)
            }
            fn handle_callback(
                callback: $crate::provider::Callback,
            ) -> ::core::result::Result<bool, $crate::provider::PluginError> {
                <$ty as $crate::provider::Provider>::handle_callback(callback)
            }
        }

        // Component exports exist only on wasm; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::provider::export_provider_world!(__EaselProviderExport with_types_in $crate::bindings::provider);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_merge_but_never_replace_request_fields() {
        let mut body = serde_json::Map::new();
        body.insert("style".into(), "a".into());
        merge_options(&mut body, r#"{"style":"b","extra":1}"#, &["prompt"]).unwrap();
        assert_eq!((body["style"].as_str(), body["extra"].as_i64()), (Some("b"), Some(1)));
        assert!(merge_options(&mut body, "", &["prompt"]).is_ok());
        for bad in [r#"{"prompt":"x"}"#, "[1]", "{"] {
            assert!(matches!(merge_options(&mut body, bad, &["prompt"]), Err(PluginError::InvalidInput(_))), "{bad}");
        }
    }
}
