//! Business rules, free of HTTP and SQL types: what a valid request is, what a generation
//! looks like to a client, and how the pipeline turns a job into stored images.

pub mod edits;
pub mod generations;
pub mod pipeline;

use std::sync::Arc;

use crate::blobs::BlobStore;
use crate::config::Config;
use crate::db::GenerationDb;
use crate::plugins::Registry;

/// Everything the services share. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// Operator configuration.
    pub config: Arc<Config>,
    /// Generations, images, queue.
    pub db: Arc<dyn GenerationDb>,
    /// Image files.
    pub blobs: BlobStore,
    /// Loaded plugins.
    pub plugins: Arc<Registry>,
    /// Progress and state changes, for waiting clients and streams.
    pub events: tokio::sync::broadcast::Sender<GenerationEvent>,
    /// Wakes idle workers when a job is queued.
    pub wake: Arc<tokio::sync::Notify>,
    /// Callers' own provider keys (`X-Provider-Key`), by generation id: held in this process's
    /// memory only until the job starts, never stored or logged.
    pub caller_keys: Arc<std::sync::Mutex<std::collections::HashMap<String, crate::config::Secret>>>,
}

/// A change of a generation's state or progress.
#[derive(Clone, Debug)]
pub struct GenerationEvent {
    /// `gen_…`.
    pub id: String,
    /// New status.
    pub status: String,
    /// 0..=100.
    pub progress: f64,
    /// Current stage.
    pub stage: String,
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new type-prefixed, time-sortable id, e.g. `gen_01JD…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}
