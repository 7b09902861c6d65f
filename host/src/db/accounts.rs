//! Accounts: users, API keys, invites, request counters and rate limits, quota-checked
//! admission of generations, credits and usage. Like generations, one body of SQL serves both
//! databases ([`shared_account_db!`]); they differ only in how an admission is serialized per
//! quota subject (SQLite: `BEGIN IMMEDIATE`, PostgreSQL: a transaction-scoped advisory lock).

use async_trait::async_trait;

use super::{GenerationRow, IdempotencyKey, Replay};
use crate::auth::gcra::{Rate, RateState, RateWindows};
use crate::error::AppResult;

/// A user account.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    /// `usr_…`.
    pub id: String,
    /// Lower-case e-mail address, unique.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// argon2id PHC string; None for users that only use API keys.
    pub password_hash: Option<String>,
    /// Tier name (`[tiers.<name>]`).
    pub tier: String,
    /// 1 when an admin disabled the account (its keys and sessions stop working).
    pub disabled: i64,
    /// Preferences (JSON object): default model, style, aspect ratio, quality.
    pub settings_json: String,
    /// Bumped on password change: session tokens carrying an older version are refused.
    pub token_version: i64,
    /// Credit balance.
    pub credits: i64,
    /// Credits ever granted (refills and admin grants).
    pub credits_total: i64,
    /// Unix ms of the last refill.
    pub credits_refilled_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

impl UserRow {
    /// A new, enabled user with no password, settings or credits, created at `now` (unix ms).
    pub fn new(email: &str, tier: &str, now: i64) -> Self {
        Self {
            id: crate::service::new_id("usr"),
            email: email.to_string(),
            name: None,
            avatar_url: None,
            password_hash: None,
            tier: tier.to_string(),
            disabled: 0,
            settings_json: "{}".into(),
            token_version: 0,
            credits: 0,
            credits_total: 0,
            credits_refilled_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// An API key (the secret itself is never stored).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KeyRow {
    /// `key_…`.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Label given by the user.
    pub name: String,
    /// The first characters of the secret (`esk_` + 8), to recognise it.
    pub prefix: String,
    /// sha256 (hex) of the secret.
    pub secret_hash: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms after which the key stops working.
    pub expires_at: Option<i64>,
    /// Unix ms of the last request that used it (to within a few seconds).
    pub last_used_at: Option<i64>,
}

impl KeyRow {
    /// The row of a new key of `user_id` with the secret `secret` (only its hash and prefix
    /// are kept), created at `now`.
    pub fn new(user_id: &str, name: &str, secret: &str, expires_at: Option<i64>, now: i64) -> Self {
        Self {
            id: crate::service::new_id("key"),
            user_id: user_id.to_string(),
            name: name.to_string(),
            prefix: secret.chars().take(12).collect(),
            secret_hash: crate::auth::secret_hash(secret),
            created_at: now,
            expires_at,
            last_used_at: None,
        }
    }
}

/// What admitting a generation reserves, and the limits it must stay within.
#[derive(Clone, Debug, Default)]
pub struct Reservation {
    /// Quota subject (`usr_…` or `ip …`), also stored on the generation.
    pub subject: String,
    /// Unix ms of today's 00:00 UTC: the daily window.
    pub day_start: i64,
    /// Images per day allowed (None: no limit).
    pub images_per_day: Option<i64>,
    /// Generations queued or running at once (None: no limit).
    pub max_concurrent: Option<i64>,
    /// `(user id, cost)` when the tier charges credits.
    pub credits: Option<(String, i64)>,
    /// Generations created per minute (None: no limit), taken at the row's `created_at` from
    /// the GCRA window of [`crate::auth::gcra::generations_subject`].
    pub generations_per_minute: Option<Rate>,
}

/// The answer to an admission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Stored; `images_today` now includes it.
    Accepted {
        /// Images reserved today, this generation included.
        images_today: i64,
        /// The TAT of the per-minute generations window after this one (None: no limit).
        generations_tat: Option<i64>,
    },
    /// An earlier request with the same idempotency key made this resource; nothing stored.
    Replay(Replay),
    /// The daily image quota would be exceeded.
    DailyQuota {
        /// Images already reserved today.
        used: i64,
    },
    /// Too many generations queued or running.
    Concurrency {
        /// Queued or running now.
        active: i64,
    },
    /// Not enough credits.
    Credits {
        /// The balance.
        balance: i64,
    },
    /// Too many generations created in the last minute (`generations_per_minute`).
    GenerationRate {
        /// The TAT of the per-minute generations window.
        tat: i64,
    },
}

/// The answer to [`AccountDb::take_rate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateTaken {
    /// The event passed every window (and was taken from each).
    pub allowed: bool,
    /// The state after the event when it passed; else the state that refused it.
    pub state: RateState,
}

/// A user's quota state now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuotaState {
    /// Images reserved today (not failed or canceled).
    pub images_today: i64,
    /// Generations queued or running.
    pub active: i64,
}

/// One day of a usage report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageDay {
    /// Unix ms of the day's 00:00 UTC.
    pub day_start: i64,
    /// Images generated (succeeded generations).
    pub images: i64,
    /// Requests counted.
    pub requests: i64,
}

/// Usage of one owner since a time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageReport {
    /// Images generated.
    pub images: i64,
    /// Generations created (any outcome).
    pub generations: i64,
    /// Per day, oldest first (days with no activity are absent).
    pub days: Vec<UsageDay>,
    /// Most used styles with their generation counts, most first (at most 5).
    pub top_styles: Vec<(String, i64)>,
    /// Most used models with their generation counts, most first (at most 5).
    pub top_models: Vec<(String, i64)>,
    /// Mean time from start to finish of succeeded generations, in ms.
    pub average_generation_ms: Option<f64>,
}

/// Accounts and everything counted per account.
#[async_trait]
pub trait AccountDb: Send + Sync {
    /// Insert a user; false (nothing stored) when the e-mail address is taken.
    async fn create_user(&self, user: &UserRow) -> AppResult<bool>;
    /// Use the invite `code_hash` (unused, not expired at `now`) and insert the user with the
    /// invite's tier when it names one. `Ok(None)`: no such usable invite; `Ok(Some(false))`:
    /// the e-mail address is taken (the invite stays unused).
    async fn create_user_with_invite(&self, user: &UserRow, code_hash: &str, now: i64) -> AppResult<Option<bool>>;
    /// One user.
    async fn user_by_id(&self, id: &str) -> AppResult<Option<UserRow>>;
    /// One user by lower-case e-mail.
    async fn user_by_email(&self, email: &str) -> AppResult<Option<UserRow>>;
    /// Write what a user may change of their own: name, avatar_url, settings_json, updated_at.
    async fn update_profile(&self, user: &UserRow) -> AppResult<()>;
    /// Set a new password hash and end every session (`token_version` + 1), only if the
    /// version is still `expected_version`; false when it changed meanwhile (nothing written).
    async fn change_password(&self, id: &str, hash: &str, expected_version: i64, now: i64) -> AppResult<bool>;
    /// An operator's change: the tier and/or the disabled flag (None: unchanged).
    async fn admin_set(&self, id: &str, tier: Option<&str>, disabled: Option<i64>, now: i64) -> AppResult<()>;
    /// Users by id, newest first, older than `before`; up to `limit + 1`.
    async fn list_users(&self, before: Option<&str>, limit: u32) -> AppResult<Vec<UserRow>>;
    /// Set the credit balance (an admin grant); `credits_total` grows by what was added.
    async fn set_credits(&self, user_id: &str, credits: i64) -> AppResult<()>;
    /// Top the balance up to `amount` when it was last refilled before `period_start`;
    /// true when it did (the row changed).
    async fn refill_credits(&self, user_id: &str, amount: i64, period_start: i64, now: i64) -> AppResult<bool>;
    /// Give back the credits of failed and canceled generations (`id`: just that one; None:
    /// all of them). Each is refunded once.
    async fn refund_credits(&self, id: Option<&str>) -> AppResult<u64>;
    /// Store a new key.
    async fn create_key(&self, key: &KeyRow) -> AppResult<()>;
    /// A user's keys, newest first.
    async fn list_keys(&self, user_id: &str) -> AppResult<Vec<KeyRow>>;
    /// Delete a key of `user_id` (None: of anyone, for admins); the user it belonged to, or
    /// None when there was no such key.
    async fn delete_key(&self, user_id: Option<&str>, id: &str) -> AppResult<Option<String>>;
    /// The key with this secret hash, and its user.
    async fn key_by_hash(&self, secret_hash: &str) -> AppResult<Option<(KeyRow, UserRow)>>;
    /// Record that a key was used at `now`.
    async fn touch_key(&self, id: &str, now: i64) -> AppResult<()>;
    /// Store an invite code's hash, valid until `expires_at`.
    async fn create_invite(
        &self,
        code_hash: &str,
        tier: Option<&str>,
        created_by: &str,
        now: i64,
        expires_at: i64,
    ) -> AppResult<()>;
    /// Count one event of `subject` in the window starting at `window_start`, unless `limit`
    /// events were counted already: the new count, or None (nothing counted) at the limit.
    async fn count_event(&self, subject: &str, window_start: i64, limit: i64) -> AppResult<Option<i64>>;
    /// Events counted for `subject` in the window starting at `window_start`.
    async fn counted(&self, subject: &str, window_start: i64) -> AppResult<i64>;
    /// Take one event of `subject` at `now` (unix ms) from each of its GCRA `windows`, all or
    /// nothing, in one statement (one round trip) when it passes; concurrent takes of one
    /// subject on any replica are serialized by the row. A request taken (subject `req …`) is
    /// also counted in the clock hour's request counter for usage reports (a trigger of
    /// migration 0008, so still one statement).
    async fn take_rate(&self, subject: &str, windows: RateWindows, now: i64) -> AppResult<RateTaken>;
    /// The GCRA state of `subject` (zeros when it has none).
    async fn rate_state(&self, subject: &str) -> AppResult<RateState>;
    /// Store `row` (with its idempotency key, if any) only if its subject stays within the
    /// reservation's limits; concurrent admissions of one subject (on any replica) are
    /// serialized, so limits hold exactly.
    async fn admit_generation(
        &self,
        row: &GenerationRow,
        reservation: &Reservation,
        key: Option<&IdempotencyKey<'_>>,
    ) -> AppResult<Admission>;
    /// Images reserved today and generations active, for `subject`.
    async fn quota_state(&self, subject: &str, day_start: i64) -> AppResult<QuotaState>;
    /// Usage of `owner` (generations, images) and `subject` (requests) since `since`.
    async fn usage(&self, owner: &str, subject: &str, since: i64) -> AppResult<UsageReport>;
    /// The shared value `name`, storing `candidate` first when there is none yet (every
    /// replica gets the same value).
    async fn server_secret(&self, name: &str, candidate: &str, now: i64) -> AppResult<String>;
    /// Drop counters whose window started before `before`.
    async fn sweep_counters(&self, before: i64) -> AppResult<()>;
    /// Drop GCRA states that are wholly in the past at `now` (the same as having none).
    async fn sweep_rate_limits(&self, now: i64) -> AppResult<()>;
}

/// Implements [`AccountDb`] for a backend struct with a `pool` field.
///
/// `begin` starts the admission transaction (SQLite: `BEGIN IMMEDIATE`, taking the write lock
/// first, so the checks and the insert are one critical section); `lock` is run in it with
/// the subject as `$1` (PostgreSQL: an advisory lock), or is empty.
macro_rules! shared_account_db {
    ($ty:ty, $conn:ty, begin = $begin:expr, lock = $lock:expr) => {
        #[async_trait::async_trait]
        impl $crate::db::accounts::AccountDb for $ty {
            async fn create_user(&self, u: &$crate::db::accounts::UserRow) -> $crate::error::AppResult<bool> {
                let mut conn = self.pool.acquire().await?;
                insert_user(&mut conn, u, &u.tier).await
            }

            async fn create_user_with_invite(
                &self,
                u: &$crate::db::accounts::UserRow,
                code_hash: &str,
                now: i64,
            ) -> $crate::error::AppResult<Option<bool>> {
                let mut tx = self.pool.begin().await?;
                let invite: Option<(Option<String>,)> = sqlx::query_as(
                    "UPDATE invites SET used_by = $1, used_at = $2 \
                     WHERE code_hash = $3 AND used_by IS NULL AND expires_at > $2 RETURNING tier",
                )
                .bind(&u.id)
                .bind(now)
                .bind(code_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((tier,)) = invite else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let tier = tier.unwrap_or_else(|| u.tier.clone());
                if !insert_user(&mut tx, u, &tier).await? {
                    tx.rollback().await?;
                    return Ok(Some(false));
                }
                tx.commit().await?;
                Ok(Some(true))
            }

            async fn user_by_id(&self, id: &str) -> $crate::error::AppResult<Option<$crate::db::accounts::UserRow>> {
                Ok(sqlx::query_as("SELECT * FROM users WHERE id = $1").bind(id).fetch_optional(&self.pool).await?)
            }

            async fn user_by_email(
                &self,
                email: &str,
            ) -> $crate::error::AppResult<Option<$crate::db::accounts::UserRow>> {
                Ok(sqlx::query_as("SELECT * FROM users WHERE email = $1").bind(email).fetch_optional(&self.pool).await?)
            }

            async fn update_profile(&self, u: &$crate::db::accounts::UserRow) -> $crate::error::AppResult<()> {
                // Only these columns: a concurrent password, tier or status change is never undone.
                sqlx::query("UPDATE users SET name = $1, avatar_url = $2, settings_json = $3, updated_at = $4 WHERE id = $5")
                    .bind(&u.name)
                    .bind(&u.avatar_url)
                    .bind(&u.settings_json)
                    .bind(u.updated_at)
                    .bind(&u.id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn change_password(
                &self,
                id: &str,
                hash: &str,
                expected_version: i64,
                now: i64,
            ) -> $crate::error::AppResult<bool> {
                let r = sqlx::query(
                    "UPDATE users SET password_hash = $1, token_version = token_version + 1, updated_at = $2 \
                     WHERE id = $3 AND token_version = $4",
                )
                .bind(hash)
                .bind(now)
                .bind(id)
                .bind(expected_version)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn admin_set(
                &self,
                id: &str,
                tier: Option<&str>,
                disabled: Option<i64>,
                now: i64,
            ) -> $crate::error::AppResult<()> {
                sqlx::query(
                    "UPDATE users SET tier = COALESCE($1, tier), disabled = COALESCE($2, disabled), updated_at = $3 \
                     WHERE id = $4",
                )
                .bind(tier)
                .bind(disabled)
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_users(
                &self,
                before: Option<&str>,
                limit: u32,
            ) -> $crate::error::AppResult<Vec<$crate::db::accounts::UserRow>> {
                Ok(sqlx::query_as("SELECT * FROM users WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2")
                    .bind(before)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn set_credits(&self, user_id: &str, credits: i64) -> $crate::error::AppResult<()> {
                sqlx::query(
                    "UPDATE users SET credits_total = credits_total + CASE WHEN $1 > credits THEN $1 - credits ELSE 0 END, \
                       credits = $1 WHERE id = $2",
                )
                .bind(credits)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn refill_credits(
                &self,
                user_id: &str,
                amount: i64,
                period_start: i64,
                now: i64,
            ) -> $crate::error::AppResult<bool> {
                let r = sqlx::query(
                    "UPDATE users SET credits_total = credits_total + CASE WHEN $1 > credits THEN $1 - credits ELSE 0 END, \
                       credits = CASE WHEN $1 > credits THEN $1 ELSE credits END, credits_refilled_at = $2 \
                     WHERE id = $3 AND (credits_refilled_at IS NULL OR credits_refilled_at < $4)",
                )
                .bind(amount)
                .bind(now)
                .bind(user_id)
                .bind(period_start)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn refund_credits(&self, id: Option<&str>) -> $crate::error::AppResult<u64> {
                let mut tx = self.pool.begin_with($begin).await?;
                let due: Vec<(String, Option<String>, i64)> = sqlx::query_as(
                    "SELECT id, owner_id, credits_charged FROM generations \
                     WHERE credits_charged > 0 AND status IN ('failed', 'canceled') AND ($1 IS NULL OR id = $1)",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                let mut refunded = 0;
                for (generation, owner, credits) in &due {
                    // Taking the charge back is conditional, so a concurrent refund gives nothing twice.
                    let taken = sqlx::query(
                        "UPDATE generations SET credits_charged = 0 WHERE id = $1 AND credits_charged = $2",
                    )
                    .bind(generation)
                    .bind(credits)
                    .execute(&mut *tx)
                    .await?;
                    if taken.rows_affected() == 1 {
                        sqlx::query("UPDATE users SET credits = credits + $1 WHERE id = $2")
                            .bind(credits)
                            .bind(owner)
                            .execute(&mut *tx)
                            .await?;
                        refunded += 1;
                    }
                }
                tx.commit().await?;
                Ok(refunded)
            }

            async fn create_key(&self, k: &$crate::db::accounts::KeyRow) -> $crate::error::AppResult<()> {
                sqlx::query(
                    "INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&k.id)
                .bind(&k.user_id)
                .bind(&k.name)
                .bind(&k.prefix)
                .bind(&k.secret_hash)
                .bind(k.created_at)
                .bind(k.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_keys(&self, user_id: &str) -> $crate::error::AppResult<Vec<$crate::db::accounts::KeyRow>> {
                Ok(sqlx::query_as("SELECT * FROM api_keys WHERE user_id = $1 ORDER BY id DESC")
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn delete_key(&self, user_id: Option<&str>, id: &str) -> $crate::error::AppResult<Option<String>> {
                let deleted: Option<(String,)> =
                    sqlx::query_as("DELETE FROM api_keys WHERE id = $1 AND ($2 IS NULL OR user_id = $2) RETURNING user_id")
                        .bind(id)
                        .bind(user_id)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(deleted.map(|(user,)| user))
            }

            async fn key_by_hash(
                &self,
                secret_hash: &str,
            ) -> $crate::error::AppResult<
                Option<($crate::db::accounts::KeyRow, $crate::db::accounts::UserRow)>,
            > {
                let key: Option<$crate::db::accounts::KeyRow> =
                    sqlx::query_as("SELECT * FROM api_keys WHERE secret_hash = $1")
                        .bind(secret_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                let Some(key) = key else { return Ok(None) };
                let user = $crate::db::accounts::AccountDb::user_by_id(self, &key.user_id).await?;
                Ok(user.map(|u| (key, u)))
            }

            async fn touch_key(&self, id: &str, now: i64) -> $crate::error::AppResult<()> {
                sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_invite(
                &self,
                code_hash: &str,
                tier: Option<&str>,
                created_by: &str,
                now: i64,
                expires_at: i64,
            ) -> $crate::error::AppResult<()> {
                sqlx::query(
                    "INSERT INTO invites (code_hash, tier, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(code_hash)
                .bind(tier)
                .bind(created_by)
                .bind(now)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn count_event(
                &self,
                subject: &str,
                window_start: i64,
                limit: i64,
            ) -> $crate::error::AppResult<Option<i64>> {
                if limit <= 0 {
                    return Ok(None);
                }
                // One statement: the conflict's row lock makes concurrent counts of one
                // subject queue up, so the limit holds exactly across replicas.
                let counted: Option<(i64,)> = sqlx::query_as(
                    "INSERT INTO rate_counters (subject, window_start, count) VALUES ($1, $2, 1) \
                     ON CONFLICT (subject, window_start) DO UPDATE SET count = rate_counters.count + 1 \
                       WHERE rate_counters.count < $3 \
                     RETURNING count",
                )
                .bind(subject)
                .bind(window_start)
                .bind(limit)
                .fetch_optional(&self.pool)
                .await?;
                Ok(counted.map(|(n,)| n))
            }

            async fn counted(&self, subject: &str, window_start: i64) -> $crate::error::AppResult<i64> {
                let n: Option<(i64,)> =
                    sqlx::query_as("SELECT count FROM rate_counters WHERE subject = $1 AND window_start = $2")
                        .bind(subject)
                        .bind(window_start)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(n.map_or(0, |(n,)| n))
            }

            async fn take_rate(
                &self,
                subject: &str,
                windows: $crate::auth::gcra::RateWindows,
                now: i64,
            ) -> $crate::error::AppResult<$crate::db::accounts::RateTaken> {
                let mut conn = self.pool.acquire().await?;
                take_rate(&mut conn, subject, windows, now).await
            }

            async fn rate_state(&self, subject: &str) -> $crate::error::AppResult<$crate::auth::gcra::RateState> {
                let mut conn = self.pool.acquire().await?;
                rate_state(&mut conn, subject).await
            }

            async fn admit_generation(
                &self,
                row: &$crate::db::GenerationRow,
                r: &$crate::db::accounts::Reservation,
                key: Option<&$crate::db::IdempotencyKey<'_>>,
            ) -> $crate::error::AppResult<$crate::db::accounts::Admission> {
                use $crate::db::accounts::Admission;
                let mut tx = self.pool.begin_with($begin).await?;
                if !$lock.is_empty() {
                    sqlx::query($lock).bind(&r.subject).execute(&mut *tx).await?;
                }
                if let Some(k) = key
                    && let Some(replay) = take_key(&mut *tx, k, &row.id).await?
                {
                    tx.rollback().await?;
                    return Ok(Admission::Replay(replay));
                }
                let state = quota_state(&mut tx, &r.subject, r.day_start).await?;
                if let Some(max) = r.max_concurrent
                    && state.active >= max
                {
                    tx.rollback().await?;
                    return Ok(Admission::Concurrency { active: state.active });
                }
                if let Some(max) = r.images_per_day
                    && state.images_today + row.images_reserved > max
                {
                    tx.rollback().await?;
                    return Ok(Admission::DailyQuota { used: state.images_today });
                }
                let mut generations_tat = None;
                if let Some(rate) = r.generations_per_minute {
                    let windows = $crate::auth::gcra::RateWindows { minute: Some(rate), hour: None };
                    let subject = $crate::auth::gcra::generations_subject(&r.subject);
                    let taken = take_rate(&mut tx, &subject, windows, row.created_at).await?;
                    if !taken.allowed {
                        tx.rollback().await?;
                        return Ok(Admission::GenerationRate { tat: taken.state.minute_tat });
                    }
                    generations_tat = Some(taken.state.minute_tat);
                }
                if let Some((user, cost)) = &r.credits {
                    let paid = sqlx::query("UPDATE users SET credits = credits - $1 WHERE id = $2 AND credits >= $1")
                        .bind(cost)
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                    if paid.rows_affected() != 1 {
                        let (balance,): (i64,) = sqlx::query_as("SELECT credits FROM users WHERE id = $1")
                            .bind(user)
                            .fetch_one(&mut *tx)
                            .await?;
                        tx.rollback().await?;
                        return Ok(Admission::Credits { balance });
                    }
                }
                insert_generation(&mut *tx, row).await?;
                tx.commit().await?;
                Ok(Admission::Accepted { images_today: state.images_today + row.images_reserved, generations_tat })
            }

            async fn quota_state(
                &self,
                subject: &str,
                day_start: i64,
            ) -> $crate::error::AppResult<$crate::db::accounts::QuotaState> {
                let mut conn = self.pool.acquire().await?;
                quota_state(&mut conn, subject, day_start).await
            }

            async fn usage(
                &self,
                owner: &str,
                subject: &str,
                since: i64,
            ) -> $crate::error::AppResult<$crate::db::accounts::UsageReport> {
                use $crate::db::accounts::{UsageDay, UsageReport};
                const DAY: i64 = 86_400_000;
                let (generations, images, avg): (i64, Option<i64>, Option<f64>) = sqlx::query_as(
                    "SELECT COUNT(*), \
                       CAST(SUM(CASE WHEN status = 'succeeded' THEN images_reserved ELSE 0 END) AS BIGINT), \
                       AVG(CASE WHEN status = 'succeeded' THEN CAST(completed_at - started_at AS DOUBLE PRECISION) END) \
                     FROM generations WHERE owner_id = $1 AND created_at >= $2",
                )
                .bind(owner)
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
                let image_days: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT (created_at / $3) * $3 AS day, COUNT(*) FROM images \
                     WHERE owner_id = $1 AND created_at >= $2 AND generation_id IS NOT NULL GROUP BY day",
                )
                .bind(owner)
                .bind(since)
                .bind(DAY)
                .fetch_all(&self.pool)
                .await?;
                let request_days: Vec<(i64, Option<i64>)> = sqlx::query_as(
                    "SELECT (window_start / $3) * $3 AS day, CAST(SUM(count) AS BIGINT) FROM rate_counters \
                     WHERE subject = $1 AND window_start >= $2 GROUP BY day",
                )
                .bind($crate::auth::gcra::requests_subject(subject))
                .bind(since - since % DAY)
                .bind(DAY)
                .fetch_all(&self.pool)
                .await?;
                let mut days = std::collections::BTreeMap::<i64, UsageDay>::new();
                for (day, n) in image_days {
                    days.entry(day).or_insert_with(|| UsageDay { day_start: day, ..Default::default() }).images = n;
                }
                for (day, n) in request_days {
                    days.entry(day).or_insert_with(|| UsageDay { day_start: day, ..Default::default() }).requests =
                        n.unwrap_or(0);
                }
                let top = |column: &'static str| {
                    let sql = format!(
                        "SELECT {column}, COUNT(*) AS uses FROM generations \
                         WHERE owner_id = $1 AND created_at >= $2 AND {column} IS NOT NULL \
                         GROUP BY {column} ORDER BY uses DESC, {column} LIMIT 5"
                    );
                    sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql))
                        .bind(owner)
                        .bind(since)
                        .fetch_all(&self.pool)
                };
                let top_styles = top("style").await?;
                let top_models = top("model").await?;
                Ok(UsageReport {
                    images: images.unwrap_or(0),
                    generations,
                    days: days.into_values().collect(),
                    top_styles,
                    top_models,
                    average_generation_ms: avg,
                })
            }

            async fn server_secret(&self, name: &str, candidate: &str, now: i64) -> $crate::error::AppResult<String> {
                sqlx::query(
                    "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(candidate)
                .bind(now)
                .execute(&self.pool)
                .await?;
                let (value,): (String,) = sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1")
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(value)
            }

            async fn sweep_counters(&self, before: i64) -> $crate::error::AppResult<()> {
                sqlx::query("DELETE FROM rate_counters WHERE window_start < $1").bind(before).execute(&self.pool).await?;
                Ok(())
            }

            async fn sweep_rate_limits(&self, now: i64) -> $crate::error::AppResult<()> {
                // A concurrent take that moved a time ahead makes its row fail the condition.
                sqlx::query("DELETE FROM rate_limits WHERE minute_tat <= $1 AND hour_tat <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        /// [`AccountDb::take_rate`] on a connection (or in a transaction). The insert of a new
        /// row always passes (every limit is at least 1); an existing row is updated only when
        /// every window has room, and then returns the new times. A window without a limit
        /// passes with `T = 0`, keeping its time at `max(TAT, now)`.
        ///
        /// [`AccountDb::take_rate`]: $crate::db::accounts::AccountDb::take_rate
        async fn take_rate(
            conn: &mut $conn,
            subject: &str,
            windows: $crate::auth::gcra::RateWindows,
            now: i64,
        ) -> $crate::error::AppResult<$crate::db::accounts::RateTaken> {
            let params = |rate: Option<$crate::auth::gcra::Rate>| {
                rate.map_or((0, i64::MAX), |r| (r.emission_ms(), r.tolerance_ms()))
            };
            let (minute_t, minute_tolerance) = params(windows.minute);
            let (hour_t, hour_tolerance) = params(windows.hour);
            // `max(TAT, now)` of each window, in SQL both databases understand.
            const MINUTE: &str = "(CASE WHEN rate_limits.minute_tat > $2 THEN rate_limits.minute_tat ELSE $2 END)";
            const HOUR: &str = "(CASE WHEN rate_limits.hour_tat > $2 THEN rate_limits.hour_tat ELSE $2 END)";
            static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                format!(
                    "INSERT INTO rate_limits (subject, minute_tat, hour_tat, updated_at) \
                     VALUES ($1, $2 + $3, $2 + $5, $2) \
                     ON CONFLICT (subject) DO UPDATE SET \
                       minute_tat = {MINUTE} + $3, hour_tat = {HOUR} + $5, updated_at = $2 \
                     WHERE {MINUTE} - $2 <= $4 AND {HOUR} - $2 <= $6 \
                     RETURNING minute_tat, hour_tat"
                )
            });
            let taken: Option<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(SQL.as_str()))
                .bind(subject)
                .bind(now)
                .bind(minute_t)
                .bind(minute_tolerance)
                .bind(hour_t)
                .bind(hour_tolerance)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(match taken {
                Some((minute_tat, hour_tat)) => $crate::db::accounts::RateTaken {
                    allowed: true,
                    state: $crate::auth::gcra::RateState { minute_tat, hour_tat },
                },
                None => $crate::db::accounts::RateTaken { allowed: false, state: rate_state(conn, subject).await? },
            })
        }

        async fn rate_state(
            conn: &mut $conn,
            subject: &str,
        ) -> $crate::error::AppResult<$crate::auth::gcra::RateState> {
            let state: Option<(i64, i64)> =
                sqlx::query_as("SELECT minute_tat, hour_tat FROM rate_limits WHERE subject = $1")
                    .bind(subject)
                    .fetch_optional(&mut *conn)
                    .await?;
            Ok(state.map_or_else(Default::default, |(minute_tat, hour_tat)| $crate::auth::gcra::RateState {
                minute_tat,
                hour_tat,
            }))
        }

        async fn insert_user(
            conn: &mut $conn,
            u: &$crate::db::accounts::UserRow,
            tier: &str,
        ) -> $crate::error::AppResult<bool> {
            let r = sqlx::query(
                "INSERT INTO users (id, email, name, avatar_url, password_hash, tier, disabled, settings_json, \
                 token_version, credits, credits_total, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (email) DO NOTHING",
            )
            .bind(&u.id)
            .bind(&u.email)
            .bind(&u.name)
            .bind(&u.avatar_url)
            .bind(&u.password_hash)
            .bind(tier)
            .bind(u.disabled)
            .bind(&u.settings_json)
            .bind(u.token_version)
            .bind(u.credits)
            .bind(u.credits_total)
            .bind(u.created_at)
            .bind(u.updated_at)
            .execute(&mut *conn)
            .await?;
            Ok(r.rows_affected() == 1)
        }

        async fn quota_state(
            conn: &mut $conn,
            subject: &str,
            day_start: i64,
        ) -> $crate::error::AppResult<$crate::db::accounts::QuotaState> {
            let (images_today, active): (Option<i64>, Option<i64>) = sqlx::query_as(
                "SELECT \
                   CAST(SUM(CASE WHEN created_at >= $2 AND status NOT IN ('failed', 'canceled') \
                     THEN images_reserved ELSE 0 END) AS BIGINT), \
                   CAST(SUM(CASE WHEN status IN ('queued', 'running', 'retrying') THEN 1 ELSE 0 END) AS BIGINT) \
                 FROM generations WHERE quota_subject = $1 \
                   AND (created_at >= $2 OR status IN ('queued', 'running', 'retrying'))",
            )
            .bind(subject)
            .bind(day_start)
            .fetch_one(&mut *conn)
            .await?;
            Ok($crate::db::accounts::QuotaState {
                images_today: images_today.unwrap_or(0),
                active: active.unwrap_or(0),
            })
        }
    };
}
