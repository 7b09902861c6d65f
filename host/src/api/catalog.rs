//! `/v1/styles`, `/v1/archetypes`, `/v1/filters`: catalogues filled by plugins.

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::problem::ApiError;
use super::{Tag, app};
use crate::error::AppError;
use crate::plugins::manifest::PluginKind;
use crate::plugins::{Described, Plugin};
use crate::service::App;

/// Catalogue operations.
pub struct CatalogApi {
    pub(crate) app: Option<App>,
}

/// A style template.
#[derive(Debug, Clone, Object)]
pub struct Style {
    /// Pass as `style` to `POST /v1/generations`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// One sentence.
    pub description: String,
    /// `realistic`, `artistic`, `illustration`, `design`, `3d`, …
    pub category: String,
    /// Search tags.
    pub tags: Vec<String>,
    /// Default request parameters the template sets when the request leaves them out.
    pub defaults: serde_json::Value,
    /// Hint passed to providers (`photo`, `vector`, `icon`, …).
    pub style_hint: Option<String>,
    /// The style-pack plugin that provides it.
    pub plugin: String,
}

/// Styles, sorted by category then id.
#[derive(Debug, Clone, Object)]
pub struct StyleList {
    /// The templates.
    pub items: Vec<Style>,
    /// Always null: the catalogue fits one page.
    pub next_cursor: Option<String>,
}

/// An archetype: a kind of picture with its preferred ratio and background handling.
#[derive(Debug, Clone, Object)]
pub struct ArchetypeItem {
    /// Pass as `archetype` to `POST /v1/generations`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Background removal is on by default (a transparent variant is made).
    pub remove_background: bool,
    /// Ratio used when the request gives no size, `"W:H"`.
    pub preferred_aspect_ratio: Option<String>,
    /// Hint passed to providers.
    pub style_hint: Option<String>,
    /// Words appended to the prompt.
    pub prompt_suffix: Option<String>,
    /// The cropper plugin that provides it.
    pub plugin: String,
}

/// All archetypes.
#[derive(Debug, Clone, Object)]
pub struct ArchetypeList {
    /// Sorted by id.
    pub items: Vec<ArchetypeItem>,
    /// Always null.
    pub next_cursor: Option<String>,
}

/// An editing filter.
#[derive(Debug, Clone, Object)]
pub struct FilterItem {
    /// Use as `name` of a `filter` edit operation.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON schema of its `params` object.
    pub params_schema: serde_json::Value,
    /// The filter plugin that provides it.
    pub plugin: String,
}

/// All filters.
#[derive(Debug, Clone, Object)]
pub struct FilterList {
    /// Sorted by id.
    pub items: Vec<FilterItem>,
    /// Always null.
    pub next_cursor: Option<String>,
}

fn json_or_empty(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|_| serde_json::json!({}))
}

fn styles_of(p: &Plugin) -> Vec<Style> {
    match &p.described {
        Described::StylePack(ts) => ts
            .iter()
            .map(|t| Style {
                id: t.id.clone(),
                name: t.name.clone(),
                description: t.description.clone(),
                category: t.category.clone(),
                tags: t.tags.clone(),
                defaults: json_or_empty(&t.defaults_json),
                style_hint: t.style_hint.clone(),
                plugin: p.manifest.id.clone(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[OpenApi(tag = "Tag::Catalog")]
impl CatalogApi {
    /// List style templates.
    ///
    /// `category` filters (e.g. `artistic`). Apply one with `style` on `POST /v1/generations`:
    /// it expands the prompt and negative prompt and fills in its default parameters.
    #[oai(path = "/v1/styles", method = "get", operation_id = "list_styles")]
    async fn list_styles(&self, category: Query<Option<String>>) -> Json<StyleList> {
        let catalog = app(&self.app).plugins.catalog();
        let mut items: Vec<Style> = catalog
            .of_kind(PluginKind::StylePack)
            .flat_map(|p| styles_of(p))
            .filter(|s| category.0.as_ref().is_none_or(|c| &s.category == c))
            .collect();
        items.sort_by(|a, b| (&a.category, &a.id).cmp(&(&b.category, &b.id)));
        Json(StyleList { items, next_cursor: None })
    }

    /// Get a style template. 404 `not_found` for an unknown id.
    #[oai(path = "/v1/styles/:id", method = "get", operation_id = "get_style")]
    async fn get_style(&self, id: Path<String>) -> Result<Json<Style>, ApiError> {
        let catalog = app(&self.app).plugins.catalog();
        let (plugin, _) = catalog.style(&id).ok_or_else(|| AppError::not_found("style", &id))?;
        let style =
            styles_of(&plugin).into_iter().find(|s| s.id == *id).ok_or_else(|| AppError::not_found("style", &id))?;
        Ok(Json(style))
    }

    /// List archetypes.
    ///
    /// Use one with `archetype` on `POST /v1/generations`: it picks the ratio when none is given,
    /// steers the prompt, and (for the vector kinds) makes a transparent variant.
    #[oai(path = "/v1/archetypes", method = "get", operation_id = "list_archetypes")]
    async fn list_archetypes(&self) -> Json<ArchetypeList> {
        let catalog = app(&self.app).plugins.catalog();
        let mut items: Vec<ArchetypeItem> = catalog
            .of_kind(PluginKind::Cropper)
            .flat_map(|p| match &p.described {
                Described::Cropper(xs) => xs
                    .iter()
                    .map(|a| ArchetypeItem {
                        id: a.id.clone(),
                        name: a.name.clone(),
                        description: a.description.clone(),
                        remove_background: a.remove_background,
                        preferred_aspect_ratio: a.preferred_ratio.map(|r| format!("{}:{}", r.width, r.height)),
                        style_hint: a.style_hint.clone(),
                        prompt_suffix: a.prompt_suffix.clone(),
                        plugin: p.manifest.id.clone(),
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        Json(ArchetypeList { items, next_cursor: None })
    }

    /// List editing filters (for `POST /v1/images/{id}/edits`).
    #[oai(path = "/v1/filters", method = "get", operation_id = "list_filters")]
    async fn list_filters(&self) -> Json<FilterList> {
        let catalog = app(&self.app).plugins.catalog();
        let mut items: Vec<FilterItem> = catalog
            .of_kind(PluginKind::Filter)
            .flat_map(|p| match &p.described {
                Described::Filter(fs) => fs
                    .iter()
                    .map(|f| FilterItem {
                        id: f.id.clone(),
                        name: f.name.clone(),
                        description: f.description.clone(),
                        params_schema: json_or_empty(&f.params_schema),
                        plugin: p.manifest.id.clone(),
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        Json(FilterList { items, next_cursor: None })
    }
}
