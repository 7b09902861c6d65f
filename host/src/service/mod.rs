//! Business rules, free of HTTP and SQL types: what a valid request is, what a generation
//! looks like to a client, and how the pipeline turns a job into stored images.

pub mod accounts;
pub mod edits;
pub mod generations;
pub mod limits;
pub mod pipeline;

use std::sync::Arc;

use crate::blobs::BlobStore;
use crate::config::Config;
use crate::db::Database;
use crate::error::{AppError, AppResult};
use crate::plugins::Registry;

/// Everything the services share. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// Operator configuration.
    pub config: Arc<Config>,
    /// Generations, images, queue, accounts.
    pub db: Arc<dyn Database>,
    /// Credentials, allowlists and the authorization policy.
    pub auth: Arc<crate::auth::Auth>,
    /// Image files.
    pub blobs: BlobStore,
    /// Loaded plugins.
    pub plugins: Arc<Registry>,
    /// Progress and state changes, for waiting clients and streams.
    pub events: tokio::sync::broadcast::Sender<GenerationEvent>,
    /// Wakes idle workers when a job is queued.
    pub wake: Arc<tokio::sync::Notify>,
    /// Callers' own provider keys (`X-Provider-Key`), by generation id: held in this process's
    /// memory only until the job starts, never stored or logged. Such a job is pinned to this
    /// replica (`pinned_to`).
    pub caller_keys: Arc<std::sync::Mutex<CallerKeys>>,
    /// This process's id among the replicas sharing the database (`rep_…`, new at each start).
    pub replica_id: String,
    /// Generations this process runs whose provider may call back: what wakes each one's
    /// plugin call when an authentic callback arrives (here, or relayed by another replica).
    pub callbacks: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Notify>>>>,
}

impl App {
    /// Announce a generation's new state: to this process's waiters and streams at once, and
    /// to the other replicas through the database (see [`App::start_signal_relay`]).
    pub fn publish(&self, id: &str, status: &str, progress: f64, stage: &str) {
        let _ = self.events.send(GenerationEvent {
            id: id.to_string(),
            status: status.to_string(),
            progress,
            stage: stage.to_string(),
            origin: self.replica_id.clone(),
        });
    }

    /// Announce this replica every `lease_seconds / 3` (see [`crate::db::GenerationDb::replica_seen`])
    /// and forget callers' provider keys whose jobs did not start within an hour (the job then
    /// fails with a message asking to resubmit): no key stays in memory indefinitely.
    pub async fn start_replica_heartbeat(&self) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        self.db.replica_seen(&self.replica_id, now_ms()).await?;
        let app = self.clone();
        let every = std::time::Duration::from_millis((self.config.jobs.lease_seconds * 1000 / 3).max(500));
        Ok(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = app.db.replica_seen(&app.replica_id, now_ms()).await {
                    tracing::warn!(error = ?e, "announcing this replica failed");
                }
                let cutoff = std::time::Instant::now() - CALLER_KEY_TTL;
                app.caller_keys.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, (_, at)| *at > cutoff);
                // Credits of generations that failed or were canceled anywhere come back, and
                // request counters older than the longest usage period go, as do rate limit
                // states wholly in the past.
                if let Err(e) = app.db.refund_credits(None).await {
                    tracing::warn!(error = ?e, "refunding credits failed");
                }
                if let Err(e) = app.db.sweep_counters(now_ms() - 32 * 86_400_000).await {
                    tracing::warn!(error = ?e, "sweeping request counters failed");
                }
                if let Err(e) = app.db.sweep_rate_limits(now_ms()).await {
                    tracing::warn!(error = ?e, "sweeping rate limit states failed");
                }
            }
        }))
    }

    /// Relay events between replicas when the database can (PostgreSQL `LISTEN/NOTIFY`): this
    /// process's events go out as `NOTIFY`; other replicas' events come in to this process's
    /// broadcast, and a newly queued job wakes an idle worker here. Credential changes come in
    /// too (see [`App::forget_user_everywhere`]) and clear this replica's credential cache. With SQLite nothing is
    /// started and other processes are noticed by polling (`jobs.poll_interval_ms`, and
    /// streams re-reading the generation).
    pub async fn start_signal_relay(&self) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let Some(mut incoming) = self.db.listen().await? else { return Ok(Vec::new()) };
        let outgoing = {
            let (app, mut events) = (self.clone(), self.events.subscribe());
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(e) if e.origin == app.replica_id => {
                            if let Err(err) = app.signal(&ReplicaSignal::Generation(e)).await {
                                tracing::warn!(error = ?err, "telling other replicas failed; they will poll");
                            }
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
        };
        let incoming = {
            let app = self.clone();
            tokio::spawn(async move {
                while let Some(payload) = incoming.recv().await {
                    match serde_json::from_str::<ReplicaSignal>(&payload) {
                        Ok(ReplicaSignal::Generation(event)) if event.origin != app.replica_id => {
                            if event.status == "queued" {
                                app.wake.notify_one();
                            }
                            let _ = app.events.send(event);
                        }
                        Ok(ReplicaSignal::ForgetUser { user_id, origin }) if origin != app.replica_id => {
                            app.auth.forget_user(&user_id);
                        }
                        Ok(ReplicaSignal::Callback { generation_id, origin }) if origin != app.replica_id => {
                            app.callback_arrived(&generation_id);
                        }
                        // Our own signals come back too; anything unreadable is from another version.
                        Ok(_) | Err(_) => {}
                    }
                }
            })
        };
        Ok(vec![outgoing, incoming])
    }
}

impl App {
    /// Wake the plugin call of `generation_id` if this process runs it (a stored permit, so a
    /// callback between two polls is not lost).
    pub fn callback_arrived(&self, generation_id: &str) -> bool {
        let slot = self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).get(generation_id).cloned();
        slot.map(|n| n.notify_one()).is_some()
    }

    /// The callback slot of a generation this process is about to run with `plugin`, when the
    /// operator lets that plugin call back; removed again by [`App::drop_callback_slot`].
    pub(crate) fn callback_slot(
        &self,
        generation_id: &str,
        plugin: &crate::plugins::Plugin,
    ) -> Option<crate::plugins::runtime::CallbackSlot> {
        // The configuration refuses callbacks without `public_url`; without one no URL exists.
        let base = self.config.public_url.as_deref()?.trim_end_matches('/');
        if !plugin.takes_callbacks() {
            return None;
        }
        let arrived = Arc::clone(
            self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).entry(generation_id.to_string()).or_default(),
        );
        let url = format!("{base}/v1/callbacks/{}/{generation_id}", plugin.manifest.id);
        Some(crate::plugins::runtime::CallbackSlot { url, arrived })
    }

    /// Forget a generation's callback slot (its job ended here).
    pub(crate) fn drop_callback_slot(&self, generation_id: &str) {
        self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).remove(generation_id);
    }

    /// Send `signal` to the other replicas ([`crate::db::GenerationDb::signal`]; a no-op on SQLite).
    pub async fn signal(&self, signal: &ReplicaSignal) -> AppResult<()> {
        self.db.signal(&serde_json::to_string(signal).expect("a signal serializes")).await
    }
}

/// What replicas tell each other on [`crate::db::EVENTS_CHANNEL`], as JSON tagged by `kind`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplicaSignal {
    /// A generation changed state or progress.
    Generation(GenerationEvent),
    /// A user's credentials changed (key deleted, password, tier, disabled): drop them from
    /// the credential cache.
    ForgetUser {
        /// `usr_…`.
        user_id: String,
        /// The replica it happened on.
        origin: String,
    },
    /// A provider's callback for a generation was verified: wake its job wherever it runs.
    Callback {
        /// `gen_…`.
        generation_id: String,
        /// The replica that received it.
        origin: String,
    },
}

/// A creating request's `Idempotency-Key`, with a fingerprint of what the request asked for.
///
/// The same key with the same request returns the first request's resource (on any replica,
/// for 24 hours); the same key with a different request is refused (422 naming
/// `Idempotency-Key`).
#[derive(Clone, Debug)]
pub struct Idempotency {
    scope: String,
    key: String,
    request_hash: String,
}

impl Idempotency {
    /// `key` as the client sent it (1–255 printable ASCII characters), by `owner` on `route`
    /// (e.g. `POST /v1/generations`), for a request whose canonical form is `request`. Keys
    /// are per owner: two users' equal keys never meet.
    pub fn new(owner: &str, route: &str, key: Option<String>, request: &str) -> AppResult<Option<Self>> {
        use sha2::Digest;
        let Some(key) = key else { return Ok(None) };
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(AppError::field("Idempotency-Key", "must be 1 to 255 printable ASCII characters"));
        }
        let scope = format!("{owner} {route}");
        let request_hash = hex::encode(sha2::Sha256::digest(request.as_bytes()));
        Ok(Some(Self { scope, key, request_hash }))
    }

    /// The key as the database stores it, at `now`.
    pub fn db_key(&self, now: i64) -> crate::db::IdempotencyKey<'_> {
        crate::db::IdempotencyKey { scope: &self.scope, key: &self.key, request_hash: &self.request_hash, now }
    }

    /// The earlier resource when `replay` is of this same request; 422 when the key was used
    /// for another one.
    pub fn check(&self, replay: crate::db::Replay) -> AppResult<String> {
        if replay.request_hash == self.request_hash {
            Ok(replay.resource_id)
        } else {
            Err(AppError::field(
                "Idempotency-Key",
                "was already used with a different request; use a new key for a new request",
            ))
        }
    }
}

/// Callers' provider keys by generation id, with when they arrived.
pub type CallerKeys = std::collections::HashMap<String, (crate::config::Secret, std::time::Instant)>;

/// How long a caller's provider key waits in memory for its job to start.
pub const CALLER_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// A change of a generation's state or progress.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GenerationEvent {
    /// `gen_…`.
    pub id: String,
    /// New status.
    pub status: String,
    /// 0..=100.
    pub progress: f64,
    /// Current stage.
    pub stage: String,
    /// The replica it happened on.
    pub origin: String,
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new type-prefixed, time-sortable id, e.g. `gen_01JD…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}
