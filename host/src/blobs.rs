//! Blob storage for image files, through `object_store` so that a local directory and an
//! S3-compatible bucket are the same thing to the rest of the server.
//!
//! Keys are built by the server from ids (`images/<generation id>/<position>.png`), never
//! from user input, so no path a client sends can reach the file system.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};

use crate::config::{BlobLocation, BlobsConfig, Config};
use crate::error::{AppError, AppResult};

/// Where image files live.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    /// The directory of a local store (where interrupted writes can leave staging files).
    local_root: Option<PathBuf>,
}

impl BlobStore {
    /// The store `config` names: `[blobs] url` as a local directory or an S3 bucket.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        match config.blob_location()? {
            BlobLocation::Dir(dir) => Self::local_dir(&dir),
            BlobLocation::S3 { bucket, prefix } => Self::s3(&config.blobs, &bucket, &prefix),
        }
    }

    /// A store in an S3 bucket (AWS S3 or an S3-compatible service), under `prefix`.
    ///
    /// Credentials come from `s3_access_key_id`/`s3_secret_access_key`, else from the standard
    /// `AWS_*` environment variables (and, on AWS, instance credentials). Requests time out
    /// after 30 s (5 s to connect) and transient failures are retried by `object_store`.
    pub fn s3(config: &BlobsConfig, bucket: &str, prefix: &str) -> anyhow::Result<Self> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&config.s3_region)
            .with_virtual_hosted_style_request(!config.s3_path_style)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_secs(30))
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_allow_http(config.s3_endpoint.as_deref().is_some_and(|e| e.starts_with("http://"))),
            );
        if let Some(endpoint) = &config.s3_endpoint {
            // object_store wants a virtual-hosted endpoint to name the bucket already.
            let endpoint = match (config.s3_path_style, endpoint.split_once("://")) {
                (false, Some((scheme, host))) if !host.starts_with(&format!("{bucket}.")) => {
                    format!("{scheme}://{bucket}.{host}")
                }
                _ => endpoint.clone(),
            };
            builder = builder.with_endpoint(endpoint);
        }
        if let (Some(id), Some(secret)) = (&config.s3_access_key_id, &config.s3_secret_access_key) {
            builder = builder.with_access_key_id(id.expose()).with_secret_access_key(secret.expose());
        }
        let s3 = builder.build().with_context(|| format!("configuring the S3 bucket {bucket:?}"))?;
        let inner: Arc<dyn ObjectStore> =
            if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) };
        Ok(Self { inner, local_root: None })
    }

    /// A store rooted at a local directory (created if missing).
    pub fn local_dir(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the blob directory {}", dir.display()))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening the blob directory {}", dir.display()))?;
        Ok(Self { inner: Arc::new(fs), local_root: Some(dir.to_path_buf()) })
    }

    /// Store `bytes` under `key`, replacing what was there (writes are atomic).
    pub async fn put(&self, key: &str, bytes: Bytes) -> AppResult<()> {
        self.inner.put(&ObjectPath::from(key), PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    /// Remove what is under `key` (nothing to remove is not an error).
    pub async fn delete(&self, key: &str) -> AppResult<()> {
        match self.inner.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove every object whose key starts with `prefix` (e.g. `images/gen_…/`).
    pub async fn delete_prefix(&self, prefix: &str) -> AppResult<()> {
        use futures_util::StreamExt;
        let mut listing = self.inner.list(Some(&ObjectPath::from(prefix)));
        while let Some(meta) = listing.next().await {
            match self.inner.delete(&meta?.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The bytes under `key`.
    pub async fn get(&self, key: &str) -> AppResult<Bytes> {
        Ok(self.inner.get(&ObjectPath::from(key)).await?.bytes().await?)
    }

    /// Remove the staging files of writes that never finished, older than `min_age`, and
    /// return how many were removed.
    ///
    /// A local store writes `<key>#<n>` first and renames it to `<key>` when complete
    /// (`object_store`'s atomic put); a process killed in between leaves the `#<n>` file
    /// behind, invisible to listings and never reused. Younger files may belong to a write in
    /// progress (here or in another process on this directory), so only those older than a
    /// job's lease go. S3 writes are single requests and leave nothing: a no-op there.
    pub async fn sweep_staging(&self, min_age: Duration) -> AppResult<usize> {
        let Some(root) = self.local_root.clone() else { return Ok(0) };
        tokio::task::spawn_blocking(move || sweep_dir(&root, min_age))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("staging sweep stopped: {e}")))?
            .map_err(|e| AppError::Internal(anyhow::anyhow!("sweeping staging files: {e}")))
    }

    /// Is the store reachable and are we allowed in? One `HEAD` of a key that is never
    /// written: "not found" is the healthy answer; an auth or network error is not.
    pub async fn ping(&self) -> AppResult<()> {
        match self.inner.head(&ObjectPath::from("easel-ready-probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(AppError::Internal(anyhow::anyhow!("blob store unreachable: {e}"))),
        }
    }
}

/// Is `name` a staging file name: `<anything>#<digits>`?
fn is_staging_name(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(stem, n)| !stem.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Walk `root` (without following links) and remove staging files older than `min_age`.
fn sweep_dir(root: &Path, min_age: Duration) -> std::io::Result<usize> {
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // Removed meanwhile (an image deleted): nothing left to sweep there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            if !kind.is_file() || !entry.file_name().to_str().is_some_and(is_staging_name) {
                continue;
            }
            let age = entry.metadata()?.modified().ok().and_then(|m| now.duration_since(m).ok());
            if age.is_some_and(|age| age >= min_age) {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local_dir(dir.path()).unwrap();
        store.put("images/gen_1/0.png", Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(store.get("images/gen_1/0.png").await.unwrap(), Bytes::from_static(b"abc"));
        let err = store.get("images/none.png").await.unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::NotFound);
        store.ping().await.unwrap();
    }

    #[test]
    fn staging_names() {
        for name in ["0.png#1", "0.png#123", "thumb.webp#9"] {
            assert!(is_staging_name(name), "{name}");
        }
        for name in ["0.png", "#1", "0.png#", "0.png#1a", "a#b"] {
            assert!(!is_staging_name(name), "{name}");
        }
    }

    #[tokio::test]
    async fn interrupted_writes_are_swept_once_older_than_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local_dir(dir.path()).unwrap();
        store.put("images/gen_1/0.png", Bytes::from_static(b"kept")).await.unwrap();
        // What a process killed between writing and renaming leaves behind.
        let gen_dir = dir.path().join("images/gen_1");
        let old = gen_dir.join("1.png#1");
        std::fs::write(&old, b"half").unwrap();
        let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&old).unwrap().set_modified(an_hour_ago).unwrap();
        // A write in progress right now (maybe in another process on this directory).
        let fresh = gen_dir.join("2.png#7");
        std::fs::write(&fresh, b"writing").unwrap();

        assert_eq!(store.sweep_staging(Duration::from_secs(30)).await.unwrap(), 1);
        assert!(!old.exists() && fresh.exists());
        assert_eq!(store.get("images/gen_1/0.png").await.unwrap(), Bytes::from_static(b"kept"));
        assert_eq!(store.sweep_staging(Duration::ZERO).await.unwrap(), 1);
        assert!(!fresh.exists());
    }
}
