//! The plugin registry: loads the bundled plugins and those in the plugins directory, keeps a
//! linked, described instance-template of each, and runs calls in a sandbox.

pub mod manifest;
pub mod runtime;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::config::PluginsConfig;
use manifest::{Manifest, PluginKind};
use runtime::{CallContext, HostState, MemoryCapExceeded, ProgressSink, Runtime, abi, bindings};

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

/// A loaded, linked and described plugin.
pub struct Plugin {
    /// Its manifest.
    pub manifest: Manifest,
    /// Bundled or from a folder.
    pub source: Source,
    /// Hex SHA-256 of the component.
    pub sha256: String,
    /// Effective limits and settings (manifest lowered by the operator's grant).
    call: CallContext,
    pre: bindings::ProviderPluginPre<HostState>,
    /// What `describe` returned at load.
    pub info: abi::ProviderInfo,
    runtime: Arc<Runtime>,
}

/// A plugin that failed to load, and why.
#[derive(Clone, Debug)]
pub struct LoadFailure {
    /// Folder name (or id when known).
    pub name: String,
    /// Where it was found.
    pub source: Source,
    /// Plain-words reason.
    pub error: String,
}

/// Why a plugin call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with an error of its own.
    #[error("{kind}: {message}")]
    Plugin {
        /// `invalid_input`, `unsupported`, `denied`, `http`, `timeout` or `internal`.
        kind: &'static str,
        /// The plugin's message.
        message: String,
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
}

impl Plugin {
    fn context(&self, progress: Option<ProgressSink>) -> CallContext {
        CallContext { progress, ..self.call.clone() }
    }

    /// Run `generate` in a fresh sandbox on a blocking thread.
    pub async fn generate(
        self: &Arc<Self>,
        request: abi::GenerateRequest,
        progress: Option<ProgressSink>,
    ) -> Result<abi::GenerateResponse, CallError> {
        let this = Arc::clone(self);
        let timeout_ms = self.call.timeout_ms;
        tokio::task::spawn_blocking(move || {
            let mut store = this.runtime.store(this.context(progress));
            let result = this
                .pre
                .instantiate(&mut store)
                .and_then(|instance| instance.easel_plugin_provider().call_generate(&mut store, &request));
            match result {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(e)) => Err(plugin_error(e)),
                Err(e) => Err(classify_trap(e, timeout_ms)),
            }
        })
        .await
        .unwrap_or_else(|e| Err(CallError::Trap(format!("the call's thread failed: {e}"))))
    }

    /// Run `describe` in a fresh sandbox (synchronously; used at load and by benchmarks).
    pub fn describe_now(&self) -> Result<abi::ProviderInfo, CallError> {
        let mut store = self.runtime.store(self.context(None));
        self.pre
            .instantiate(&mut store)
            .and_then(|instance| instance.easel_plugin_provider().call_describe(&mut store))
            .map_err(|e| classify_trap(e, self.call.timeout_ms))
    }

    /// A model of this plugin by its id without the plugin prefix.
    pub fn model(&self, id: &str) -> Option<&abi::Model> {
        self.info.models.iter().find(|m| m.id == id)
    }
}

fn plugin_error(e: bindings::easel::plugin::types::PluginError) -> CallError {
    use bindings::easel::plugin::types::PluginError as E;
    let (kind, message) = match e {
        E::InvalidInput(m) => ("invalid_input", m),
        E::Unsupported(m) => ("unsupported", m),
        E::Denied(m) => ("denied", m),
        E::Http(m) => ("http", m),
        E::Timeout(m) => ("timeout", m),
        E::Internal(m) => ("internal", m),
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

/// All plugins known to this process.
pub struct Registry {
    runtime: Arc<Runtime>,
    config: PluginsConfig,
    dir: PathBuf,
    state: ArcSwap<Catalog>,
}

/// One consistent view of the loaded plugins.
#[derive(Default)]
pub struct Catalog {
    /// By plugin id.
    pub plugins: BTreeMap<String, Arc<Plugin>>,
    /// Plugins that failed to load.
    pub failures: Vec<LoadFailure>,
}

impl Registry {
    /// Load every plugin: bundled ones first, then the folders in `dir` (a folder plugin with
    /// the id of a bundled one replaces it). Failures are recorded, not fatal.
    pub fn load(runtime: Arc<Runtime>, config: PluginsConfig, dir: PathBuf) -> Arc<Self> {
        let registry = Arc::new(Self { runtime, config, dir, state: ArcSwap::from_pointee(Catalog::default()) });
        registry.reload();
        registry
    }

    /// Re-read every plugin and swap the catalog in one step.
    pub fn reload(&self) {
        let mut catalog = Catalog::default();
        if self.config.bundled {
            for (name, manifest, wasm) in bundled::BUNDLED {
                match self.load_one(manifest, wasm, Source::Bundled) {
                    Ok(p) => {
                        catalog.plugins.insert(p.manifest.id.clone(), Arc::new(p));
                    }
                    Err(e) => catalog.failures.push(LoadFailure {
                        name: name.to_string(),
                        source: Source::Bundled,
                        error: format!("{e:#}"),
                    }),
                }
            }
        }
        for folder in plugin_folders(&self.dir) {
            let name = folder.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            match self.load_folder(&folder) {
                Ok(p) => {
                    if let Some(old) = catalog.plugins.get(&p.manifest.id) {
                        tracing::info!(plugin = %p.manifest.id, replaced = old.source.as_str(), "plugin folder overrides");
                    }
                    catalog.plugins.insert(p.manifest.id.clone(), Arc::new(p));
                }
                Err(e) => {
                    tracing::warn!(plugin = %name, error = %format!("{e:#}"), "plugin failed to load");
                    catalog.failures.push(LoadFailure {
                        name,
                        source: Source::Directory(folder.clone()),
                        error: format!("{e:#}"),
                    });
                }
            }
        }
        for p in catalog.plugins.values() {
            tracing::info!(
                plugin = %p.manifest.id, version = %p.manifest.version, source = p.source.as_str(),
                models = p.info.models.len(), "plugin loaded"
            );
        }
        self.state.store(Arc::new(catalog));
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.state.load_full()
    }

    /// Find `provider/model`: the plugin and the model's description.
    pub fn find_model(&self, full_id: &str) -> Option<(Arc<Plugin>, abi::Model)> {
        let (plugin_id, model_id) = full_id.split_once('/')?;
        let plugin = self.catalog().plugins.get(plugin_id)?.clone();
        let model = plugin.model(model_id)?.clone();
        Some((plugin, model))
    }

    fn load_folder(&self, folder: &Path) -> anyhow::Result<Plugin> {
        let manifest_path = folder.join("plugin.toml");
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        let manifest = Manifest::parse(&text)?;
        let wasm_path = folder.join(&manifest.wasm);
        let wasm = std::fs::read(&wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
        self.load_one(&text, &wasm, Source::Directory(folder.to_path_buf()))
    }

    fn load_one(&self, manifest_text: &str, wasm: &[u8], source: Source) -> anyhow::Result<Plugin> {
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
        let PluginKind::Provider = manifest.kind;
        let component = self.runtime.compile(wasm).with_context(|| format!("compiling {}", manifest.wasm))?;
        let pre = self.runtime.provider(&component)?;
        let call = CallContext {
            plugin_id: manifest.id.as_str().into(),
            config: Arc::new(grant.config.clone()),
            memory_mb: grant.memory_mb.map_or(manifest.limits.memory_mb, |m| m.min(manifest.limits.memory_mb)),
            timeout_ms: grant.timeout_ms.map_or(manifest.limits.timeout_ms, |t| t.min(manifest.limits.timeout_ms)),
            progress: None,
        };
        let mut plugin = Plugin {
            manifest,
            source,
            sha256,
            call,
            pre,
            info: abi::ProviderInfo { models: Vec::new() },
            runtime: Arc::clone(&self.runtime),
        };
        plugin.info = plugin.describe_now().context("describe() failed")?;
        validate_models(&plugin.info)?;
        Ok(plugin)
    }
}

fn validate_models(info: &abi::ProviderInfo) -> anyhow::Result<()> {
    for m in &info.models {
        let ok = !m.id.is_empty()
            && m.id.len() <= 128
            && m.id.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c));
        anyhow::ensure!(ok, "describe(): model id {:?} must be 1-128 of a-z A-Z 0-9 - _ . / :", m.id);
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
    Ok(())
}

/// Sub-folders of `dir` that hold a `plugin.toml`, sorted by name.
fn plugin_folders(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut folders: Vec<_> =
        entries.flatten().map(|e| e.path()).filter(|p| p.join("plugin.toml").is_file()).collect();
    folders.sort();
    folders
}
