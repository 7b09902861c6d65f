//! SQLite backend (WAL mode): the zero-set-up default.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{ClaimedJob, GenerationDb, GenerationQuery, GenerationRow, ImageRow, Outcome};
use crate::error::AppResult;

/// Migrations embedded in the binary, applied at start-up.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// [`GenerationDb`] on SQLite.
#[derive(Clone)]
pub struct Sqlite {
    pool: SqlitePool,
}

impl Sqlite {
    /// Open (creating if needed) the database at `url` and apply migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("database_url {url:?} is not a valid sqlite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(parent) = Path::new(options.get_filename()).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the database directory {}", parent.display()))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .with_context(|| format!("opening {url}"))?;
        MIGRATIONS.run(&pool).await.context("applying migrations")?;
        Ok(Self { pool })
    }
}

const GENERATION_COLUMNS: &str = "id, owner_id, status, model, request_json, metadata_json, progress, stage, \
     attempts, max_attempts, error_code, error_message, provider_metadata_json, timings_json, \
     created_at, started_at, completed_at";

#[async_trait]
impl GenerationDb for Sqlite {
    async fn ping(&self) -> AppResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_generation(&self, g: &GenerationRow) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO generations (id, owner_id, status, model, request_json, metadata_json, progress, \
             stage, attempts, max_attempts, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_generation(&self, id: &str) -> AppResult<Option<GenerationRow>> {
        let sql = format!("SELECT {GENERATION_COLUMNS} FROM generations WHERE id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?)
    }

    async fn list_generations(&self, q: &GenerationQuery) -> AppResult<Vec<GenerationRow>> {
        let sql = format!(
            "SELECT {GENERATION_COLUMNS} FROM generations \
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&q.status)
            .bind(&q.before)
            .bind(i64::from(q.limit) + 1)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn images_of(&self, generation_id: &str) -> AppResult<Vec<ImageRow>> {
        Ok(sqlx::query_as("SELECT * FROM images WHERE generation_id = $1 ORDER BY position")
            .bind(generation_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn get_image(&self, id: &str) -> AppResult<Option<ImageRow>> {
        Ok(sqlx::query_as("SELECT * FROM images WHERE id = $1").bind(id).fetch_optional(&self.pool).await?)
    }

    async fn queue_position(&self, id: &str) -> AppResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM generations WHERE status = 'queued' AND id < $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    async fn claim(&self, worker: &str, now: i64, lease_until: i64) -> AppResult<Option<ClaimedJob>> {
        // One statement, so SQLite's single writer makes it atomic: no two workers get one job.
        Ok(sqlx::query_as(
            "UPDATE generations SET status = 'running', lease_owner = $1, lease_expires_at = $2, \
               attempts = attempts + 1, started_at = COALESCE(started_at, $3), stage = 'claimed' \
             WHERE id = (SELECT id FROM generations \
                         WHERE status = 'queued' OR (status IN ('running', 'retrying') AND lease_expires_at < $3) \
                         ORDER BY id LIMIT 1) \
             RETURNING id, request_json, attempts, max_attempts",
        )
        .bind(worker)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn heartbeat(&self, id: &str, worker: &str, lease_until: i64) -> AppResult<bool> {
        let r = sqlx::query(
            "UPDATE generations SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
        )
        .bind(lease_until)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_progress(&self, id: &str, worker: &str, progress: f64, stage: &str) -> AppResult<bool> {
        let r = sqlx::query(
            "UPDATE generations SET progress = $1, stage = $2 WHERE id = $3 AND lease_owner = $4 AND status = 'running'",
        )
        .bind(progress)
        .bind(stage)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn insert_image(&self, image: &ImageRow) -> AppResult<()> {
        let mut conn = self.pool.acquire().await?;
        insert_image(&mut conn, image).await
    }

    async fn edits_of(&self, parent_id: &str) -> AppResult<Vec<ImageRow>> {
        Ok(sqlx::query_as("SELECT * FROM images WHERE parent_id = $1 ORDER BY id")
            .bind(parent_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn finish(&self, id: &str, worker: &str, outcome: &Outcome, timings_json: &str, now: i64) -> AppResult<bool> {
        let mut tx = self.pool.begin().await?;
        let (status, code, message, provider_meta, progress) = match outcome {
            Outcome::Succeeded { provider_metadata_json, .. } => {
                ("succeeded", None, None, Some(provider_metadata_json.as_str()), 100.0)
            }
            Outcome::Failed { code, message } => ("failed", Some(code.as_str()), Some(message.as_str()), None, 0.0),
        };
        let r = sqlx::query(
            "UPDATE generations SET status = $1, error_code = $2, error_message = $3, provider_metadata_json = $4, \
               timings_json = $5, completed_at = $6, progress = CASE WHEN $1 = 'succeeded' THEN $7 ELSE progress END, \
               stage = $1, lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $8 AND lease_owner = $9 AND status = 'running'",
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
}

async fn insert_image(conn: &mut sqlx::SqliteConnection, i: &ImageRow) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO images (id, generation_id, owner_id, position, blob_key, width, height, format, \
         bytes, seed, prompt, negative_prompt, model, aspect_ratio, metadata_json, created_at, variants_json, \
         parent_id, style, archetype) \
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
