//! The SQL both backends share. Both speak `$n` placeholders and have the same schema
//! (`migrations/sqlite` and `migrations/postgres` mirror each other version by version), so
//! one body of queries serves both; each backend supplies its claim statement and its
//! replica signalling.

/// Columns of [`super::GenerationRow`], in a `SELECT` list.
pub(super) const GENERATION_COLUMNS: &str = "id, owner_id, status, model, request_json, metadata_json, progress, \
     stage, attempts, max_attempts, error_code, error_message, provider_metadata_json, timings_json, \
     created_at, started_at, completed_at, pinned_to, quota_subject, images_reserved, credits_charged, style, \
     retries, last_error_code, last_error_message, model_used";

/// The claim's job choice, shared by both backends: the oldest queued job, or a running one
/// whose lease expired, that this replica may run (unpinned, pinned to it, or pinned to a
/// replica not seen since $5). `status IN (…)` comes first and alone so the partial index
/// `generations_active` serves the scan on both databases. Binds: $3 now, $4 replica,
/// $5 replicas seen after.
pub(super) const CLAIMABLE: &str = "status IN ('queued', 'running', 'retrying') \
     AND (status = 'queued' OR lease_expires_at < $3) \
     AND (pinned_to IS NULL OR pinned_to = $4 \
          OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = pinned_to AND r.last_seen >= $5))";

/// The claim statement: take the first [`CLAIMABLE`] job by id, with `lock` after the
/// subquery (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite needs none, its writer is single).
/// Binds: $1 worker, $2 lease until, $3 now, $4 replica, $5 foreign pins before.
pub(super) fn claim_sql(lock: &str) -> String {
    format!(
        "UPDATE generations SET status = 'running', lease_owner = $1, lease_expires_at = $2, \
           attempts = attempts + 1, started_at = COALESCE(started_at, $3), stage = 'claimed' \
         WHERE id = (SELECT id FROM generations WHERE {CLAIMABLE} ORDER BY id LIMIT 1 {lock}) \
         RETURNING id, owner_id, request_json, attempts, max_attempts"
    )
}

/// Implements [`super::GenerationDb`] for a backend struct with a `pool` field.
///
/// `claim` is the backend's claim statement (binds: $1 worker, $2 lease until, $3 now,
/// $4 replica, $5 foreign pins before); `extra` holds the backend's `signal`, `listen` and
/// `kind` methods.
macro_rules! shared_generation_db {
    ($ty:ty, $conn:ty, claim = $claim:expr, extra = { $($extra:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::db::GenerationDb for $ty {
            async fn ping(&self) -> $crate::error::AppResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn insert_generation(&self, g: &$crate::db::GenerationRow) -> $crate::error::AppResult<()> {
                let mut conn = self.pool.acquire().await?;
                insert_generation(&mut conn, g).await
            }

            async fn get_generation(
                &self,
                id: &str,
            ) -> $crate::error::AppResult<Option<$crate::db::GenerationRow>> {
                let sql = format!("SELECT {} FROM generations WHERE id = $1", $crate::db::shared::GENERATION_COLUMNS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?)
            }

            async fn list_generations(
                &self,
                q: &$crate::db::GenerationQuery,
            ) -> $crate::error::AppResult<Vec<$crate::db::GenerationRow>> {
                let sql = format!(
                    "SELECT {} FROM generations \
                     WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) AND ($4 IS NULL OR owner_id = $4) \
                     ORDER BY id DESC LIMIT $3",
                    $crate::db::shared::GENERATION_COLUMNS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&q.status)
                    .bind(&q.before)
                    .bind(i64::from(q.limit) + 1)
                    .bind(&q.owner)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn images_of(&self, generation_id: &str) -> $crate::error::AppResult<Vec<$crate::db::ImageRow>> {
                Ok(sqlx::query_as("SELECT * FROM images WHERE generation_id = $1 ORDER BY position")
                    .bind(generation_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn get_image(&self, id: &str) -> $crate::error::AppResult<Option<$crate::db::ImageRow>> {
                Ok(sqlx::query_as("SELECT * FROM images WHERE id = $1").bind(id).fetch_optional(&self.pool).await?)
            }

            async fn queue_position(&self, id: &str) -> $crate::error::AppResult<i64> {
                let (n,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM generations WHERE status = 'queued' AND id < $1")
                        .bind(id)
                        .fetch_one(&self.pool)
                        .await?;
                Ok(n)
            }

            async fn claim(
                &self,
                c: &$crate::db::ClaimRequest<'_>,
            ) -> $crate::error::AppResult<Option<$crate::db::ClaimedJob>> {
                Ok(sqlx::query_as(sqlx::AssertSqlSafe($claim))
                    .bind(c.worker)
                    .bind(c.lease_until)
                    .bind(c.now)
                    .bind(c.replica)
                    .bind(c.replicas_seen_after)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn heartbeat(&self, id: &str, worker: &str, lease_until: i64) -> $crate::error::AppResult<bool> {
                let r = sqlx::query(
                    "UPDATE generations SET lease_expires_at = $1 \
                     WHERE id = $2 AND lease_owner = $3 AND status IN ('running', 'retrying')",
                )
                .bind(lease_until)
                .bind(id)
                .bind(worker)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn set_progress(
                &self,
                id: &str,
                worker: &str,
                progress: f64,
                stage: &str,
            ) -> $crate::error::AppResult<bool> {
                let r = sqlx::query(
                    "UPDATE generations SET status = 'running', progress = $1, stage = $2 \
                     WHERE id = $3 AND lease_owner = $4 AND status IN ('running', 'retrying') AND progress <= $1",
                )
                .bind(progress)
                .bind(stage)
                .bind(id)
                .bind(worker)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn insert_image(&self, image: &$crate::db::ImageRow) -> $crate::error::AppResult<()> {
                let mut conn = self.pool.acquire().await?;
                insert_image(&mut conn, image).await
            }

            async fn edits_of(&self, parent_id: &str) -> $crate::error::AppResult<Vec<$crate::db::ImageRow>> {
                Ok(sqlx::query_as("SELECT * FROM images WHERE parent_id = $1 ORDER BY id")
                    .bind(parent_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn finish(
                &self,
                id: &str,
                worker: &str,
                outcome: &$crate::db::Outcome,
                timings_json: &str,
                now: i64,
            ) -> $crate::error::AppResult<bool> {
                use $crate::db::Outcome;
                let mut tx = self.pool.begin().await?;
                let (status, code, message, provider_meta, progress, model_used) = match outcome {
                    Outcome::Succeeded { provider_metadata_json, model_used, .. } => {
                        ("succeeded", None, None, Some(provider_metadata_json.as_str()), 100.0, Some(model_used.as_str()))
                    }
                    Outcome::Failed { code, message } => {
                        ("failed", Some(code.as_str()), Some(message.as_str()), None, 0.0, None)
                    }
                };
                // Only the lease holder of a running job may finish it, so a worker that lost
                // its lease (and the job to another worker) writes nothing.
                let r = sqlx::query(
                    "UPDATE generations SET status = $1, error_code = $2, error_message = $3, \
                       provider_metadata_json = $4, timings_json = $5, completed_at = $6, \
                       progress = CASE WHEN $1 = 'succeeded' THEN $7 ELSE progress END, \
                       stage = $1, lease_owner = NULL, lease_expires_at = NULL, \
                       model_used = COALESCE($10, model_used) \
                     WHERE id = $8 AND lease_owner = $9 AND status IN ('running', 'retrying')",
                )
                .bind(status)
                .bind(code)
                .bind(message)
                .bind(provider_meta)
                .bind(timings_json)
                .bind(now)
                .bind(progress)
                .bind(id)
                .bind(worker)
                .bind(model_used)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if let Outcome::Succeeded { images, .. } = outcome {
                    for i in images {
                        insert_image(&mut *tx, i).await?;
                    }
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn set_retrying(
                &self,
                id: &str,
                worker: &str,
                retry: &$crate::db::Retry<'_>,
            ) -> $crate::error::AppResult<bool> {
                let r = sqlx::query(
                    "UPDATE generations SET status = 'retrying', stage = $1, retries = retries + 1, progress = 5, \
                       last_error_code = $2, last_error_message = $3 \
                     WHERE id = $4 AND lease_owner = $5 AND status IN ('running', 'retrying')",
                )
                .bind(retry.stage)
                .bind(retry.code)
                .bind(retry.message)
                .bind(id)
                .bind(worker)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn replica_seen(&self, replica: &str, now: i64) -> $crate::error::AppResult<()> {
                sqlx::query(
                    "INSERT INTO replicas (id, started_at, last_seen) VALUES ($1, $2, $2) \
                     ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen",
                )
                .bind(replica)
                .bind(now)
                .execute(&self.pool)
                .await?;
                sqlx::query("DELETE FROM replicas WHERE last_seen < $1")
                    .bind(now - 24 * 3600 * 1000)
                    .execute(&self.pool)
                    .await?;
                sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(now - $crate::db::IDEMPOTENCY_TTL_MS)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn replica_gone(&self, replica: &str) -> $crate::error::AppResult<()> {
                sqlx::query("DELETE FROM replicas WHERE id = $1").bind(replica).execute(&self.pool).await?;
                Ok(())
            }

            async fn job_counts(&self) -> $crate::error::AppResult<Vec<(String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT status, COUNT(*) FROM generations \
                     WHERE status IN ('queued', 'running', 'retrying') GROUP BY status",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn cancel(&self, id: &str, now: i64) -> $crate::error::AppResult<bool> {
                let r = sqlx::query(
                    "UPDATE generations SET status = 'canceled', stage = 'canceled', completed_at = $1, \
                       lease_owner = NULL, lease_expires_at = NULL \
                     WHERE id = $2 AND status IN ('queued', 'running', 'retrying')",
                )
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn idempotent_replay(
                &self,
                k: &$crate::db::IdempotencyKey<'_>,
            ) -> $crate::error::AppResult<Option<$crate::db::Replay>> {
                let mut conn = self.pool.acquire().await?;
                find_key(&mut conn, k).await
            }

            async fn insert_generation_once(
                &self,
                g: &$crate::db::GenerationRow,
                k: &$crate::db::IdempotencyKey<'_>,
            ) -> $crate::error::AppResult<Option<$crate::db::Replay>> {
                let mut tx = self.pool.begin().await?;
                if let Some(replay) = take_key(&mut *tx, k, &g.id).await? {
                    tx.rollback().await?;
                    return Ok(Some(replay));
                }
                insert_generation(&mut *tx, g).await?;
                tx.commit().await?;
                Ok(None)
            }

            async fn insert_image_once(
                &self,
                image: &$crate::db::ImageRow,
                k: &$crate::db::IdempotencyKey<'_>,
            ) -> $crate::error::AppResult<Option<$crate::db::Replay>> {
                let mut tx = self.pool.begin().await?;
                if let Some(replay) = take_key(&mut *tx, k, &image.id).await? {
                    tx.rollback().await?;
                    return Ok(Some(replay));
                }
                insert_image(&mut *tx, image).await?;
                tx.commit().await?;
                Ok(None)
            }

            $($extra)*
        }

        /// The live (not expired) record of a key, if any.
        async fn find_key(
            conn: &mut $conn,
            k: &$crate::db::IdempotencyKey<'_>,
        ) -> $crate::error::AppResult<Option<$crate::db::Replay>> {
            let found: Option<(String, String)> = sqlx::query_as(
                "SELECT resource_id, request_hash FROM idempotency_keys \
                 WHERE scope = $1 AND key = $2 AND created_at >= $3",
            )
            .bind(k.scope)
            .bind(k.key)
            .bind(k.now - $crate::db::IDEMPOTENCY_TTL_MS)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(found.map(|(resource_id, request_hash)| $crate::db::Replay { resource_id, request_hash }))
        }

        /// Record `resource_id` under the key unless a live record exists (returned instead).
        /// Expired records are dropped first. The insert's conflict check makes concurrent
        /// takers of one key wait for the first transaction and then see its record.
        async fn take_key(
            conn: &mut $conn,
            k: &$crate::db::IdempotencyKey<'_>,
            resource_id: &str,
        ) -> $crate::error::AppResult<Option<$crate::db::Replay>> {
            // Only this key, if it expired (the table-wide sweep runs with the replica heartbeat).
            sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at < $3")
                .bind(k.scope)
                .bind(k.key)
                .bind(k.now - $crate::db::IDEMPOTENCY_TTL_MS)
                .execute(&mut *conn)
                .await?;
            let r = sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, request_hash, resource_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(k.scope)
            .bind(k.key)
            .bind(k.request_hash)
            .bind(resource_id)
            .bind(k.now)
            .execute(&mut *conn)
            .await?;
            if r.rows_affected() == 1 {
                return Ok(None);
            }
            let found = find_key(conn, k).await?;
            Ok(Some(found.ok_or_else(|| {
                $crate::error::AppError::Internal(anyhow::anyhow!("idempotency key conflict without a record"))
            })?))
        }

        async fn insert_generation(conn: &mut $conn, g: &$crate::db::GenerationRow) -> $crate::error::AppResult<()> {
            sqlx::query(
                "INSERT INTO generations (id, owner_id, status, model, request_json, metadata_json, progress, \
                 stage, attempts, max_attempts, created_at, pinned_to, quota_subject, images_reserved, \
                 credits_charged, style) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(&g.id)
            .bind(&g.owner_id)
            .bind(&g.status)
            .bind(&g.model)
            .bind(&g.request_json)
            .bind(&g.metadata_json)
            .bind(g.progress)
            .bind(&g.stage)
            .bind(g.attempts)
            .bind(g.max_attempts)
            .bind(g.created_at)
            .bind(&g.pinned_to)
            .bind(&g.quota_subject)
            .bind(g.images_reserved)
            .bind(g.credits_charged)
            .bind(&g.style)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn insert_image(conn: &mut $conn, i: &$crate::db::ImageRow) -> $crate::error::AppResult<()> {
            sqlx::query(
                "INSERT INTO images (id, generation_id, owner_id, position, blob_key, width, height, format, \
                 bytes, seed, prompt, negative_prompt, model, aspect_ratio, metadata_json, created_at, \
                 variants_json, parent_id, style, archetype) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
            )
            .bind(&i.id)
            .bind(&i.generation_id)
            .bind(&i.owner_id)
            .bind(i.position)
            .bind(&i.blob_key)
            .bind(i.width)
            .bind(i.height)
            .bind(&i.format)
            .bind(i.bytes)
            .bind(i.seed)
            .bind(&i.prompt)
            .bind(&i.negative_prompt)
            .bind(&i.model)
            .bind(&i.aspect_ratio)
            .bind(&i.metadata_json)
            .bind(i.created_at)
            .bind(&i.variants_json)
            .bind(&i.parent_id)
            .bind(&i.style)
            .bind(&i.archetype)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
    };
}
