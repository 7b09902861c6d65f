//! SQLite backend (WAL mode): the zero-set-up default. Several processes on one machine may
//! share the file; they find each other's work by polling.

use std::path::Path;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::shared::claim_sql;

/// Migrations embedded in the binary, applied at start-up.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// [`super::GenerationDb`] on SQLite.
#[derive(Clone)]
pub struct Sqlite {
    pool: SqlitePool,
}

impl Sqlite {
    /// Open (creating if needed) the database at `url` with up to `max_connections`
    /// connections, and apply migrations. Errors name the file, never more of the URL.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .context("database_url is not a valid sqlite: URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let file = Path::new(options.get_filename()).to_path_buf();
        if let Some(parent) = file.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the database directory {}", parent.display()))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .with_context(|| format!("opening the SQLite database {}", file.display()))?;
        MIGRATIONS.run(&pool).await.context("applying migrations")?;
        Ok(Self { pool })
    }
}

/// One statement, so SQLite's single writer makes it atomic: no two workers (in any process
/// sharing the file) get one job.
static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| claim_sql(""));

shared_generation_db!(
    Sqlite,
    sqlx::SqliteConnection,
    claim = CLAIM_SQL.as_str(),
    extra = {
        async fn signal(&self, _payload: &str) -> crate::error::AppResult<()> {
            Ok(())
        }

        async fn listen(&self) -> crate::error::AppResult<Option<tokio::sync::mpsc::Receiver<String>>> {
            Ok(None)
        }

        fn kind(&self) -> crate::config::DatabaseKind {
            crate::config::DatabaseKind::Sqlite
        }
    }
);

shared_account_db!(Sqlite, sqlx::SqliteConnection, begin = "BEGIN IMMEDIATE", lock = "");
