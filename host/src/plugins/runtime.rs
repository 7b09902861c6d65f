//! The wasmtime side: one `Engine`, a linker with the host imports, a cached pre-instantiated
//! component per plugin, and a fresh `Store` with memory and time limits for every call.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::manifest::PluginKind;

/// Generated from `plugin-sdk/wit`: the same files the SDK compiles against. One module per
/// world; the shared interfaces (`types`, `log`, `config`) are generated once, in `provider`.
/// The generated items are documented in the WIT files.
#[allow(missing_docs)]
pub mod bindings {
    /// The `provider-plugin` world (and the shared interfaces).
    pub mod provider {
        wasmtime::component::bindgen!({
            path: "../plugin-sdk/wit",
            world: "provider-plugin",
        });
    }

    /// The `style-pack-plugin` world.
    pub mod style_pack {
        wasmtime::component::bindgen!({
            path: "../plugin-sdk/wit",
            world: "style-pack-plugin",
            with: {
                "easel:plugin/types": super::provider::easel::plugin::types,
                "easel:plugin/log": super::provider::easel::plugin::log,
                "easel:plugin/config": super::provider::easel::plugin::config,
            },
        });
    }

    /// The `cropper-plugin` world.
    pub mod cropper {
        wasmtime::component::bindgen!({
            path: "../plugin-sdk/wit",
            world: "cropper-plugin",
            with: {
                "easel:plugin/types": super::provider::easel::plugin::types,
                "easel:plugin/log": super::provider::easel::plugin::log,
                "easel:plugin/config": super::provider::easel::plugin::config,
            },
        });
    }

    /// The `filter-plugin` world.
    pub mod filter {
        wasmtime::component::bindgen!({
            path: "../plugin-sdk/wit",
            world: "filter-plugin",
            with: {
                "easel:plugin/types": super::provider::easel::plugin::types,
                "easel:plugin/log": super::provider::easel::plugin::log,
                "easel:plugin/config": super::provider::easel::plugin::config,
            },
        });
    }
}

pub use bindings::cropper::exports::easel::plugin::cropper as cropper_abi;
pub use bindings::filter::exports::easel::plugin::filter as filter_abi;
use bindings::provider::easel::plugin as wit;
pub use bindings::provider::easel::plugin::types;
pub use bindings::provider::exports::easel::plugin::provider as abi;
pub use bindings::style_pack::exports::easel::plugin::style_pack as style_abi;

/// wasmtime has its own error type; convert at the boundary.
fn wt<T>(r: wasmtime::Result<T>) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::from)
}

/// Milliseconds between epoch ticks: the granularity of plugin deadlines.
pub const EPOCH_TICK_MS: u64 = 5;

/// Receives `progress.report` calls of one plugin call: (fraction 0..=1, stage).
pub type ProgressSink = Arc<dyn Fn(f32, &str) + Send + Sync>;

/// The shared wasmtime engine and linker.
pub struct Runtime {
    engine: Engine,
    providers: Linker<HostState>,
    style_packs: Linker<HostState>,
    croppers: Linker<HostState>,
    filters: Linker<HostState>,
    /// Whether the pooling allocator could be used (it falls back to on-demand).
    pub pooling: bool,
}

impl Runtime {
    /// Build the engine (epoch interruption; pooling allocator when the OS allows it; compiled
    /// code cached under `cache_dir` when given) and start the epoch ticker thread.
    pub fn new(cache_dir: Option<&Path>) -> anyhow::Result<Arc<Self>> {
        let (engine, pooling) = match Self::engine(cache_dir, true) {
            Ok(engine) => (engine, true),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
                (Self::engine(cache_dir, false)?, false)
            }
        };
        let base = || -> anyhow::Result<Linker<HostState>> {
            let mut linker = Linker::new(&engine);
            wt(wasmtime_wasi::p2::add_to_linker_sync(&mut linker)).context("linking WASI")?;
            Ok(linker)
        };
        let mut providers = base()?;
        wt(bindings::provider::ProviderPlugin::add_to_linker::<_, HasSelf<_>>(&mut providers, |s| s))?;
        let mut style_packs = base()?;
        wt(bindings::style_pack::StylePackPlugin::add_to_linker::<_, HasSelf<_>>(&mut style_packs, |s| s))?;
        let mut croppers = base()?;
        wt(bindings::cropper::CropperPlugin::add_to_linker::<_, HasSelf<_>>(&mut croppers, |s| s))?;
        let mut filters = base()?;
        wt(bindings::filter::FilterPlugin::add_to_linker::<_, HasSelf<_>>(&mut filters, |s| s))?;

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("easel-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(Duration::from_millis(EPOCH_TICK_MS));
                }
            })
            .context("starting the epoch thread")?;
        Ok(Arc::new(Self { engine, providers, style_packs, croppers, filters, pooling }))
    }

    fn engine(cache_dir: Option<&Path>, pooling: bool) -> anyhow::Result<Engine> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        if pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(256)
                .total_memories(256)
                .total_tables(256)
                .max_memory_size(4 << 30)
                .max_memories_per_component(4)
                .max_tables_per_component(8)
                // Keep the first 16 MiB of each pooled memory resident between calls: a fresh
                // sandbox then reuses warm pages instead of faulting in new ones (measured:
                // about half the fixed cost of a 1024x1024 filter call).
                .linear_memory_keep_resident(16 << 20)
                .table_keep_resident(1 << 16);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        if let Some(dir) = cache_dir {
            std::fs::create_dir_all(dir)?;
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            config.cache(Some(wasmtime::Cache::new(cache)?));
        }
        wt(Engine::new(&config))
    }

    /// Compile a component (served from the on-disk cache when it was compiled before).
    pub fn compile(&self, wasm: &[u8]) -> anyhow::Result<Component> {
        wt(Component::new(&self.engine, wasm))
    }

    /// Link a component of `kind` once; the result instantiates cheaply per call. Fails with
    /// a plain message when the component imports something the kind may not use or does not
    /// export the kind's interface.
    pub fn link(&self, kind: PluginKind, component: &Component) -> anyhow::Result<Linked> {
        let linker = match kind {
            PluginKind::Provider => &self.providers,
            PluginKind::StylePack => &self.style_packs,
            PluginKind::Cropper => &self.croppers,
            PluginKind::Filter => &self.filters,
        };
        let pre = wt(linker.instantiate_pre(component))
            .with_context(|| format!("the component imports something a {} plugin is not given", kind.as_str()))?;
        let exports = || format!("the component does not export the {} interface of easel:plugin@0.1.0", kind.as_str());
        Ok(match kind {
            PluginKind::Provider => {
                Linked::Provider(wt(bindings::provider::ProviderPluginPre::new(pre)).with_context(exports)?)
            }
            PluginKind::StylePack => {
                Linked::StylePack(wt(bindings::style_pack::StylePackPluginPre::new(pre)).with_context(exports)?)
            }
            PluginKind::Cropper => {
                Linked::Cropper(wt(bindings::cropper::CropperPluginPre::new(pre)).with_context(exports)?)
            }
            PluginKind::Filter => {
                Linked::Filter(wt(bindings::filter::FilterPluginPre::new(pre)).with_context(exports)?)
            }
        })
    }

    /// A fresh store for one call, with `memory_mb` and `timeout_ms` enforced.
    pub fn store(&self, ctx: CallContext) -> Store<HostState> {
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter { max_memory: ctx.memory_mb.saturating_mul(1 << 20) as usize, memory_mb: ctx.memory_mb },
            deadline: std::time::Instant::now() + Duration::from_millis(ctx.timeout_ms),
            ctx,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Check every tick (5 ms): stop when the wall-clock budget is spent, host calls
        // included (an `Interrupt` trap, reported as a timeout), or as soon as the caller
        // abandoned the call (a cancelled generation).
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            let state = ctx.data();
            if state.ctx.abandoned() {
                return Err(wasmtime::Error::msg(ABANDONED));
            }
            if std::time::Instant::now() >= state.deadline {
                return Err(wasmtime::Trap::Interrupt.into());
            }
            Ok(wasmtime::UpdateDeadline::Continue(1))
        });
        store
    }
}

/// A linked component of one kind.
pub enum Linked {
    /// A model provider.
    Provider(bindings::provider::ProviderPluginPre<HostState>),
    /// A style pack.
    StylePack(bindings::style_pack::StylePackPluginPre<HostState>),
    /// An archetype cropper.
    Cropper(bindings::cropper::CropperPluginPre<HostState>),
    /// A set of filters.
    Filter(bindings::filter::FilterPluginPre<HostState>),
}

/// Who is calling, with which settings and limits.
#[derive(Clone)]
pub struct CallContext {
    /// Plugin id, for logs.
    pub plugin_id: Arc<str>,
    /// `[plugins.<id>] config`.
    pub config: Arc<BTreeMap<String, String>>,
    /// Memory cap, MiB.
    pub memory_mb: u64,
    /// Time cap, ms.
    pub timeout_ms: u64,
    /// Where progress goes (None: dropped).
    pub progress: Option<ProgressSink>,
    /// Outbound HTTP policy (providers only; None: every fetch is denied).
    pub http: Option<Arc<super::http::HttpPolicy>>,
    /// The caller's own key for this call (`X-Provider-Key`): it replaces the plugin's first
    /// declared secret. Never stored, never logged.
    pub caller_key: Option<crate::config::Secret>,
    /// Set when the caller no longer wants the result (its future was dropped): the guest is
    /// stopped at the next epoch tick and host calls refuse to start.
    pub abandon: Arc<std::sync::atomic::AtomicBool>,
    /// The request that cancels the upstream job of this call (`http.set-cancel`), sent by
    /// the host when the call is abandoned.
    pub cancel: Arc<std::sync::Mutex<Option<super::http::WitRequest>>>,
    /// Where the provider may call back for this generation, and what wakes the call when an
    /// authentic callback arrived (`http.callback-url`, `http.await-callback`).
    pub callback: Option<CallbackSlot>,
}

/// A generation's callback URL and the signal an authentic callback raises.
#[derive(Clone)]
pub struct CallbackSlot {
    /// `{public_url}/v1/callbacks/<plugin>/<generation id>`.
    pub url: String,
    /// Notified (one stored permit) when a callback for the generation was verified.
    pub arrived: Arc<tokio::sync::Notify>,
}

/// The trap message of a call stopped because its caller abandoned it.
pub const ABANDONED: &str = "the call was abandoned by its caller";

impl CallContext {
    /// Has the caller abandoned this call?
    pub fn abandoned(&self) -> bool {
        self.abandon.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Per-call state the host imports see.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    pub(crate) ctx: CallContext,
    /// When the call's time budget ends (host calls such as HTTP get only what is left).
    pub(crate) deadline: std::time::Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps linear memory; growing past the cap traps with a message that says so.
struct Limiter {
    max_memory: usize,
    memory_mb: u64,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            return Err(wasmtime::Error::new(MemoryCapExceeded(self.memory_mb)));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The error a call fails with when it tries to use more memory than allowed.
#[derive(Debug, thiserror::Error)]
#[error("the plugin exceeded its memory limit of {0} MiB")]
pub struct MemoryCapExceeded(pub u64);

const MAX_LOG_MESSAGE: usize = 4096;

impl wit::log::Host for HostState {
    fn log(&mut self, level: wit::log::Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_MESSAGE {
            let cut = (0..=MAX_LOG_MESSAGE).rev().find(|&i| message.is_char_boundary(i)).unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        let plugin = &*self.ctx.plugin_id;
        use wit::log::Level;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl wit::config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.ctx.config.get(&key).cloned()
    }
}

impl wit::progress::Host for HostState {
    fn report(&mut self, fraction: f32, stage: String) {
        if let Some(sink) = &self.ctx.progress {
            let fraction = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
            let stage: String = stage.chars().take(64).collect();
            sink(fraction, &stage);
        }
    }
}

impl wit::types::Host for HostState {}
