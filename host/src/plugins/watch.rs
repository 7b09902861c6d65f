//! Hot reload: watch the plugins directory and reload when a plugin folder changes.
//!
//! Only changes count (create, modify, remove, rename), not reads: the reload itself reads the
//! files. Events are debounced (a copied `.wasm` arrives as many writes); the reload runs on
//! the watcher's own thread, off the request path, and swaps the catalog atomically.

use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Weak};
use std::time::Duration;

use notify_debouncer_mini::notify::{self, EventKind, RecursiveMode, Watcher, event::ModifyKind};

use super::Registry;

/// How long the directory must be quiet before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

impl Registry {
    /// Start watching the plugins directory (created if missing). The watcher lives as long
    /// as the registry.
    pub fn watch(self: &Arc<Self>) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let (tx, rx) = channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) if is_change(&event) => {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching the plugins directory failed"),
        })?;
        watcher.watch(&self.dir, RecursiveMode::Recursive)?;
        let weak: Weak<Registry> = Arc::downgrade(self);
        std::thread::Builder::new().name("easel-plugin-watch".into()).spawn(move || {
            while rx.recv().is_ok() {
                // Wait for a quiet period, then reload once.
                loop {
                    match rx.recv_timeout(DEBOUNCE) {
                        Ok(()) => continue,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                let Some(registry) = weak.upgrade() else { return };
                let started = std::time::Instant::now();
                let catalog = registry.reload();
                tracing::info!(
                    plugins = catalog.plugins.len(),
                    failures = catalog.failures.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "plugins directory changed; reloaded"
                );
            }
        })?;
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(watcher));
        tracing::info!(dir = %self.dir.display(), "watching for plugin changes");
        Ok(())
    }
}

/// A change to a file that matters (not a read, not an editor's swap file).
fn is_change(event: &notify::Event) -> bool {
    let kind_matters = match event.kind {
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Access(_) | EventKind::Other => false,
    };
    let noise = |p: &std::path::PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') || n.ends_with('~') || n.ends_with(".swp"))
    };
    kind_matters && !event.paths.iter().all(noise)
}
