//! Which database and blob store a test server runs on. The same suite runs on every
//! combination (`.ci/run` runs it twice):
//!
//! - default: SQLite in the data directory and blobs in a local directory;
//! - `TEST_DATABASE_URL=postgres://user@host:port/db`: a PostgreSQL database of its own per data
//!   directory, created through that URL (which must be allowed to `CREATE DATABASE`);
//! - `TEST_BLOBS=s3`: blobs in a real S3-protocol server (`s3s-fs`, with SigV4 authentication)
//!   that the test process starts on loopback, under a prefix of its own per data directory.
//!
//! Per data directory, so a test that restarts a server on the same directory finds the same
//! database and blobs again.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use easel::config::{Config, Secret};
use sqlx::Connection;

/// The PostgreSQL server to make test databases in, when the suite runs on PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// Do blobs go to the S3 test server?
pub fn s3_blobs() -> bool {
    std::env::var("TEST_BLOBS").is_ok_and(|v| v == "s3")
}

/// One short name per data directory (kept in a file inside it, so restarts reuse it).
fn name_for(data_dir: &Path) -> String {
    std::fs::create_dir_all(data_dir).unwrap();
    let file = data_dir.join(".test-backend-name");
    if let Ok(name) = std::fs::read_to_string(&file) {
        return name;
    }
    let name = format!("easel_t_{}", easel::service::new_id("x").trim_start_matches("x_"));
    std::fs::write(&file, &name).unwrap();
    name
}

/// Point `config` at this data directory's database and blob store on the selected backends.
pub fn configure(config: &mut Config, data_dir: &Path) {
    if let Some(admin) = postgres_admin_url() {
        config.database_url = Some(Secret::new(postgres_database(&admin, &name_for(data_dir))));
    }
    if s3_blobs() {
        config.blobs = s3_blobs_config(&name_for(data_dir));
    }
}

/// `[blobs]` for this process's S3 test server, under `prefix` of its bucket.
pub fn s3_blobs_config(prefix: &str) -> easel::config::BlobsConfig {
    let s3 = s3_server();
    easel::config::BlobsConfig {
        url: Some(format!("s3://{}/{prefix}", s3.bucket)),
        s3_endpoint: Some(s3.endpoint.clone()),
        s3_region: "us-east-1".into(),
        s3_access_key_id: Some(Secret::new(S3_ACCESS_KEY)),
        s3_secret_access_key: Some(Secret::new(S3_SECRET_KEY)),
        s3_path_style: true,
    }
}

/// Create (once) the database `name` on the server of `admin` and return its URL.
pub fn postgres_database(admin: &str, name: &str) -> String {
    let (base, _) = admin.rsplit_once('/').expect("TEST_DATABASE_URL ends with /database");
    let (base, query) = match admin.split_once('?') {
        Some((_, q)) => (base, format!("?{q}")),
        None => (base, String::new()),
    };
    let admin = admin.to_string();
    let db = name.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to TEST_DATABASE_URL");
            let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(&db)
                .fetch_optional(&mut conn)
                .await
                .unwrap();
            if exists.is_none() {
                let sql = format!("CREATE DATABASE \"{db}\"");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
            }
        })
    })
    .join()
    .unwrap();
    format!("{base}/{name}{query}")
}

/// Everything stored about this data directory's generations and images, as text, to search
/// for things that must never be stored (secrets). SQLite: the database file and its WAL;
/// PostgreSQL: every row of the database as JSON.
pub fn stored_text(config: &Config) -> Vec<u8> {
    if let Some(url) = config.database_url.as_ref().map(|u| u.expose().to_string())
        && url.starts_with("postgres")
    {
        return std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let mut out = Vec::new();
                for table in ["generations", "images"] {
                    let sql = format!("SELECT row_to_json(t)::text FROM {table} t");
                    let rows: Vec<(String,)> =
                        sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap();
                    for (row,) in rows {
                        out.extend_from_slice(row.as_bytes());
                    }
                }
                out
            })
        })
        .join()
        .unwrap();
    }
    let mut out = std::fs::read(config.data_dir.join("easel.db")).unwrap();
    out.extend(std::fs::read(config.data_dir.join("easel.db-wal")).unwrap_or_default());
    out
}

/// A queued generation row as a worker would find it (the request is not meant to run).
pub fn queued_row(id: String, pinned_to: Option<&str>, created_at: i64) -> easel::db::GenerationRow {
    easel::db::GenerationRow {
        id,
        owner_id: None,
        status: "queued".into(),
        model: "local/procedural".into(),
        request_json: "{}".into(),
        metadata_json: "{}".into(),
        progress: 0.0,
        stage: Some("queued".into()),
        attempts: 0,
        max_attempts: 3,
        error_code: None,
        error_message: None,
        provider_metadata_json: None,
        timings_json: None,
        created_at,
        started_at: None,
        completed_at: None,
        pinned_to: pinned_to.map(str::to_string),
        quota_subject: None,
        images_reserved: 1,
        credits_charged: 0,
        style: None,
        retries: 0,
        last_error_code: None,
        last_error_message: None,
        model_used: None,
    }
}

/// Credentials the S3 test server requires (requests are SigV4-checked).
pub const S3_ACCESS_KEY: &str = "easel-test";
/// See [`S3_ACCESS_KEY`].
pub const S3_SECRET_KEY: &str = "easel-test-secret-key";

/// The S3-protocol server of this test process.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket tests use.
    pub bucket: String,
    /// Where `s3s-fs` keeps the objects (`<root>/<bucket>/<key>`).
    pub root: PathBuf,
}

/// Start (once per process) an `s3s-fs` server on a loopback port, on its own thread.
pub fn s3_server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let root = Box::leak(Box::new(tempfile::tempdir().unwrap())).path().to_path_buf();
        let bucket = "easel-test".to_string();
        std::fs::create_dir_all(root.join(&bucket)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let fs_root = root.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let fs = s3s_fs::FileSystem::new(&fs_root).unwrap();
                let mut builder = s3s::service::S3ServiceBuilder::new(fs);
                builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_ACCESS_KEY, S3_SECRET_KEY));
                let service = builder.build();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let http = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                loop {
                    let Ok((socket, _)) = listener.accept().await else { continue };
                    let conn =
                        http.serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone()).into_owned();
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        S3Server { endpoint: format!("http://{addr}"), bucket, root }
    })
}

/// Every object stored under this data directory's prefix (S3) or blob directory (local).
pub fn stored_blobs(config: &Config) -> Vec<PathBuf> {
    let dir = match config.blob_location().unwrap() {
        easel::config::BlobLocation::Dir(dir) => dir,
        easel::config::BlobLocation::S3 { bucket, prefix } => s3_server().root.join(bucket).join(prefix),
    };
    walk(&dir)
}

/// Every file below `dir` (recursively), except hidden ones and object_store staging files.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else if !path.file_name().unwrap().to_string_lossy().starts_with('.')
            // object_store's local staging files (`0.png#1`), left by a process killed mid-write
            && !path.file_name().unwrap().to_string_lossy().contains('#')
        {
            out.push(path)
        }
    }
    out
}
