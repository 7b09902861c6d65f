//! The plugin registry: loads the bundled plugins and those in the plugins directory, keeps a
//! linked, described instance-template of each, runs calls in a sandbox, and swaps in a new
//! catalog atomically on reload (calls in flight finish on the plugin they started with).

pub mod http;
pub mod manifest;
pub mod runtime;
pub mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

use crate::config::PluginsConfig;
use manifest::{Manifest, PluginKind};
use runtime::{
    CallContext, HostState, Linked, MemoryCapExceeded, ProgressSink, Runtime, abi, cropper_abi, filter_abi, style_abi,
    types,
};

/// Plugins built into the binary by `host/build.rs`.
pub mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// Where a plugin came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Embedded in the binary.
    Bundled,
    /// Loaded from this folder.
    Directory(PathBuf),
}

impl Source {
    /// `bundled` or `directory`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Bundled => "bundled",
            Self::Directory(_) => "directory",
        }
    }
}

/// What a plugin said about itself when it loaded.
#[derive(Clone, Debug)]
pub enum Described {
    /// A provider's models.
    Provider(abi::ProviderInfo),
    /// A style pack's templates.
    StylePack(Vec<style_abi::Template>),
    /// A cropper's archetypes.
    Cropper(Vec<cropper_abi::Archetype>),
    /// A filter plugin's filters.
    Filter(Vec<filter_abi::FilterInfo>),
}

/// A loaded, linked and described plugin.
pub struct Plugin {
    /// Its manifest.
    pub manifest: Manifest,
    /// Bundled or from a folder.
    pub source: Source,
    /// Hex SHA-256 of the component.
    pub sha256: String,
    /// Hex SHA-256 of `plugin.toml`, to skip unchanged plugins on reload.
    manifest_sha256: String,
    /// Effective limits and settings (manifest lowered by the operator's grant).
    call: CallContext,
    linked: Linked,
    /// What it described at load.
    pub described: Described,
    /// Effective outbound hosts (manifest patterns the operator also granted).
    pub granted_hosts: Vec<String>,
    /// When it was loaded.
    pub loaded_at: chrono::DateTime<chrono::Utc>,
    runtime: Arc<Runtime>,
    /// The operator lets it call back (`[plugins.<id>] callbacks`).
    callbacks: bool,
}

/// A plugin that failed to load, and why.
#[derive(Clone, Debug)]
pub struct LoadFailure {
    /// Plugin id when the manifest could be read, else the folder name.
    pub name: String,
    /// Where it was found.
    pub source: Source,
    /// Plain-words reason.
    pub error: String,
    /// True when an older version of the plugin keeps serving.
    pub previous_serving: bool,
}

/// Why downloading a provider's result URL failed.
#[derive(Debug, Clone)]
pub struct DownloadError {
    /// Trying again could help (timeout, connection failure, 408/429/5xx).
    pub transient: bool,
    /// What happened, naming the origin (never a key: none is sent).
    pub message: String,
}

/// Why a plugin call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with an error of its own.
    #[error("{kind}: {message}")]
    Plugin {
        /// `invalid_input`, `unsupported`, `denied`, `http`, `timeout`, `internal`,
        /// `content_blocked` or `unauthorized`.
        kind: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// A temporary upstream failure the plugin asks the host to retry.
    #[error("{message}")]
    Retryable {
        /// The upstream's words.
        message: String,
        /// How long the upstream asked to wait, in milliseconds.
        retry_after_ms: Option<u32>,
    },
    /// The plugin ran past its time limit and was stopped.
    #[error("the plugin exceeded its time limit of {0} ms and was stopped")]
    Timeout(u64),
    /// The plugin tried to use more memory than allowed.
    #[error("{0}")]
    Memory(String),
    /// The plugin trapped (panicked, hit `unreachable`, or broke the ABI).
    #[error("the plugin crashed: {0}")]
    Trap(String),
    /// The plugin is not of the kind the call needs (a host bug or a swapped plugin).
    #[error("the plugin is not a {0}")]
    WrongKind(&'static str),
}

impl CallError {
    /// A stable snake_case name for the kind of failure, from a small fixed set (the plugin's
    /// own error kinds, then `retryable`, `time_limit`, `memory_limit`, `trap`, `wrong_kind`):
    /// used as a metrics label, so it never carries the message.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Plugin { kind, .. } => kind,
            Self::Retryable { .. } => "retryable",
            Self::Timeout(_) => "time_limit",
            Self::Memory(_) => "memory_limit",
            Self::Trap(_) => "trap",
            Self::WrongKind(_) => "wrong_kind",
        }
    }
}

type Store = wasmtime::Store<HostState>;

impl Plugin {
    /// The context of one call: the plugin's limits and settings plus what varies per call.
    fn context(&self, progress: Option<ProgressSink>, caller_key: Option<crate::config::Secret>) -> CallContext {
        CallContext { progress, caller_key, abandon: Arc::default(), cancel: Arc::default(), ..self.call.clone() }
    }

    /// Does the operator let this provider call back (`[plugins.<id>] callbacks = true`)?
    pub fn takes_callbacks(&self) -> bool {
        self.callbacks
    }

    /// Run `f` in a fresh sandbox, synchronously. Every call of a plugin export goes through
    /// here, so this is where calls are counted and timed (`export` is the WIT function name).
    fn call_sync<T>(
        &self,
        export: &'static str,
        ctx: CallContext,
        f: impl FnOnce(&mut Store, &Linked) -> wasmtime::Result<Result<T, types::PluginError>>,
    ) -> Result<T, CallError> {
        let started = std::time::Instant::now();
        let mut store = self.runtime.store(ctx);
        let result = match f(&mut store, &self.linked) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(plugin_error(e)),
            Err(e) => Err(classify_trap(e, self.call.timeout_ms)),
        };
        crate::metrics::METRICS.record_plugin_call(
            &self.manifest.id,
            export,
            started.elapsed(),
            result.as_ref().err().map(CallError::code),
        );
        result
    }

    /// Run `f` in a fresh sandbox on a blocking thread.
    async fn call<T: Send + 'static>(
        self: &Arc<Self>,
        export: &'static str,
        ctx: CallContext,
        f: impl FnOnce(&mut Store, &Linked) -> wasmtime::Result<Result<T, types::PluginError>> + Send + 'static,
    ) -> Result<T, CallError> {
        /// Marks the call abandoned when the awaiting future is dropped before it finished,
        /// and sends the cancel request the plugin registered (`http.set-cancel`), if any.
        struct AbandonOnDrop(Option<CallContext>);
        impl Drop for AbandonOnDrop {
            fn drop(&mut self) {
                if let Some(ctx) = self.0.take() {
                    ctx.abandon.store(true, std::sync::atomic::Ordering::Relaxed);
                    http::send_registered_cancel(&ctx);
                }
            }
        }
        let mut guard = AbandonOnDrop(Some(ctx.clone()));
        let this = Arc::clone(self);
        // The plugin's `log` lines and its HTTP calls happen on that thread: they belong to
        // the caller's span (a job's request and generation ids).
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || span.in_scope(|| this.call_sync(export, ctx, f)))
            .await
            .unwrap_or_else(|e| Err(CallError::Trap(format!("the call's thread failed: {e}"))));
        if let Some(ctx) = guard.0.take()
            && result.is_err()
        {
            // The call failed (its time ran out, it trapped, or it gave up) while an upstream
            // job it started may still run and cost money: cancel that job too.
            http::send_registered_cancel(&ctx);
        }
        result
    }

    /// `provider.generate`; `callback` when the provider may call back for this generation.
    pub async fn generate(
        self: &Arc<Self>,
        request: abi::GenerateRequest,
        progress: Option<ProgressSink>,
        caller_key: Option<crate::config::Secret>,
        callback: Option<runtime::CallbackSlot>,
    ) -> Result<abi::GenerateResponse, CallError> {
        let ctx = CallContext { callback, ..self.context(progress, caller_key) };
        self.call("generate", ctx, move |store, linked| match linked {
            Linked::Provider(pre) => {
                pre.instantiate(&mut *store)?.easel_plugin_provider().call_generate(store, &request)
            }
            _ => Ok(Err(wrong_kind("provider"))),
        })
        .await
    }

    /// `provider.handle-callback`: is this callback authentic?
    pub async fn handle_callback(self: &Arc<Self>, callback: abi::Callback) -> Result<bool, CallError> {
        self.call("handle-callback", self.context(None, None), move |store, linked| match linked {
            Linked::Provider(pre) => {
                pre.instantiate(&mut *store)?.easel_plugin_provider().call_handle_callback(store, &callback)
            }
            _ => Ok(Err(wrong_kind("provider"))),
        })
        .await
    }

    /// `style-pack.apply`.
    pub async fn apply_style(
        self: &Arc<Self>,
        id: String,
        request: style_abi::StyleRequest,
    ) -> Result<style_abi::Styled, CallError> {
        self.call("apply", self.context(None, None), move |store, linked| match linked {
            Linked::StylePack(pre) => {
                pre.instantiate(&mut *store)?.easel_plugin_style_pack().call_apply(store, &id, &request)
            }
            _ => Ok(Err(wrong_kind("style-pack"))),
        })
        .await
    }

    /// `cropper.plan`.
    pub async fn plan_crop(
        self: &Arc<Self>,
        image: types::Image,
        target: types::AspectRatio,
        anchor: cropper_abi::Anchor,
    ) -> Result<types::Rect, CallError> {
        self.call("plan", self.context(None, None), move |store, linked| match linked {
            Linked::Cropper(pre) => {
                pre.instantiate(&mut *store)?.easel_plugin_cropper().call_plan(store, &image, target, anchor)
            }
            _ => Ok(Err(wrong_kind("cropper"))),
        })
        .await
    }

    /// `cropper.remove-background`.
    pub async fn remove_background(
        self: &Arc<Self>,
        image: types::Image,
        options_json: String,
    ) -> Result<types::Image, CallError> {
        self.call("remove-background", self.context(None, None), move |store, linked| match linked {
            Linked::Cropper(pre) => pre.instantiate(&mut *store)?.easel_plugin_cropper().call_remove_background(
                store,
                &image,
                &options_json,
            ),
            _ => Ok(Err(wrong_kind("cropper"))),
        })
        .await
    }

    /// `filter.apply`.
    pub async fn apply_filter(
        self: &Arc<Self>,
        id: String,
        image: types::Image,
        intensity: f32,
        params_json: String,
    ) -> Result<types::Image, CallError> {
        self.call("apply", self.context(None, None), move |store, linked| match linked {
            Linked::Filter(pre) => pre.instantiate(&mut *store)?.easel_plugin_filter().call_apply(
                store,
                &id,
                &image,
                intensity,
                &params_json,
            ),
            _ => Ok(Err(wrong_kind("filter"))),
        })
        .await
    }

    /// Ask the plugin to describe itself (synchronously; at load, and in benchmarks).
    pub fn describe_now(&self) -> Result<Described, CallError> {
        let export = match self.manifest.kind {
            PluginKind::Provider => "describe",
            PluginKind::StylePack => "templates",
            PluginKind::Cropper => "archetypes",
            PluginKind::Filter => "filters",
        };
        self.call_sync(export, self.context(None, None), |store, linked| {
            Ok(Ok(match linked {
                Linked::Provider(pre) => {
                    Described::Provider(pre.instantiate(&mut *store)?.easel_plugin_provider().call_describe(store)?)
                }
                Linked::StylePack(pre) => {
                    Described::StylePack(pre.instantiate(&mut *store)?.easel_plugin_style_pack().call_templates(store)?)
                }
                Linked::Cropper(pre) => {
                    Described::Cropper(pre.instantiate(&mut *store)?.easel_plugin_cropper().call_archetypes(store)?)
                }
                Linked::Filter(pre) => {
                    Described::Filter(pre.instantiate(&mut *store)?.easel_plugin_filter().call_filters(store)?)
                }
            }))
        })
    }

    /// The provider's models (empty for other kinds).
    pub fn models(&self) -> &[abi::Model] {
        match &self.described {
            Described::Provider(info) => &info.models,
            _ => &[],
        }
    }

    /// A model of this plugin by its id without the plugin prefix.
    pub fn model(&self, id: &str) -> Option<&abi::Model> {
        self.models().iter().find(|m| m.id == id)
    }

    /// Names of the secrets this plugin may use (declared and configured); never the values.
    pub fn secret_names(&self) -> Vec<String> {
        self.call.http.as_ref().map(|h| h.secrets.keys().cloned().collect()).unwrap_or_default()
    }

    /// Does this plugin need an API key (its manifest declares a secret)?
    pub fn needs_key(&self) -> bool {
        !self.manifest.permissions.secrets.is_empty()
    }

    /// Is the plugin usable with the operator's configuration alone: it needs no key, or the
    /// operator configured its first declared secret (the one `X-Provider-Key` replaces)?
    pub fn operator_key_configured(&self) -> bool {
        match self.manifest.permissions.secrets.first() {
            None => true,
            Some(primary) => self.call.http.as_ref().is_some_and(|h| h.secrets.contains_key(primary)),
        }
    }

    /// Every configured secret value of this plugin, to scrub from provider messages.
    pub fn secret_values(&self) -> Vec<crate::config::Secret> {
        self.call.http.as_ref().map(|h| h.secrets.values().cloned().collect()).unwrap_or_default()
    }

    /// Download an image URL a provider returned, under this plugin's HTTP rules (allowed
    /// hosts, no private addresses unless granted, `max_response_bytes`), with no secret and
    /// within `budget`. Returns the body of a 2xx answer, or why not and whether trying again
    /// could help (timeouts, connection failures, 408/429/5xx).
    pub async fn download(&self, url: &str, budget: std::time::Duration) -> Result<Vec<u8>, DownloadError> {
        let refused = |message: String| DownloadError { transient: false, message };
        let policy = self.call.http.clone().ok_or_else(|| refused("this plugin may not make HTTP requests".into()))?;
        if url.contains("{{") {
            return Err(refused("image URLs may not carry secrets".into()));
        }
        let request = http::WitRequest {
            method: "GET".into(),
            url: url.to_string(),
            headers: vec![("accept".into(), "image/png, image/jpeg, image/webp".into())],
            body: None,
            timeout_ms: None,
        };
        let response = policy.execute(request, budget, None).await.map_err(|e| DownloadError {
            transient: matches!(e, http::HttpFailure::Timeout(_) | http::HttpFailure::Transport(_)),
            message: http::describe_error(&e),
        })?;
        if !(200..300).contains(&response.status) {
            return Err(DownloadError {
                transient: matches!(response.status, 408 | 429 | 500..=599),
                message: format!("downloading the image answered HTTP {}", response.status),
            });
        }
        Ok(response.body)
    }

    /// Probe whether the provider's API answers: one `GET` of each effective non-wildcard
    /// outbound origin under the plugin's rules, 5 s at most. Any HTTP answer counts as
    /// reachable. None when there is nothing to probe (no HTTP, or only wildcard hosts).
    pub async fn probe(&self) -> Option<bool> {
        let policy = self.call.http.clone()?;
        let origin = self.granted_hosts.iter().find(|h| !h.contains('*'))?.clone();
        let request = http::WitRequest {
            method: "GET".into(),
            url: format!("{origin}/"),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        };
        Some(policy.execute(request, std::time::Duration::from_secs(5), None).await.is_ok())
    }
}

fn wrong_kind(kind: &'static str) -> types::PluginError {
    types::PluginError::Internal(CallError::WrongKind(kind).to_string())
}

fn plugin_error(e: types::PluginError) -> CallError {
    use types::PluginError as E;
    let (kind, message) = match e {
        E::InvalidInput(m) => ("invalid_input", m),
        E::Unsupported(m) => ("unsupported", m),
        E::Denied(m) => ("denied", m),
        E::Http(m) => ("http", m),
        E::Timeout(m) => ("timeout", m),
        E::Internal(m) => ("internal", m),
        E::ContentBlocked(m) => ("content_blocked", m),
        E::Unauthorized(m) => ("unauthorized", m),
        E::Retryable(hint) => {
            return CallError::Retryable {
                message: hint.message.chars().take(2000).collect(),
                retry_after_ms: hint.retry_after_ms,
            };
        }
    };
    CallError::Plugin { kind, message: message.chars().take(2000).collect() }
}

fn classify_trap(e: wasmtime::Error, timeout_ms: u64) -> CallError {
    if let Some(cap) = e.downcast_ref::<MemoryCapExceeded>() {
        return CallError::Memory(cap.to_string());
    }
    if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
        return CallError::Timeout(timeout_ms);
    }
    // The root cause is the trap; the chain above it is wasmtime's backtrace.
    let root = e.root_cause().to_string();
    if root.contains("memory limit") {
        return CallError::Memory(root);
    }
    CallError::Trap(root.lines().next().unwrap_or("trap").to_string())
}

/// One consistent view of the loaded plugins.
#[derive(Default)]
pub struct Catalog {
    /// By plugin id.
    pub plugins: BTreeMap<String, Arc<Plugin>>,
    /// Plugins that failed to load at the last (re)load.
    pub failures: Vec<LoadFailure>,
}

impl Catalog {
    /// Plugins of one kind, by id.
    pub fn of_kind(&self, kind: PluginKind) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values().filter(move |p| p.manifest.kind == kind)
    }

    /// The style template with this id, and the pack that has it.
    pub fn style(&self, id: &str) -> Option<(Arc<Plugin>, style_abi::Template)> {
        self.of_kind(PluginKind::StylePack).find_map(|p| match &p.described {
            Described::StylePack(ts) => ts.iter().find(|t| t.id == id).map(|t| (Arc::clone(p), t.clone())),
            _ => None,
        })
    }

    /// The archetype with this id, and the cropper that has it.
    pub fn archetype(&self, id: &str) -> Option<(Arc<Plugin>, cropper_abi::Archetype)> {
        self.of_kind(PluginKind::Cropper).find_map(|p| match &p.described {
            Described::Cropper(xs) => xs.iter().find(|a| a.id == id).map(|a| (Arc::clone(p), a.clone())),
            _ => None,
        })
    }

    /// The cropper used when a request names no archetype: `archetypes` if loaded, else any.
    pub fn default_cropper(&self) -> Option<Arc<Plugin>> {
        self.plugins
            .get("archetypes")
            .filter(|p| p.manifest.kind == PluginKind::Cropper)
            .or_else(|| self.of_kind(PluginKind::Cropper).next())
            .cloned()
    }

    /// The filter with this id, and the plugin that has it.
    pub fn filter(&self, id: &str) -> Option<(Arc<Plugin>, filter_abi::FilterInfo)> {
        self.of_kind(PluginKind::Filter).find_map(|p| match &p.described {
            Described::Filter(fs) => fs.iter().find(|f| f.id == id).map(|f| (Arc::clone(p), f.clone())),
            _ => None,
        })
    }
}

/// All plugins known to this process.
pub struct Registry {
    runtime: Arc<Runtime>,
    config: PluginsConfig,
    dir: PathBuf,
    state: ArcSwap<Catalog>,
    reload_lock: std::sync::Mutex<()>,
    /// The runtime that performs plugins' HTTP requests (None outside a runtime: no HTTP).
    handle: Option<tokio::runtime::Handle>,
    /// The directory watcher, when hot reload is on.
    watcher: std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// The last reachability probe of each remote provider: (answered, when).
    probes: std::sync::Mutex<BTreeMap<String, (bool, chrono::DateTime<chrono::Utc>)>>,
}

/// Whether a provider plugin can serve: keys configured, upstream reachable. Never a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderStatus {
    /// The plugin needs an API key (its manifest declares a secret).
    pub needs_key: bool,
    /// It can serve with the server's configuration alone (no key needed, or the operator's
    /// key is configured). When false, callers bring their own key (`X-Provider-Key`).
    pub configured: bool,
    /// The last probe of its API: an HTTP answer came back (true) or not (false); None when
    /// never probed (local plugins, or no key configured).
    pub reachable: Option<bool>,
    /// When that probe ran.
    pub checked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Registry {
    /// Load every plugin: bundled ones first, then the folders in `dir` (a folder plugin with
    /// the id of a bundled one replaces it). Failures are recorded, not fatal.
    pub fn load(runtime: Arc<Runtime>, config: PluginsConfig, dir: PathBuf) -> Arc<Self> {
        let registry = Arc::new(Self {
            runtime,
            config,
            dir,
            state: ArcSwap::from_pointee(Catalog::default()),
            reload_lock: std::sync::Mutex::new(()),
            handle: tokio::runtime::Handle::try_current().ok(),
            watcher: std::sync::Mutex::new(None),
            probes: std::sync::Mutex::new(BTreeMap::new()),
        });
        registry.reload();
        registry
    }

    /// The folder scanned for plugins.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-read every plugin and swap the catalog in one step. Unchanged plugins are kept as
    /// they are; a plugin whose new version fails keeps its old version serving.
    pub fn reload(&self) -> Arc<Catalog> {
        let _guard = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.catalog();
        let mut catalog = Catalog::default();
        if self.config.bundled {
            for (name, manifest, wasm) in bundled::BUNDLED {
                let reuse = old.plugins.values().find(|p| {
                    p.source == Source::Bundled && p.manifest_sha256 == hex::encode(Sha256::digest(manifest.as_bytes()))
                });
                let result = match reuse {
                    Some(p) => Ok(Arc::clone(p)),
                    None => self.load_one(manifest, wasm, Source::Bundled).map(Arc::new),
                };
                match result {
                    Ok(p) => {
                        catalog.plugins.insert(p.manifest.id.clone(), p);
                    }
                    Err(e) => catalog.failures.push(LoadFailure {
                        name: name.to_string(),
                        source: Source::Bundled,
                        error: format!("{e:#}"),
                        previous_serving: false,
                    }),
                }
            }
        }
        for folder in plugin_folders(&self.dir) {
            let previous = old.plugins.values().find(|p| p.source == Source::Directory(folder.clone())).cloned();
            match self.load_folder(&folder, previous.as_ref()) {
                Ok(p) => {
                    if let Some(existing) = catalog.plugins.get(&p.manifest.id)
                        && existing.source != Source::Bundled
                    {
                        catalog.failures.push(LoadFailure {
                            name: p.manifest.id.clone(),
                            source: Source::Directory(folder.clone()),
                            error: format!("another folder already provides plugin id {:?}", p.manifest.id),
                            previous_serving: false,
                        });
                        continue;
                    }
                    catalog.plugins.insert(p.manifest.id.clone(), p);
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    let name = previous.as_ref().map(|p| p.manifest.id.clone()).unwrap_or_else(|| {
                        folder.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
                    });
                    tracing::warn!(plugin = %name, %error, "plugin failed to load");
                    let previous_serving = previous.is_some();
                    if let Some(p) = previous {
                        catalog.plugins.insert(p.manifest.id.clone(), p);
                    }
                    catalog.failures.push(LoadFailure {
                        name,
                        source: Source::Directory(folder.clone()),
                        error,
                        previous_serving,
                    });
                }
            }
        }
        for p in catalog.plugins.values() {
            if !old.plugins.get(&p.manifest.id).is_some_and(|o| Arc::ptr_eq(o, p)) {
                tracing::info!(
                    plugin = %p.manifest.id, kind = p.manifest.kind.as_str(), version = %p.manifest.version,
                    source = p.source.as_str(), "plugin loaded"
                );
            }
        }
        for id in old.plugins.keys().filter(|id| !catalog.plugins.contains_key(*id)) {
            tracing::info!(plugin = %id, "plugin removed");
        }
        let catalog = Arc::new(catalog);
        self.state.store(Arc::clone(&catalog));
        catalog
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.state.load_full()
    }

    /// Keys and reachability of one provider plugin.
    pub fn provider_status(&self, plugin: &Plugin) -> ProviderStatus {
        let probe = self.probes.lock().unwrap_or_else(|e| e.into_inner()).get(&plugin.manifest.id).copied();
        ProviderStatus {
            needs_key: plugin.needs_key(),
            configured: plugin.operator_key_configured(),
            reachable: probe.map(|(ok, _)| ok),
            checked_at: probe.map(|(_, at)| at),
        }
    }

    /// Probe every configured remote provider now and then every `every`: one `GET` of its
    /// API origin (5 s at most, under its HTTP rules); any HTTP answer means reachable.
    /// Providers without a configured key are not probed (nothing could be served anyway).
    pub fn start_probes(self: &Arc<Self>, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let registry = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(this) = registry.upgrade() else { return };
                let catalog = this.catalog();
                for plugin in catalog.of_kind(PluginKind::Provider) {
                    if !plugin.needs_key() || !plugin.operator_key_configured() {
                        continue;
                    }
                    if let Some(ok) = plugin.probe().await {
                        if !ok {
                            tracing::warn!(plugin = %plugin.manifest.id, "the provider's API did not answer a probe");
                        }
                        this.probes
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(plugin.manifest.id.clone(), (ok, chrono::Utc::now()));
                    }
                }
                drop((catalog, this));
                tokio::time::sleep(every).await;
            }
        })
    }

    /// Find `provider/model`: the plugin and the model's description.
    pub fn find_model(&self, full_id: &str) -> Option<(Arc<Plugin>, abi::Model)> {
        let (plugin_id, model_id) = full_id.split_once('/')?;
        let plugin = self.catalog().plugins.get(plugin_id)?.clone();
        let model = plugin.model(model_id)?.clone();
        Some((plugin, model))
    }

    fn load_folder(&self, folder: &Path, previous: Option<&Arc<Plugin>>) -> anyhow::Result<Arc<Plugin>> {
        let manifest_path = folder.join("plugin.toml");
        let text =
            std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?;
        let manifest = Manifest::parse(&text)?;
        let wasm_path = folder.join(&manifest.wasm);
        let wasm = std::fs::read(&wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
        if let Some(p) = previous
            && p.sha256 == hex::encode(Sha256::digest(&wasm))
            && p.manifest_sha256 == hex::encode(Sha256::digest(text.as_bytes()))
        {
            return Ok(Arc::clone(p));
        }
        self.load_one(&text, &wasm, Source::Directory(folder.to_path_buf())).map(Arc::new)
    }

    /// Validate, compile, link and describe one plugin.
    pub fn load_one(&self, manifest_text: &str, wasm: &[u8], source: Source) -> anyhow::Result<Plugin> {
        let manifest = Manifest::parse(manifest_text)?;
        let grant = self.config.grants.get(&manifest.id).cloned().unwrap_or_default();
        if grant.disabled {
            anyhow::bail!("disabled by the operator ([plugins.{}] disabled = true)", manifest.id);
        }
        let sha256 = hex::encode(Sha256::digest(wasm));
        if let Some(expected) = &manifest.sha256
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            anyhow::bail!("{} has sha256 {sha256}, but plugin.toml says {expected}", manifest.wasm);
        }
        check_abi_stamp(wasm)?;
        let component = self.runtime.compile(wasm).with_context(|| format!("compiling {}", manifest.wasm))?;
        let linked = self.runtime.link(manifest.kind, &component)?;
        let (http, granted_hosts) = self.http_policy(&manifest, &grant)?;
        let call = CallContext {
            plugin_id: manifest.id.as_str().into(),
            config: Arc::new(grant.config.clone()),
            memory_mb: grant.memory_mb.map_or(manifest.limits.memory_mb, |m| m.min(manifest.limits.memory_mb)),
            timeout_ms: grant.timeout_ms.map_or(manifest.limits.timeout_ms, |t| t.min(manifest.limits.timeout_ms)),
            progress: None,
            http,
            caller_key: None,
            abandon: Arc::default(),
            cancel: Arc::default(),
            callback: None,
        };
        let mut plugin = Plugin {
            manifest_sha256: hex::encode(Sha256::digest(manifest_text.as_bytes())),
            manifest,
            source,
            sha256,
            call,
            linked,
            described: Described::Filter(Vec::new()),
            granted_hosts,
            loaded_at: chrono::Utc::now(),
            runtime: Arc::clone(&self.runtime),
            callbacks: grant.callbacks,
        };
        plugin.described = plugin.describe_now().context("describing itself failed")?;
        validate_described(&plugin.described)?;
        Ok(plugin)
    }

    fn http_policy(
        &self,
        manifest: &Manifest,
        grant: &crate::config::PluginGrant,
    ) -> anyhow::Result<(Option<Arc<http::HttpPolicy>>, Vec<String>)> {
        let asked = &manifest.permissions.allowed_outbound_hosts;
        if manifest.kind != PluginKind::Provider {
            anyhow::ensure!(
                asked.is_empty() && manifest.permissions.secrets.is_empty(),
                "only provider plugins may ask for outbound hosts or secrets"
            );
            return Ok((None, Vec::new()));
        }
        let parse = |list: &[String], what: &str| -> anyhow::Result<Vec<http::HostPattern>> {
            list.iter().map(|s| http::HostPattern::parse(s).map_err(|e| anyhow::anyhow!("{what}: {e}"))).collect()
        };
        let asked = expand_config_hosts(asked, &grant.config)?;
        let asked_patterns = parse(&asked, "permissions.allowed_outbound_hosts")?;
        let granted_patterns = parse(&grant.allowed_outbound_hosts, "the operator's allowed_outbound_hosts")?;
        let effective: Vec<String> = asked
            .iter()
            .zip(&asked_patterns)
            .filter(|(text, pattern)| {
                grant.allowed_outbound_hosts.iter().zip(&granted_patterns).any(|(g, gp)| g == *text || gp == *pattern)
            })
            .map(|(text, _)| text.clone())
            .collect();
        // Names match without regard to case: `EASEL_PLUGINS__X__SECRETS__API_KEY` arrives
        // lower-cased from the environment. Each is stored under the manifest's spelling.
        // An empty value (an unset variable interpolated by Compose) is no key at all.
        let secrets = grant
            .secrets
            .iter()
            .filter(|(_, v)| !v.expose().trim().is_empty())
            .filter_map(|(k, v)| {
                let declared = manifest.permissions.secrets.iter().find(|d| d.eq_ignore_ascii_case(k))?;
                Some((declared.clone(), v.clone()))
            })
            .collect();
        let Some(handle) = self.handle.clone() else { return Ok((None, effective)) };
        Ok((
            Some(Arc::new(http::HttpPolicy {
                asked: asked_patterns,
                granted: granted_patterns,
                allow_private_ips: grant.allow_private_ips,
                declared_secrets: manifest.permissions.secrets.clone(),
                secrets,
                max_response_bytes: manifest.limits.max_response_bytes,
                handle,
                any_host: false,
                private_origins: Vec::new(),
                client: Default::default(),
                private_client: Default::default(),
            })),
            effective,
        ))
    }
}

/// Expand manifest entries of the form `{{config:KEY}}` to the origin (`scheme://host[:port]`)
/// of the operator's setting KEY, so a plugin with a configurable base URL can ask for
/// whatever the operator points it at (a LocalAI server, a test fixture). Unset keys drop
/// the entry. The operator still has to grant the origin: effective = asked ∩ granted.
fn expand_config_hosts(asked: &[String], config: &BTreeMap<String, String>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::with_capacity(asked.len());
    for entry in asked {
        let Some(key) = entry.strip_prefix("{{config:").and_then(|r| r.strip_suffix("}}")) else {
            out.push(entry.clone());
            continue;
        };
        let Some(value) = config.get(key.trim()) else { continue };
        let url = reqwest::Url::parse(value).map_err(|e| {
            anyhow::anyhow!("config.{key} = {value:?} is not a URL ({e}); the manifest asks to reach it")
        })?;
        let host = url.host_str().ok_or_else(|| anyhow::anyhow!("config.{key} = {value:?} has no host"))?;
        anyhow::ensure!(
            url.scheme() == "http" || url.scheme() == "https",
            "config.{key} = {value:?} must be an http or https URL"
        );
        out.push(match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        });
    }
    Ok(out)
}

/// Refuse components built for another ABI before compiling them: a component built with the
/// SDK names its interfaces `easel:plugin/<interface>@<version>` in its type information.
fn check_abi_stamp(wasm: &[u8]) -> anyhow::Result<()> {
    anyhow::ensure!(wasm.starts_with(b"\0asm"), "not a WebAssembly file");
    anyhow::ensure!(
        wasm.get(4..8) == Some(&[0x0d, 0x00, 0x01, 0x00][..]),
        "not a WebAssembly component (core modules are not plugins; build for wasm32-wasip2)"
    );
    let prefix = b"easel:plugin/";
    let stamp = format!("@{}", manifest::API_VERSION);
    let mut seen = false;
    for (i, _) in wasm.windows(prefix.len()).enumerate().filter(|(_, w)| *w == prefix) {
        seen = true;
        let tail = &wasm[i + prefix.len()..wasm.len().min(i + prefix.len() + 64)];
        let end = tail.iter().position(|b| !(b.is_ascii_alphanumeric() || b"-@.".contains(b))).unwrap_or(tail.len());
        if tail[..end].ends_with(stamp.as_bytes()) {
            return Ok(());
        }
    }
    anyhow::ensure!(seen, "the component does not implement any easel:plugin interface");
    anyhow::bail!(
        "the component was built for another version of the easel:plugin ABI; this Easel speaks {}",
        manifest::API_VERSION
    )
}

fn validate_described(described: &Described) -> anyhow::Result<()> {
    let id_ok = |id: &str| {
        !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
    };
    match described {
        Described::Provider(info) => {
            for m in &info.models {
                anyhow::ensure!(id_ok(&m.id), "describe(): model id {:?} must be 1-128 of a-z A-Z 0-9 - _ . / :", m.id);
                anyhow::ensure!(m.max_n >= 1, "describe(): model {} has max_n 0", m.id);
                anyhow::ensure!(
                    m.any_size || !m.native_sizes.is_empty(),
                    "describe(): model {} has neither any_size nor native sizes",
                    m.id
                );
                anyhow::ensure!(
                    !m.any_size || (m.min_side >= 1 && m.min_side <= m.max_side),
                    "describe(): model {} has an empty size range",
                    m.id
                );
            }
        }
        Described::StylePack(ts) => {
            for t in ts {
                anyhow::ensure!(id_ok(&t.id), "templates(): bad template id {:?}", t.id);
                anyhow::ensure!(
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&t.defaults_json).is_ok(),
                    "templates(): {} has defaults-json that is not a JSON object",
                    t.id
                );
            }
        }
        Described::Cropper(xs) => {
            for a in xs {
                anyhow::ensure!(id_ok(&a.id), "archetypes(): bad archetype id {:?}", a.id);
            }
        }
        Described::Filter(fs) => {
            for f in fs {
                anyhow::ensure!(id_ok(&f.id), "filters(): bad filter id {:?}", f.id);
            }
        }
    }
    Ok(())
}

/// Sub-folders of `dir` that hold a `plugin.toml`, sorted by name.
pub fn plugin_folders(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut folders: Vec<_> = entries.flatten().map(|e| e.path()).filter(|p| p.join("plugin.toml").is_file()).collect();
    folders.sort();
    folders
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_host_entries_expand_to_the_configured_origin() {
        let asked = vec!["https://api.openai.com".to_string(), "{{config:base_url}}".to_string()];
        let none = BTreeMap::new();
        assert_eq!(expand_config_hosts(&asked, &none).unwrap(), vec!["https://api.openai.com"]);
        let local = BTreeMap::from([("base_url".to_string(), "http://127.0.0.1:8081/v1/".to_string())]);
        assert_eq!(
            expand_config_hosts(&asked, &local).unwrap(),
            vec!["https://api.openai.com", "http://127.0.0.1:8081"]
        );
        let plain = BTreeMap::from([("base_url".to_string(), "https://llm.example.com".to_string())]);
        assert_eq!(expand_config_hosts(&asked[1..], &plain).unwrap(), vec!["https://llm.example.com"]);
        for bad in ["not a url", "ftp://files.example.com", "file:///etc/passwd"] {
            let config = BTreeMap::from([("base_url".to_string(), bad.to_string())]);
            assert!(expand_config_hosts(&asked, &config).is_err(), "{bad}");
        }
    }
}
