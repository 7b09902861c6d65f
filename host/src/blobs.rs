//! Blob storage for image files, through `object_store` so that a local directory and an
//! S3-compatible bucket are the same thing to the rest of the server.
//!
//! Keys are built by the server from ids (`images/<generation id>/<position>.png`), never
//! from user input, so no path a client sends can reach the file system.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::AppResult;

/// Where image files live.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
}

impl BlobStore {
    /// A store rooted at a local directory (created if missing).
    pub fn local_dir(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the blob directory {}", dir.display()))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening the blob directory {}", dir.display()))?;
        Ok(Self { inner: Arc::new(fs) })
    }

    /// Store `bytes` under `key`, replacing what was there (writes are atomic).
    pub async fn put(&self, key: &str, bytes: Bytes) -> AppResult<()> {
        self.inner.put(&ObjectPath::from(key), PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    /// The bytes under `key`.
    pub async fn get(&self, key: &str) -> AppResult<Bytes> {
        Ok(self.inner.get(&ObjectPath::from(key)).await?.bytes().await?)
    }

    /// Is the store reachable? (Lists nothing, just touches the root.)
    pub async fn ping(&self) -> AppResult<()> {
        use futures_util::StreamExt;
        let mut listing = self.inner.list(None);
        if let Some(Err(e)) = listing.next().await {
            return Err(e.into());
        }
        Ok(())
    }
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
}
