//! The job side: workers claim queued generations with a lease, run the provider plugin,
//! crop to the exact ratio, encode, store the files, and finish the job in one transaction.
//!
//! A worker that dies leaves its lease to expire; another worker then claims the job again
//! (`attempts` counts claims). Blob keys are derived from the generation id and position, so
//! a retried job overwrites rather than duplicates, and only the worker that still holds the
//! lease may write the image rows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use image::RgbaImage;

use super::generations::GenerationSpec;
use super::{App, new_id, now_ms};
use crate::db::{ClaimRequest, ClaimedJob, ImageRow, Outcome};
use crate::error::{AppError, ErrorCode};
use crate::imaging::{self, Ratio};
use crate::plugins::CallError;
use crate::plugins::runtime::{ProgressSink, abi};

/// A failure that ends a job, with the code clients see.
struct JobFailure {
    code: ErrorCode,
    message: String,
}

impl JobFailure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<CallError> for JobFailure {
    fn from(e: CallError) -> Self {
        let code = match e {
            CallError::Plugin { .. } | CallError::Retryable { .. } => ErrorCode::ProviderError,
            CallError::Timeout(_) | CallError::Memory(_) | CallError::Trap(_) | CallError::WrongKind(_) => {
                ErrorCode::PluginError
            }
        };
        Self::new(code, e.to_string())
    }
}

impl From<AppError> for JobFailure {
    fn from(e: AppError) -> Self {
        tracing::error!(error = ?e, "job failed on a server error");
        Self::new(ErrorCode::InternalError, "the server failed while storing the result; see its log")
    }
}

impl App {
    /// Start `jobs.workers` worker tasks; they stop when `shutdown` is notified.
    pub fn start_workers(&self, shutdown: Arc<tokio::sync::Notify>) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.config.jobs.workers)
            .map(|n| {
                let app = self.clone();
                let worker = format!("wrk_{}_{n}", self.replica_id.trim_start_matches("rep_"));
                let shutdown = Arc::clone(&shutdown);
                tokio::spawn(async move { app.worker_loop(worker, shutdown).await })
            })
            .collect()
    }

    async fn worker_loop(self, worker: String, shutdown: Arc<tokio::sync::Notify>) {
        let poll = Duration::from_millis(self.config.jobs.poll_interval_ms);
        let lease_ms = self.config.jobs.lease_seconds as i64 * 1000;
        loop {
            let wake = self.wake.notified();
            let stop = shutdown.notified();
            // Subscribed before the claim, so a cancel right after it is not missed.
            let events = self.events.subscribe();
            let now = now_ms();
            let claim = ClaimRequest {
                worker: &worker,
                replica: &self.replica_id,
                now,
                lease_until: now + lease_ms,
                // A job pinned to another replica (which holds the caller's key) is left to it
                // while it is alive; once it has not been seen for two leases, the job is
                // failed here with a clear message rather than left waiting.
                replicas_seen_after: now - 2 * lease_ms,
            };
            match self.db.claim(&claim).await {
                Ok(Some(job)) => {
                    self.run_job(&worker, job, events).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = ?e, "claiming a job failed"),
            }
            tokio::select! {
                _ = wake => {}
                _ = tokio::time::sleep(poll) => {}
                _ = stop => return,
            }
        }
    }

    /// Run one claimed job to its end.
    #[tracing::instrument(skip_all, fields(generation_id = %job.id, attempt = job.attempts))]
    async fn run_job(
        &self,
        worker: &str,
        job: ClaimedJob,
        mut events: tokio::sync::broadcast::Receiver<super::GenerationEvent>,
    ) {
        let started = Instant::now();
        let mut timings = BTreeMap::new();
        if job.attempts > job.max_attempts {
            let message = format!(
                "the job was interrupted {} times (its worker stopped or crashed); giving up",
                job.attempts - 1
            );
            self.finish(worker, &job.id, Outcome::Failed { code: "internal_error".into(), message }, &timings).await;
            return;
        }
        self.publish(&job.id, "running", 0.0, "claimed");

        // Stop working on the job as soon as it is no longer ours: canceled (this replica's
        // event, another replica's relayed one, or a refused heartbeat) or taken over.
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel();
        let heartbeat = self.spawn_heartbeat(worker, &job.id, lost_tx);
        let canceled = async {
            loop {
                match events.recv().await {
                    Ok(e) if e.id == job.id && e.status == "canceled" => return,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
                }
            }
        };
        let result = tokio::select! {
            r = self.execute(worker, &job, &mut timings) => Some(r),
            _ = canceled => None,
            _ = lost_rx => None,
        };
        heartbeat.abort();
        let Some(result) = result else {
            // Whatever the plugin call still running in the background returns is dropped;
            // files it already wrote are removed (no row points at them).
            tracing::info!("stopped: the generation was canceled or is no longer this worker's");
            self.remove_unowned_files(&job.id).await;
            return;
        };

        timings.insert("total_ms", started.elapsed().as_millis() as u64);
        let outcome = match result {
            Ok((images, provider_metadata_json)) => Outcome::Succeeded { images, provider_metadata_json },
            Err(f) => {
                tracing::warn!(code = f.code.as_str(), message = %f.message, "generation failed");
                Outcome::Failed { code: f.code.as_str().into(), message: f.message }
            }
        };
        let status = if matches!(outcome, Outcome::Succeeded { .. }) { "succeeded" } else { "failed" };
        let recorded = self.finish(worker, &job.id, outcome, &timings).await;
        if !recorded || status == "failed" {
            self.remove_unowned_files(&job.id).await;
        }
        if recorded {
            let model = serde_json::from_str::<serde_json::Value>(&job.request_json)
                .ok()
                .and_then(|v| v["model"].as_str().map(str::to_string))
                .unwrap_or_default();
            let metrics = &crate::metrics::METRICS;
            metrics.generations_finished.with_label_values(&[model.as_str(), status]).inc();
            metrics.generation_duration.with_label_values(&[status]).observe(started.elapsed().as_secs_f64());
        }
    }

    /// Record the outcome; true when it was ours to record.
    async fn finish(&self, worker: &str, id: &str, outcome: Outcome, timings: &BTreeMap<&str, u64>) -> bool {
        let status = if matches!(outcome, Outcome::Succeeded { .. }) { "succeeded" } else { "failed" };
        let timings_json = serde_json::to_string(timings).unwrap_or_else(|_| "{}".into());
        match self.db.finish(id, worker, &outcome, &timings_json, now_ms()).await {
            Ok(true) => {
                tracing::info!(status, timings = %timings_json, "generation finished");
                if status == "failed"
                    && let Err(e) = self.db.refund_credits(Some(id)).await
                {
                    tracing::warn!(error = ?e, "refunding the credits of a failed generation failed; the sweep will");
                }
                self.publish(id, status, if status == "succeeded" { 100.0 } else { 0.0 }, status);
                true
            }
            Ok(false) => {
                tracing::warn!("lost the lease before finishing (canceled, or another worker owns the job)");
                false
            }
            Err(e) => {
                tracing::error!(error = ?e, "recording the job's outcome failed; the lease will expire and it will run again");
                false
            }
        }
    }

    /// Remove the files a job stored before it ended without images (`images/<id>/…`): only
    /// when the generation is final as `canceled` or `failed` and no image row points at them,
    /// so files that another worker (which took the job over) stores are never touched.
    async fn remove_unowned_files(&self, id: &str) {
        let Ok(Some(g)) = self.db.get_generation(id).await else { return };
        if !matches!(g.status.as_str(), "canceled" | "failed") {
            return;
        }
        if matches!(self.db.images_of(id).await, Ok(images) if images.is_empty())
            && let Err(e) = self.blobs.delete_prefix(&format!("images/{id}/")).await
        {
            tracing::warn!(error = ?e, "removing the files of an unfinished job failed");
        }
    }

    fn spawn_heartbeat(
        &self,
        worker: &str,
        id: &str,
        lost: tokio::sync::oneshot::Sender<()>,
    ) -> tokio::task::JoinHandle<()> {
        let (app, worker, id) = (self.clone(), worker.to_string(), id.to_string());
        let lease_ms = app.config.jobs.lease_seconds as i64 * 1000;
        tokio::spawn(async move {
            let every = Duration::from_millis((lease_ms / 3).max(500) as u64);
            loop {
                tokio::time::sleep(every).await;
                match app.db.heartbeat(&id, &worker, now_ms() + lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let _ = lost.send(());
                        return;
                    }
                    Err(e) => tracing::warn!(error = ?e, "heartbeat failed"),
                }
            }
        })
    }

    /// Progress reported by the plugin: 5..=85 of the job, written at most every 200 ms.
    fn progress_sink(&self, worker: &str, id: &str) -> ProgressSink {
        let (app, worker, id) = (self.clone(), worker.to_string(), id.to_string());
        let last = Arc::new(AtomicU64::new(0));
        let handle = tokio::runtime::Handle::current();
        Arc::new(move |fraction: f32, stage: &str| {
            let now = now_ms() as u64;
            if now.saturating_sub(last.load(Ordering::Relaxed)) < 200 && fraction < 1.0 {
                return;
            }
            last.store(now, Ordering::Relaxed);
            let progress = 5.0 + 80.0 * f64::from(fraction);
            let (app, worker, id, stage) = (app.clone(), worker.clone(), id.clone(), stage.to_string());
            handle.spawn(async move {
                if let Ok(true) = app.db.set_progress(&id, &worker, progress, &stage).await {
                    app.publish(&id, "running", progress, &stage);
                }
            });
        })
    }

    async fn execute(
        &self,
        worker: &str,
        job: &ClaimedJob,
        timings: &mut BTreeMap<&'static str, u64>,
    ) -> Result<(Vec<ImageRow>, String), JobFailure> {
        let spec: GenerationSpec = serde_json::from_str(&job.request_json)
            .map_err(|e| JobFailure::new(ErrorCode::InternalError, format!("unreadable job request: {e}")))?;
        let (plugin, _model) = self.plugins.find_model(&spec.model).ok_or_else(|| {
            JobFailure::new(ErrorCode::ProviderError, format!("model {} is no longer available", spec.model))
        })?;
        let model_id = spec.model.split_once('/').map(|(_, m)| m.to_string()).unwrap_or_default();
        let request = abi::GenerateRequest {
            model: model_id,
            prompt: spec.provider_prompt.clone().unwrap_or_else(|| spec.prompt.clone()),
            negative_prompt: if spec.provider_prompt.is_some() {
                spec.provider_negative_prompt.clone()
            } else {
                spec.negative_prompt.clone()
            },
            width: spec.draw_width,
            height: spec.draw_height,
            n: spec.n,
            seed: spec.seed,
            steps: spec.steps,
            guidance_scale: spec.guidance_scale,
            quality: spec.quality.clone(),
            style_hint: spec.style_hint.clone(),
            input_image: None,
            mask: None,
            strength: None,
            loras: Vec::new(),
            options_json: "{}".into(),
        };
        let caller_key = self.caller_keys.lock().unwrap_or_else(|e| e.into_inner()).remove(&job.id).map(|(k, _)| k);
        if spec.uses_caller_key && caller_key.is_none() {
            return Err(JobFailure::new(
                ErrorCode::ProviderError,
                "the caller's provider key is no longer available (it is kept in memory only, and the job \
                 moved to another server or the server restarted); submit the generation again",
            ));
        }
        let _ = self.db.set_progress(&job.id, worker, 5.0, "generating").await;
        self.publish(&job.id, "running", 5.0, "generating");

        let t = Instant::now();
        let response = plugin.generate(request, Some(self.progress_sink(worker, &job.id)), caller_key).await?;
        timings.insert("provider_ms", t.elapsed().as_millis() as u64);
        if response.images.len() != spec.n as usize {
            return Err(JobFailure::new(
                ErrorCode::ProviderError,
                format!("the provider returned {} images for n = {}", response.images.len(), spec.n),
            ));
        }
        let provider_metadata: serde_json::Value =
            serde_json::from_str(&response.metadata_json).unwrap_or_else(|_| serde_json::json!({}));

        let _ = self.db.set_progress(&job.id, worker, 90.0, "storing").await;
        self.publish(&job.id, "running", 90.0, "storing");
        let t = Instant::now();
        let spec = Arc::new(spec);
        let mut rows = Vec::with_capacity(response.images.len());
        for (position, generated) in response.images.into_iter().enumerate() {
            let seed = generated.seed;
            let (main, variants) = self.finish_image(&job.id, position, generated.data, &spec).await?;
            rows.push(ImageRow {
                id: new_id("img"),
                generation_id: Some(job.id.clone()),
                owner_id: job.owner_id.clone(),
                position: position as i64,
                blob_key: main.key.clone(),
                width: i64::from(main.width),
                height: i64::from(main.height),
                format: main.format.clone(),
                bytes: main.bytes,
                seed: Some(i64::from(seed)),
                prompt: Some(spec.prompt.clone()),
                negative_prompt: spec.negative_prompt.clone(),
                model: Some(spec.model.clone()),
                aspect_ratio: Some(spec.aspect_ratio.clone()),
                metadata_json: "{}".into(),
                created_at: now_ms(),
                variants_json: serde_json::to_string(&variants).unwrap_or_else(|_| "{}".into()),
                parent_id: None,
                style: spec.style.clone(),
                archetype: spec.archetype.clone(),
            });
        }
        timings.insert("process_store_ms", t.elapsed().as_millis() as u64);
        Ok((rows, provider_metadata.to_string()))
    }

    /// Decode, crop to the exact ratio (anchor via the cropper plugin), resize to an explicit
    /// size, remove the background when asked, and store every variant.
    async fn finish_image(
        &self,
        generation_id: &str,
        position: usize,
        data: abi::ImageData,
        spec: &Arc<GenerationSpec>,
    ) -> Result<(StoredVariant, BTreeMap<&'static str, StoredVariant>), JobFailure> {
        let max_pixels = self.config.limits.max_pixels;
        let original = blocking(move || decode_provider_image(data, max_pixels)).await??;
        let ratio = Ratio::parse(&spec.aspect_ratio).unwrap_or(Ratio::new(spec.width, spec.height));
        let (w, h) = (original.width(), original.height());
        let mut rect = imaging::center_crop(w, h, ratio);
        if rect != (0, 0, w, h) && spec.crop_anchor != "center" {
            rect = self.plan_crop(&original, ratio, &spec.crop_anchor).await.unwrap_or(rect);
        }
        let format = imaging::Format::parse(&spec.output_format).unwrap_or(imaging::Format::Png);
        let mut variants = BTreeMap::new();
        let (target_w, target_h) = (spec.width, spec.height);
        let shared = Arc::new(original);
        let uncut = rect == (0, 0, w, h) && (w, h) == (target_w, target_h);
        let main = if uncut {
            // The provider drew exactly what was asked: one image, no copy.
            Arc::clone(&shared)
        } else {
            let source = Arc::clone(&shared);
            Arc::new(
                blocking(move || -> Result<RgbaImage, JobFailure> {
                    let img = if rect == (0, 0, w, h) { (*source).clone() } else { imaging::crop(&source, rect) };
                    if img.dimensions() == (target_w, target_h) {
                        return Ok(img);
                    }
                    imaging::resize(&img, target_w, target_h)
                        .map_err(|e| JobFailure::new(ErrorCode::InternalError, format!("resizing failed: {e}")))
                })
                .await??,
            )
        };
        let main_key = format!("images/{generation_id}/{position}.{}", format.as_str());
        let cropped = self.store_variant(&main_key, Arc::clone(&main), format).await?;
        let original = if uncut {
            cropped.clone()
        } else {
            let key = format!("images/{generation_id}/{position}-original.{}", format.as_str());
            self.store_variant(&key, shared, format).await?
        };
        variants.insert("original", original);
        variants.insert("cropped", cropped.clone());
        if spec.remove_background {
            let cutout = self.cut_out(&main).await?;
            let key = format!("images/{generation_id}/{position}-transparent.png");
            variants.insert("transparent", self.store_variant(&key, Arc::new(cutout), imaging::Format::Png).await?);
        }
        Ok((cropped, variants))
    }

    /// Ask the cropper for the anchored rectangle; None (centre crop) when it fails or lies.
    async fn plan_crop(&self, image: &RgbaImage, ratio: Ratio, anchor: &str) -> Option<(u32, u32, u32, u32)> {
        use crate::plugins::runtime::{cropper_abi::Anchor, types};
        let cropper = self.plugins.catalog().default_cropper()?;
        let anchor = match anchor {
            "top" => Anchor::Top,
            "bottom" => Anchor::Bottom,
            "left" => Anchor::Left,
            "right" => Anchor::Right,
            "smart" => Anchor::Smart,
            _ => Anchor::Center,
        };
        let wit_image = types::Image { width: image.width(), height: image.height(), pixels: image.as_raw().clone() };
        let target = types::AspectRatio { width: ratio.w, height: ratio.h };
        match cropper.plan_crop(wit_image, target, anchor).await {
            Ok(r) => {
                let inside = r.width > 0
                    && r.height > 0
                    && u64::from(r.x) + u64::from(r.width) <= u64::from(image.width())
                    && u64::from(r.y) + u64::from(r.height) <= u64::from(image.height());
                let exact = u64::from(r.width) * u64::from(ratio.h) == u64::from(r.height) * u64::from(ratio.w);
                if inside && exact {
                    Some((r.x, r.y, r.width, r.height))
                } else {
                    tracing::warn!(plugin = %cropper.manifest.id, ?r, "cropper planned an invalid rectangle; using the centre crop");
                    None
                }
            }
            Err(e) => {
                tracing::warn!(plugin = %cropper.manifest.id, error = %e, "cropper failed; using the centre crop");
                None
            }
        }
    }

    async fn cut_out(&self, image: &RgbaImage) -> Result<RgbaImage, JobFailure> {
        use crate::plugins::runtime::types;
        let cropper = self
            .plugins
            .catalog()
            .default_cropper()
            .ok_or_else(|| JobFailure::new(ErrorCode::PluginError, "background removal needs a cropper plugin"))?;
        let wit_image = types::Image { width: image.width(), height: image.height(), pixels: image.as_raw().clone() };
        let out = cropper.remove_background(wit_image, "{}".into()).await?;
        if (out.width, out.height) != image.dimensions() {
            return Err(JobFailure::new(ErrorCode::PluginError, "background removal changed the image size"));
        }
        RgbaImage::from_raw(out.width, out.height, out.pixels)
            .ok_or_else(|| JobFailure::new(ErrorCode::PluginError, "background removal returned a malformed image"))
    }

    async fn store_variant(
        &self,
        key: &str,
        image: Arc<RgbaImage>,
        format: imaging::Format,
    ) -> Result<StoredVariant, JobFailure> {
        let (width, height) = image.dimensions();
        let encoded = blocking(move || {
            imaging::encode(&image, format, 90)
                .map_err(|e| JobFailure::new(ErrorCode::InternalError, format!("encoding failed: {e}")))
        })
        .await??;
        let bytes = encoded.len() as i64;
        self.blobs.put(key, Bytes::from(encoded)).await?;
        Ok(StoredVariant { key: key.to_string(), width, height, format: format.as_str().to_string(), bytes })
    }
}

/// One stored file of an image.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StoredVariant {
    /// Blob key.
    pub key: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// `png`, `jpeg` or `webp`.
    pub format: String,
    /// File size.
    pub bytes: i64,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, JobFailure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| JobFailure::new(ErrorCode::InternalError, format!("image task failed: {e}")))
}

/// Turn what the provider returned into pixels, with limits.
fn decode_provider_image(data: abi::ImageData, max_pixels: u64) -> Result<RgbaImage, JobFailure> {
    let provider_err = |m: String| JobFailure::new(ErrorCode::ProviderError, m);
    match data {
        abi::ImageData::Raw(raw) => {
            let expected = u64::from(raw.width) * u64::from(raw.height) * 4;
            if raw.width == 0 || raw.height == 0 || u64::from(raw.width) * u64::from(raw.height) > max_pixels {
                return Err(provider_err(format!("the provider returned a {}x{} image", raw.width, raw.height)));
            }
            if raw.pixels.len() as u64 != expected {
                return Err(provider_err(format!(
                    "the provider returned {} bytes for a {}x{} RGBA image ({expected} expected)",
                    raw.pixels.len(),
                    raw.width,
                    raw.height
                )));
            }
            Ok(RgbaImage::from_raw(raw.width, raw.height, raw.pixels).expect("length checked"))
        }
        abi::ImageData::Encoded(bytes) => imaging::decode(&bytes, max_pixels)
            .map_err(|e| provider_err(format!("the provider returned an unreadable image: {e}"))),
        abi::ImageData::Url(_) => Err(JobFailure::new(
            ErrorCode::PluginError,
            "the provider returned an image URL, which this version cannot fetch yet",
        )),
    }
}
