//! PostgreSQL backend: any number of replicas share one database. Jobs are claimed with
//! `FOR UPDATE SKIP LOCKED`, so concurrent workers never wait on or take each other's job, and
//! replicas wake each other with `LISTEN/NOTIFY` on [`super::EVENTS_CHANNEL`].

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::EVENTS_CHANNEL;
use super::shared::claim_sql;

/// Migrations embedded in the binary, applied at start-up. `Migrator::run` takes a
/// PostgreSQL advisory lock, so replicas starting together migrate once.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// [`super::GenerationDb`] on PostgreSQL.
#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    /// One connection of its own for `LISTEN`, so it never takes one from the workers.
    listen_pool: PgPool,
}

impl Postgres {
    /// Connect with up to `max_connections` connections and apply migrations. Errors name the
    /// host and database, never the password.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url).context("database_url is not a valid postgres:// URL")?;
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default database)")
        );
        let options = options.application_name("easel");
        let listen_pool = PgPoolOptions::new().max_connections(1).connect_lazy_with(options.clone());
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {target}"))?;
        MIGRATIONS.run(&pool).await.context("applying migrations")?;
        Ok(Self { pool, listen_pool })
    }
}

/// The subquery locks the chosen row and skips rows other claims hold, so each concurrent
/// claim gets a different job without waiting; the outer UPDATE then takes it.
static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| claim_sql("FOR UPDATE SKIP LOCKED"));

shared_generation_db!(
    Postgres,
    sqlx::PgConnection,
    claim = CLAIM_SQL.as_str(),
    extra = {
        async fn signal(&self, payload: &str) -> crate::error::AppResult<()> {
            sqlx::query("SELECT pg_notify($1, $2)").bind(EVENTS_CHANNEL).bind(payload).execute(&self.pool).await?;
            Ok(())
        }

        async fn listen(&self) -> crate::error::AppResult<Option<tokio::sync::mpsc::Receiver<String>>> {
            let mut listener = PgListener::connect_with(&self.listen_pool).await?;
            listener.listen(EVENTS_CHANNEL).await?;
            let (tx, rx) = tokio::sync::mpsc::channel(1024);
            tokio::spawn(async move {
                loop {
                    // `recv` reconnects (and re-listens) by itself after a lost connection;
                    // what was sent meanwhile is missed, which polling covers. The task ends
                    // (and closes its connection) when the receiver is dropped.
                    let received = tokio::select! {
                        r = listener.recv() => r,
                        _ = tx.closed() => return,
                    };
                    match received {
                        Ok(n) => {
                            if tx.send(n.payload().to_string()).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "LISTEN connection failed; retrying in 1 s");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
            Ok(Some(rx))
        }

        fn kind(&self) -> crate::config::DatabaseKind {
            crate::config::DatabaseKind::Postgres
        }
    }
);

shared_account_db!(
    Postgres,
    sqlx::PgConnection,
    begin = "BEGIN",
    lock = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
);
