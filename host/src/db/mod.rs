//! Persistence. One trait per aggregate family, implemented per database technology.
//!
//! Every time is unix milliseconds (`BIGINT`), the same on SQLite and PostgreSQL; every query
//! uses `$n` placeholders, which both understand, so both backends share one body of SQL
//! ([`shared_generation_db!`]) and differ only where the databases do: how a job is claimed
//! and how replicas signal each other.

#[macro_use]
mod shared;
#[macro_use]
pub mod accounts;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Config, DatabaseKind};
use crate::error::AppResult;

/// The channel replicas signal generation changes on (PostgreSQL `NOTIFY`).
pub const EVENTS_CHANNEL: &str = "easel_events";

/// Everything Easel stores: generations and the queue, and accounts.
pub trait Database: GenerationDb + accounts::AccountDb {}

impl<T: GenerationDb + accounts::AccountDb> Database for T {}

/// Open the database `config` names (SQLite or PostgreSQL) and apply its migrations.
pub async fn connect(config: &Config) -> anyhow::Result<Arc<dyn Database>> {
    let url = config.database_url();
    Ok(match config.database_kind()? {
        DatabaseKind::Sqlite => Arc::new(sqlite::Sqlite::connect(&url, config.database_max_connections).await?),
        DatabaseKind::Postgres => Arc::new(postgres::Postgres::connect(&url, config.database_max_connections).await?),
    })
}

/// A generation as stored: the request, the job state and the outcome.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GenerationRow {
    /// `gen_…`.
    pub id: String,
    /// Owner, once accounts exist.
    pub owner_id: Option<String>,
    /// `queued`, `running`, `retrying`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    /// `provider/model`.
    pub model: String,
    /// The validated request as JSON.
    pub request_json: String,
    /// Client metadata as a JSON object.
    pub metadata_json: String,
    /// 0..=100.
    pub progress: f64,
    /// Short label of the current pipeline stage.
    pub stage: Option<String>,
    /// Times a worker claimed this job.
    pub attempts: i64,
    /// Claims allowed before the job fails for good.
    pub max_attempts: i64,
    /// Error code when failed.
    pub error_code: Option<String>,
    /// Error message when failed.
    pub error_message: Option<String>,
    /// Provider metadata (JSON) when succeeded.
    pub provider_metadata_json: Option<String>,
    /// Milliseconds spent per pipeline stage (JSON object).
    pub timings_json: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the first claim.
    pub started_at: Option<i64>,
    /// Unix ms of the final state.
    pub completed_at: Option<i64>,
    /// The replica that must run this job (it holds the caller's provider key in memory), if any.
    pub pinned_to: Option<String>,
    /// Whose daily image quota and concurrency limit this generation counts against
    /// (`usr_…`, or `ip …` for callers without an account).
    pub quota_subject: Option<String>,
    /// Images this generation holds of the daily quota while it is not failed or canceled.
    pub images_reserved: i64,
    /// Credits taken when it was accepted; given back when it fails or is canceled.
    pub credits_charged: i64,
    /// Style template asked for, for usage statistics.
    pub style: Option<String>,
    /// Provider calls retried after a temporary failure (429, 5xx, timeouts), all claims together.
    pub retries: i64,
    /// The last provider error, kept while the job retries or falls back (`provider_error`, …).
    pub last_error_code: Option<String>,
    /// Its message (keys scrubbed).
    pub last_error_message: Option<String>,
    /// The model that produced the images: `model`, or a fallback from `[fallbacks]`.
    pub model_used: Option<String>,
}

/// A provider failure the job will retry (or fall back from).
#[derive(Clone, Debug)]
pub struct Retry<'a> {
    /// Stage shown meanwhile, e.g. `retrying in 2s (attempt 2 of 4)`.
    pub stage: &'a str,
    /// Error code of the failure.
    pub code: &'a str,
    /// Its message.
    pub message: &'a str,
}

/// A stored image file and what made it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ImageRow {
    /// `img_…`.
    pub id: String,
    /// The generation that made it (None for uploads).
    pub generation_id: Option<String>,
    /// Owner, once accounts exist.
    pub owner_id: Option<String>,
    /// Index within its generation.
    pub position: i64,
    /// Key in the blob store.
    pub blob_key: String,
    /// Pixels.
    pub width: i64,
    /// Pixels.
    pub height: i64,
    /// `png`, `jpeg` or `webp`.
    pub format: String,
    /// Size of the stored file.
    pub bytes: i64,
    /// Seed that produced it.
    pub seed: Option<i64>,
    /// Prompt as sent to the provider.
    pub prompt: Option<String>,
    /// Negative prompt.
    pub negative_prompt: Option<String>,
    /// `provider/model`.
    pub model: Option<String>,
    /// `W:H` as requested.
    pub aspect_ratio: Option<String>,
    /// Client metadata (JSON object).
    pub metadata_json: String,
    /// Unix ms.
    pub created_at: i64,
    /// `{"original"|"cropped"|"transparent": {"key","width","height","format","bytes"}}`.
    pub variants_json: String,
    /// The image this one was edited from.
    pub parent_id: Option<String>,
    /// Style template used.
    pub style: Option<String>,
    /// Archetype used.
    pub archetype: Option<String>,
}

/// A job handed to a worker.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClaimedJob {
    /// Generation id.
    pub id: String,
    /// Its owner: the images it makes are theirs.
    pub owner_id: Option<String>,
    /// The validated request as JSON.
    pub request_json: String,
    /// Claims so far, this one included.
    pub attempts: i64,
    /// Claims allowed.
    pub max_attempts: i64,
}

/// Who asks for a job, and when.
#[derive(Clone, Debug)]
pub struct ClaimRequest<'a> {
    /// The worker (`wrk_<replica>_<n>`); it becomes the lease owner.
    pub worker: &'a str,
    /// The replica the worker runs in: jobs pinned to it may be claimed.
    pub replica: &'a str,
    /// Unix ms now; leases that expired before it are free.
    pub now: i64,
    /// Unix ms the new lease lasts until.
    pub lease_until: i64,
    /// A job pinned to another replica may be claimed too when that replica has not been seen
    /// since this time (unix ms; see [`GenerationDb::replica_seen`]), so a job never waits
    /// forever for a replica that is gone.
    pub replicas_seen_after: i64,
}

/// How long an `Idempotency-Key` is remembered: 24 hours, in ms.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// A client's `Idempotency-Key` on one creating request.
#[derive(Clone, Debug)]
pub struct IdempotencyKey<'a> {
    /// Whose key on which route: `"<owner or anonymous> <METHOD> <route>"`.
    pub scope: &'a str,
    /// The client's key.
    pub key: &'a str,
    /// sha256 (hex) of what the request asked for.
    pub request_hash: &'a str,
    /// Unix ms now; keys older than [`IDEMPOTENCY_TTL_MS`] are forgotten.
    pub now: i64,
}

/// What an earlier request with the same key made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// The resource it created (`gen_…`, `img_…`).
    pub resource_id: String,
    /// Its request hash: equal means the same request, so the same answer.
    pub request_hash: String,
}

/// Filter and page of a generation listing.
#[derive(Clone, Debug, Default)]
pub struct GenerationQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only ids older than this one (the cursor).
    pub before: Option<String>,
    /// Page size; the store returns up to `limit + 1` rows so the caller knows if more exist.
    pub limit: u32,
    /// Only this owner's (None: everyone's, for admins).
    pub owner: Option<String>,
}

/// How a job ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Images were stored; insert their rows and mark the job succeeded.
    Succeeded {
        /// New image rows.
        images: Vec<ImageRow>,
        /// Provider metadata (JSON object).
        provider_metadata_json: String,
        /// The model that produced the images (`provider/model`).
        model_used: String,
    },
    /// Mark the job failed.
    Failed {
        /// Stable code.
        code: String,
        /// Client-safe message.
        message: String,
    },
}

/// Generations, their images, and the job queue they form.
#[async_trait]
pub trait GenerationDb: Send + Sync {
    /// Is the database reachable?
    async fn ping(&self) -> AppResult<()>;
    /// Insert a new queued generation.
    async fn insert_generation(&self, row: &GenerationRow) -> AppResult<()>;
    /// One generation.
    async fn get_generation(&self, id: &str) -> AppResult<Option<GenerationRow>>;
    /// Newest first.
    async fn list_generations(&self, query: &GenerationQuery) -> AppResult<Vec<GenerationRow>>;
    /// The images of a generation, by position.
    async fn images_of(&self, generation_id: &str) -> AppResult<Vec<ImageRow>>;
    /// One image.
    async fn get_image(&self, id: &str) -> AppResult<Option<ImageRow>>;
    /// Queued jobs ahead of this one (0 = next).
    async fn queue_position(&self, id: &str) -> AppResult<i64>;
    /// Claim the oldest queued job, or one whose lease expired, for `claim.worker` until
    /// `claim.lease_until`. No two concurrent claims (from any replica) return the same job.
    async fn claim(&self, claim: &ClaimRequest<'_>) -> AppResult<Option<ClaimedJob>>;
    /// Extend the lease; false when the job is no longer this worker's.
    async fn heartbeat(&self, id: &str, worker: &str, lease_until: i64) -> AppResult<bool>;
    /// Mark the job `retrying` after a temporary provider failure (counts one retry and keeps
    /// the error); false when the job is no longer this worker's.
    async fn set_retrying(&self, id: &str, worker: &str, retry: &Retry<'_>) -> AppResult<bool>;
    /// Record progress (0..=100) and stage; false when the job is no longer this worker's or
    /// the stored progress is already further (writes may arrive out of order; progress never
    /// goes back).
    async fn set_progress(&self, id: &str, worker: &str, progress: f64, stage: &str) -> AppResult<bool>;
    /// Insert an image that no job made (an edit or an upload).
    async fn insert_image(&self, image: &ImageRow) -> AppResult<()>;
    /// Images edited from `parent_id`, oldest first.
    async fn edits_of(&self, parent_id: &str) -> AppResult<Vec<ImageRow>>;
    /// Finish the job atomically; false (and nothing written) when it is no longer this worker's.
    async fn finish(&self, id: &str, worker: &str, outcome: &Outcome, timings_json: &str, now: i64) -> AppResult<bool>;
    /// This replica is alive at `now` (renewed every `lease_seconds / 3`). Also the sweep:
    /// replicas not seen for a day and expired idempotency keys are deleted.
    async fn replica_seen(&self, replica: &str, now: i64) -> AppResult<()>;
    /// This replica stops: jobs pinned to it may be claimed by others at once.
    async fn replica_gone(&self, replica: &str) -> AppResult<()>;
    /// Unfinished jobs by status (`queued`, `running`, `retrying`), for metrics.
    async fn job_counts(&self) -> AppResult<Vec<(String, i64)>>;
    /// Cancel a job that has not finished (queued, running or retrying): it becomes `canceled`
    /// and its lease is released, so its worker can neither renew nor finish it. False when it
    /// does not exist or has already finished.
    async fn cancel(&self, id: &str, now: i64) -> AppResult<bool>;
    /// The resource an earlier request with this key created, if the key is remembered.
    async fn idempotent_replay(&self, key: &IdempotencyKey<'_>) -> AppResult<Option<Replay>>;
    /// [`GenerationDb::insert_generation`] under an idempotency key, atomically: either the key
    /// is new and both are stored (`None`), or nothing is stored and the earlier request's
    /// resource is returned. Concurrent requests with one key (on any replica) store one.
    async fn insert_generation_once(&self, row: &GenerationRow, key: &IdempotencyKey<'_>) -> AppResult<Option<Replay>>;
    /// [`GenerationDb::insert_image`] under an idempotency key; as
    /// [`GenerationDb::insert_generation_once`].
    async fn insert_image_once(&self, image: &ImageRow, key: &IdempotencyKey<'_>) -> AppResult<Option<Replay>>;
    /// Tell the other replicas something on [`EVENTS_CHANNEL`] (PostgreSQL `NOTIFY`, at most
    /// 7999 bytes of payload). A no-op where the database has no such thing (SQLite: the
    /// other processes poll).
    async fn signal(&self, payload: &str) -> AppResult<()>;
    /// Start receiving the other replicas' signals (and our own: the caller filters). `None`
    /// when the database cannot deliver them; callers then rely on polling.
    async fn listen(&self) -> AppResult<Option<tokio::sync::mpsc::Receiver<String>>>;
    /// Which database this is, for `/ready` and logs.
    fn kind(&self) -> DatabaseKind;
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn versions(db: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(db);
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn both_databases_have_the_same_migration_versions() {
        let (sqlite, postgres) = (versions("sqlite"), versions("postgres"));
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, postgres, "migrations/sqlite and migrations/postgres must mirror each other");
    }
}
