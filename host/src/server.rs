//! Start-up wiring: open the database and blob store, load plugins, start workers, serve HTTP.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpListener};

use crate::blobs::BlobStore;
use crate::config::Config;
use crate::plugins::Registry;
use crate::plugins::runtime::Runtime;
use crate::service::App;

/// Build the application state from a configuration.
pub async fn build_app(mut config: Config) -> anyhow::Result<App> {
    // `Config::load` already did this; a configuration built in code gets the same treatment.
    if let Ok(cwd) = std::env::current_dir() {
        config.resolve_paths(&cwd);
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let db = crate::db::connect(&config).await?;
    let blobs = BlobStore::open(&config)?;
    let cache_dir = config.plugins.compile_cache.then(|| config.data_dir.join("cache").join("plugins"));
    let runtime = Runtime::new(cache_dir.as_deref())?;
    let plugins_dir = config.plugins_dir();
    std::fs::create_dir_all(&plugins_dir).ok();
    let plugins_config = config.plugins.clone();
    let registry = tokio::task::spawn_blocking(move || Registry::load(runtime, plugins_config, plugins_dir)).await?;
    if config.plugins.watch
        && let Err(e) = registry.watch()
    {
        tracing::warn!(error = %format!("{e:#}"), "cannot watch the plugins directory; use POST /v1/plugins/reload");
    }
    for failure in &registry.catalog().failures {
        tracing::warn!(plugin = %failure.name, error = %failure.error, "plugin not loaded");
    }
    warn_about_unknown_defaults(&config, &registry);
    let auth = Arc::new(crate::auth::Auth::new(&config, db.as_ref()).await?);
    let config = Arc::new(config);
    if config.plugins.watch
        && let Err(e) = auth.policies.watch(Arc::clone(&config))
    {
        tracing::warn!(error = %format!("{e:#}"), "cannot watch the policy files; restart to apply policy changes");
    }
    let (events, _) = tokio::sync::broadcast::channel(1024);
    Ok(App {
        config,
        db,
        auth,
        blobs,
        plugins: registry,
        events,
        wake: Arc::new(tokio::sync::Notify::new()),
        caller_keys: Arc::default(),
        callbacks: Arc::default(),
        replica_id: crate::service::new_id("rep"),
    })
}

/// Log the server-wide defaults that name a model, style or archetype no loaded plugin
/// offers: they can only be checked once plugins load, and a plugin may still arrive later.
fn warn_about_unknown_defaults(config: &Config, registry: &Registry) {
    let model = config.default_model();
    if registry.find_model(model).is_none() {
        tracing::warn!(model, "defaults.model names no loaded model; requests without a model will be refused");
    }
    let catalog = registry.catalog();
    if let Some(style) = config.defaults.style.as_deref()
        && catalog.style(style).is_none()
    {
        tracing::warn!(style, "defaults.style names no loaded style template; it is skipped until one does");
    }
    if let Some(archetype) = config.defaults.archetype.as_deref()
        && catalog.archetype(archetype).is_none()
    {
        tracing::warn!(archetype, "defaults.archetype names no loaded archetype; it is skipped until one does");
    }
}

/// A server running in this process: its address, its state, and a handle to stop it.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: std::net::SocketAddr,
    /// The application state.
    pub app: App,
    stop: Arc<tokio::sync::Notify>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    relays: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stop accepting requests, let requests in flight finish (10 s at most), stop the workers.
    pub async fn stop(self) {
        self.stop.notify_waiters();
        self.stop.notify_one();
        let _ = self.server.await;
        for w in self.workers {
            let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
        }
        for r in self.relays {
            r.abort();
        }
        // Jobs pinned to this replica (callers' keys die with it) go to the others at once.
        if let Err(e) = self.app.db.replica_gone(&self.app.replica_id).await {
            tracing::warn!(error = ?e, "could not sign this replica off");
        }
    }

    /// Wait until the HTTP server ends (it ends only through [`Running::stop`] or an error).
    async fn until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        self.stop().await;
        Ok(())
    }
}

/// Open everything, bind the listener, start the workers and serve in the background.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let listen = config.listen;
    let app = build_app(config).await?;
    // Bind first: a server that cannot listen starts no workers or background tasks.
    let acceptor =
        TcpListener::bind(listen).into_acceptor().await.with_context(|| format!("cannot listen on {listen}"))?;
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut relays = app.start_signal_relay().await?;
    relays.push(app.start_replica_heartbeat().await?);
    relays.push(app.plugins.start_probes(Duration::from_secs(60)));
    relays.push(start_staging_sweep(&app));
    let workers = app.start_workers(Arc::clone(&stop));
    let addr = acceptor.local_addr().first().and_then(|a| a.as_socket_addr().copied()).context("no local address")?;
    let routes = crate::api::routes(app.clone());
    let signal = Arc::clone(&stop);
    let server = tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(routes, async move { signal.notified().await }, Some(Duration::from_secs(10)))
            .await
    });
    Ok(Running { addr, app, stop, server, workers, relays })
}

/// Sweep the blob store's staging files left by interrupted writes (a `kill -9` mid-store) at
/// start-up and then every lease: any older than a job's lease belong to no live write.
fn start_staging_sweep(app: &App) -> tokio::task::JoinHandle<()> {
    let blobs = app.blobs.clone();
    let lease = Duration::from_secs(app.config.jobs.lease_seconds);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(lease);
        loop {
            every.tick().await;
            match blobs.sweep_staging(lease).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed staging files of interrupted blob writes"),
                Err(e) => tracing::warn!(error = %e, "sweeping the blob store's staging files failed"),
            }
        }
    })
}

/// Run the server until SIGINT/SIGTERM. Once bound, logs the address (`address`) and, with
/// `log_format = "pretty"`, prints `listening on http://ADDR` to stdout for scripts; in JSON
/// mode nothing but JSON lines is written, and scripts read `address` from the log.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    for variable in &config.ignored_env {
        tracing::warn!(%variable, "environment variable ignored: it names no configuration key");
    }
    let running = start(config).await?;
    let addr = running.addr;
    tracing::info!(address = %addr, "Easel is listening; API docs at http://{addr}/docs");
    if running.app.config.log_format == crate::config::LogFormat::Pretty {
        println!("listening on http://{addr}");
    }
    running.until_signal().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
