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
pub async fn build_app(config: Config) -> anyhow::Result<App> {
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

/// Run the server until SIGINT/SIGTERM. Once bound, logs the address (`address`) and, with
/// `log_format = "pretty"`, prints `listening on http://ADDR` to stdout for scripts; in JSON
/// mode nothing but JSON lines is written, and scripts read `address` from the log.
pub async fn serve(config: Config) -> anyhow::Result<()> {
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
