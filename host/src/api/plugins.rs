//! `/v1/plugins`: what is loaded, from where, with which permissions; and reload.

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::problem::ApiError;
use super::{Tag, app};
use crate::error::AppError;
use crate::plugins::Catalog;
use crate::service::App;

/// Plugin administration.
pub struct PluginsApi {
    pub(crate) app: Option<App>,
}

/// Limits a plugin runs under (per call).
#[derive(Debug, Clone, Object)]
pub struct PluginLimits {
    /// Memory cap, MiB.
    pub memory_mb: u64,
    /// Time cap, ms.
    pub timeout_ms: u64,
    /// Largest HTTP response accepted, bytes.
    pub max_response_bytes: u64,
}

/// What a plugin asked for and what it was granted.
#[derive(Debug, Clone, Object)]
pub struct PluginPermissions {
    /// Outbound hosts the manifest asks for.
    pub requested_hosts: Vec<String>,
    /// Of those, the ones the operator granted (the effective permission).
    pub granted_hosts: Vec<String>,
    /// Secret names the manifest declares.
    pub requested_secrets: Vec<String>,
    /// Of those, the ones the operator configured (names only, never values).
    pub configured_secrets: Vec<String>,
}

/// A plugin, loaded or failed.
#[derive(Debug, Clone, Object)]
pub struct PluginItem {
    /// Plugin id (or folder name when the manifest could not be read).
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// `provider`, `style-pack`, `cropper` or `filter`.
    pub kind: Option<String>,
    /// The plugin's version.
    pub version: Option<String>,
    /// `bundled` or `directory`.
    pub source: String,
    /// `loaded`, `error` (not loaded) or `stale` (the new version failed; the previous one serves).
    pub status: String,
    /// Why the last load failed.
    pub last_error: Option<String>,
    /// SHA-256 of the component.
    pub sha256: Option<String>,
    /// What it offers: number of models, templates, archetypes or filters.
    pub items: u32,
    /// Permissions.
    pub permissions: Option<PluginPermissions>,
    /// Limits.
    pub limits: Option<PluginLimits>,
    /// When the serving version was loaded.
    pub loaded_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// All plugins.
#[derive(Debug, Clone, Object)]
pub struct PluginList {
    /// Loaded plugins by id, then failures.
    pub items: Vec<PluginItem>,
    /// Always null.
    pub next_cursor: Option<String>,
}

fn list(catalog: &Catalog) -> PluginList {
    let mut items: Vec<PluginItem> = catalog
        .plugins
        .values()
        .map(|p| {
            let failure = catalog.failures.iter().find(|f| f.name == p.manifest.id && f.previous_serving);
            let items = match &p.described {
                crate::plugins::Described::Provider(i) => i.models.len(),
                crate::plugins::Described::StylePack(t) => t.len(),
                crate::plugins::Described::Cropper(a) => a.len(),
                crate::plugins::Described::Filter(f) => f.len(),
            };
            PluginItem {
                id: p.manifest.id.clone(),
                name: Some(p.manifest.name.clone()),
                kind: Some(p.manifest.kind.as_str().into()),
                version: Some(p.manifest.version.clone()),
                source: p.source.as_str().into(),
                status: if failure.is_some() { "stale" } else { "loaded" }.into(),
                last_error: failure.map(|f| f.error.clone()),
                sha256: Some(p.sha256.clone()),
                items: items as u32,
                permissions: Some(PluginPermissions {
                    requested_hosts: p.manifest.permissions.allowed_outbound_hosts.clone(),
                    granted_hosts: p.granted_hosts.clone(),
                    requested_secrets: p.manifest.permissions.secrets.clone(),
                    configured_secrets: p.secret_names(),
                }),
                limits: Some(PluginLimits {
                    memory_mb: p.manifest.limits.memory_mb,
                    timeout_ms: p.manifest.limits.timeout_ms,
                    max_response_bytes: p.manifest.limits.max_response_bytes,
                }),
                loaded_at: Some(p.loaded_at),
            }
        })
        .collect();
    items.extend(catalog.failures.iter().filter(|f| !f.previous_serving).map(|f| PluginItem {
        id: f.name.clone(),
        name: None,
        kind: None,
        version: None,
        source: f.source.as_str().into(),
        status: "error".into(),
        last_error: Some(f.error.clone()),
        sha256: None,
        items: 0,
        permissions: None,
        limits: None,
        loaded_at: None,
    }));
    PluginList { items, next_cursor: None }
}

#[OpenApi(tag = "Tag::Plugins")]
impl PluginsApi {
    /// List plugins: loaded ones with their kind, version, source, permissions and limits,
    /// and those that failed to load with the reason (`status: error`, or `stale` when an
    /// older version keeps serving).
    #[oai(path = "/v1/plugins", method = "get", operation_id = "list_plugins")]
    async fn list(&self) -> Json<PluginList> {
        Json(list(&app(&self.app).plugins.catalog()))
    }

    /// Reload every plugin now (admin).
    ///
    /// The plugins directory is also watched, so this is rarely needed. Allowed to the `admin`
    /// tier and, by the default policy, to the `local` tier (loopback); 403 `forbidden` for
    /// others (and from outside `auth.admin_allowlist` when one is set).
    #[oai(path = "/v1/plugins/reload", method = "post", operation_id = "reload_plugins")]
    async fn reload(&self) -> Result<Json<PluginList>, ApiError> {
        let registry = app(&self.app).plugins.clone();
        let catalog = tokio::task::spawn_blocking(move || registry.reload())
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("reload task failed: {e}")))?;
        Ok(Json(list(&catalog)))
    }
}
