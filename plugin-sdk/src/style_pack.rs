//! Style packs: list templates; the SDK applies them for you.
//!
//! Most packs only describe templates: implement [`StylePack::templates`] and the default
//! [`StylePack::apply`] substitutes `{prompt}` into each template's `prompt` pattern and joins
//! negative prompts. Override `apply` for anything cleverer.

use crate::bindings::style_pack::exports::easel::plugin::style_pack as abi;

pub use crate::bindings::provider::easel::plugin::types::PluginError;
pub use abi::{StyleRequest, Styled, Template};

/// One template as an author writes it.
#[derive(Clone, Debug, Default)]
pub struct StyleTemplate {
    /// Unique id, e.g. "watercolor".
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// One sentence.
    pub description: &'static str,
    /// "realistic", "artistic", "illustration", "design", …
    pub category: &'static str,
    /// Search tags.
    pub tags: &'static [&'static str],
    /// Prompt pattern; `{prompt}` is replaced by the user's prompt (appended when absent).
    pub prompt: &'static str,
    /// Negative prompt added to the user's.
    pub negative_prompt: &'static str,
    /// Default parameters as a JSON object (e.g. `{"aspect_ratio":"3:2"}`), "" for none.
    pub defaults_json: &'static str,
    /// Hint for providers: "photo", "vector", "icon", …
    pub style_hint: Option<&'static str>,
}

impl StyleTemplate {
    /// The ABI record.
    pub fn to_template(&self) -> Template {
        Template {
            id: self.id.into(),
            name: self.name.into(),
            description: self.description.into(),
            category: self.category.into(),
            tags: self.tags.iter().map(|t| t.to_string()).collect(),
            defaults_json: if self.defaults_json.is_empty() { "{}".into() } else { self.defaults_json.into() },
            style_hint: self.style_hint.map(Into::into),
        }
    }

    /// Expand `request` with this template.
    pub fn expand(&self, request: StyleRequest) -> Styled {
        let user = request.prompt.trim();
        let prompt = if self.prompt.contains("{prompt}") {
            self.prompt.replace("{prompt}", user)
        } else if self.prompt.is_empty() {
            user.to_string()
        } else {
            format!("{user}, {}", self.prompt)
        };
        let negatives: Vec<&str> = [request.negative_prompt.as_deref().unwrap_or(""), self.negative_prompt]
            .into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        Styled { prompt, negative_prompt: (!negatives.is_empty()).then(|| negatives.join(", ")) }
    }
}

/// A style pack.
pub trait StylePack {
    /// The templates of this pack.
    fn templates() -> Vec<StyleTemplate>;

    /// Expand a prompt with template `id`. Default: [`StyleTemplate::expand`].
    fn apply(id: &str, request: StyleRequest) -> Result<Styled, PluginError> {
        Self::templates()
            .into_iter()
            .find(|t| t.id == id)
            .map(|t| t.expand(request))
            .ok_or_else(|| PluginError::InvalidInput(format!("unknown style template {id:?}")))
    }
}

#[doc(hidden)]
pub use abi::Guest as __Guest;

/// Export a type implementing [`StylePack`]: `easel_plugin_sdk::register_style_pack!(MyPack);`
#[macro_export]
macro_rules! register_style_pack {
    ($ty:ty) => {
        #[doc(hidden)]
        #[allow(dead_code)]
        struct __EaselStylePackExport;

        impl $crate::style_pack::__Guest for __EaselStylePackExport {
            fn templates() -> ::std::vec::Vec<$crate::style_pack::Template> {
                <$ty as $crate::style_pack::StylePack>::templates().iter().map(|t| t.to_template()).collect()
            }
            fn apply(
                id: ::std::string::String,
                request: $crate::style_pack::StyleRequest,
            ) -> ::core::result::Result<$crate::style_pack::Styled, $crate::style_pack::PluginError> {
                <$ty as $crate::style_pack::StylePack>::apply(&id, request)
            }
        }

        // Component exports exist only on wasm; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::style_pack::export_style_pack_world!(__EaselStylePackExport with_types_in $crate::bindings::style_pack);
    };
}
