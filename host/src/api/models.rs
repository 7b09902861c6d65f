//! `/v1/models`: the catalogue, built from what each provider plugin's `describe` returned.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::problem::ApiError;
use crate::error::AppError;
use poem_openapi::{Object, OpenApi};

use super::{Tag, app};
use crate::plugins::runtime::abi;
use crate::service::App;

/// Catalogue operations.
pub struct ModelsApi {
    pub(crate) app: Option<App>,
}

/// A size the model draws natively.
#[derive(Debug, Clone, Object)]
pub struct NativeSize {
    /// `"W:H"`.
    pub aspect_ratio: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

/// Guidance for users of a model.
#[derive(Debug, Clone, Object)]
pub struct ModelInfo {
    /// What the model is.
    pub what_is: String,
    /// What it is good for.
    pub use_cases: Vec<String>,
    /// How to get good results.
    pub tips: Vec<String>,
}

/// A model offered by a provider plugin.
#[derive(Debug, Clone, Object)]
pub struct Model {
    /// `provider/model`: pass as `model` to `POST /v1/generations`.
    pub id: String,
    /// The provider plugin's id.
    pub provider: String,
    /// Display name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// `text_to_image`, `image_to_image`, `inpainting`.
    pub kinds: Vec<String>,
    /// True when it draws any size within `min_side`..`max_side`; otherwise see `native_sizes`.
    pub any_size: bool,
    /// Smallest side in pixels (any-size models).
    pub min_side: u32,
    /// Largest side in pixels (any-size models).
    pub max_side: u32,
    /// Sizes it draws natively (other ratios are cropped from the nearest).
    pub native_sizes: Vec<NativeSize>,
    /// Most images per generation.
    pub max_n: u32,
    /// Request fields it honours. `seed`, `steps`, `guidance_scale`, `quality`, `strength` and
    /// `loras` are refused (or dropped with a warning) for a model that does not list them;
    /// `negative_prompt` is merged into the prompt when not listed.
    pub supported_parameters: Vec<String>,
    /// JSON schema of the `provider_options` it accepts; null when it takes none.
    pub options_schema: Option<serde_json::Value>,
    /// Same request and seed give the same image.
    pub deterministic: bool,
    /// Guidance.
    pub info: ModelInfo,
    /// Whether its provider can serve it now.
    pub status: ProviderState,
}

/// Keys and reachability of a provider (never a key itself).
#[derive(Debug, Clone, Object)]
pub struct ProviderState {
    /// The provider plugin's id.
    pub provider: String,
    /// The provider needs an API key.
    pub needs_key: bool,
    /// The server can use it with its own configuration (no key needed, or the operator
    /// configured one). When false, send your own key in `X-Provider-Key`.
    pub configured: bool,
    /// The last probe of the provider's API got an answer (probed every 60 s once a key is
    /// configured); null when never probed.
    pub reachable: Option<bool>,
    /// When that probe ran.
    pub checked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The state of one provider plugin.
pub(crate) fn provider_state(app: &App, plugin: &crate::plugins::Plugin) -> ProviderState {
    let s = app.plugins.provider_status(plugin);
    ProviderState {
        provider: plugin.manifest.id.clone(),
        needs_key: s.needs_key,
        configured: s.configured,
        reachable: s.reachable,
        checked_at: s.checked_at,
    }
}

/// All models.
#[derive(Debug, Clone, Object)]
pub struct ModelList {
    /// Sorted by id.
    pub items: Vec<Model>,
    /// Always null: the catalogue fits one page.
    pub next_cursor: Option<String>,
}

fn kind_name(k: abi::ModelKind) -> &'static str {
    match k {
        abi::ModelKind::TextToImage => "text_to_image",
        abi::ModelKind::ImageToImage => "image_to_image",
        abi::ModelKind::Inpainting => "inpainting",
    }
}

fn to_model(provider: &str, m: &abi::Model, status: ProviderState) -> Model {
    Model {
        status,
        id: format!("{provider}/{}", m.id),
        provider: provider.to_string(),
        name: m.name.clone(),
        description: m.description.clone(),
        kinds: m.kinds.iter().map(|k| kind_name(*k).to_string()).collect(),
        any_size: m.any_size,
        min_side: m.min_side,
        max_side: m.max_side,
        native_sizes: m
            .native_sizes
            .iter()
            .map(|s| NativeSize {
                aspect_ratio: format!("{}:{}", s.aspect_ratio.width, s.aspect_ratio.height),
                width: s.width,
                height: s.height,
            })
            .collect(),
        max_n: m.max_n,
        supported_parameters: m.supported_parameters.clone(),
        options_schema: serde_json::from_str(&m.options_schema).ok(),
        deterministic: m.deterministic,
        info: ModelInfo {
            what_is: m.info.what_is.clone(),
            use_cases: m.info.use_cases.clone(),
            tips: m.info.tips.clone(),
        },
    }
}

#[OpenApi(tag = "Tag::Models")]
impl ModelsApi {
    /// List the models of every loaded provider plugin.
    ///
    /// Includes the bundled `local/procedural` (offline procedural art, not an AI model) and
    /// the bundled remote providers (`gemini/…`, `openai/…`, `fal/…`, `replicate/…`); each
    /// model's `status` says whether the server has a key for it and whether its API answered.
    #[oai(path = "/v1/models", method = "get", operation_id = "list_models")]
    async fn list(&self) -> Json<ModelList> {
        let app = app(&self.app);
        let catalog = app.plugins.catalog();
        let mut items: Vec<Model> = catalog
            .plugins
            .values()
            .flat_map(|p| {
                let status = provider_state(app, p);
                p.models().iter().map(|m| to_model(&p.manifest.id, m, status.clone())).collect::<Vec<_>>()
            })
            .collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        Json(ModelList { items, next_cursor: None })
    }

    /// Get one model by its full id `provider/model`, with the slashes URL-encoded:
    /// `GET /v1/models/local%2Fprocedural`. 404 `not_found` for an unknown id.
    #[oai(path = "/v1/models/:id", method = "get", operation_id = "get_model")]
    async fn get(&self, id: Path<String>) -> Result<Json<Model>, ApiError> {
        let app = app(&self.app);
        let (plugin, model) = app.plugins.find_model(&id).ok_or_else(|| AppError::not_found("model", &id))?;
        Ok(Json(to_model(&plugin.manifest.id, &model, provider_state(app, &plugin))))
    }
}
