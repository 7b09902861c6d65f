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
use crate::db::{ClaimRequest, ClaimedJob, ImageRow, Outcome, Retry};
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

    /// Replace every occurrence of a key (the operator's secrets, the caller's key) in the
    /// message: a provider may echo the key it was sent in its error text.
    fn scrubbed(mut self, secrets: &[crate::config::Secret]) -> Self {
        for secret in secrets {
            let value = secret.expose();
            if value.len() >= 4 && self.message.contains(value) {
                self.message = self.message.replace(value, "[redacted]");
            }
        }
        self
    }
}

/// How a model's attempts ended without images.
enum Attempt {
    /// Temporary failures used up its retries (or it asked to wait too long): try a fallback.
    Exhausted(JobFailure),
    /// A failure no other attempt would change (bad request, blocked content, a bad key).
    Final(JobFailure),
}

/// The wait before retry `attempt + 1`: full jitter over `base * 2^(attempt-1)` capped at
/// `max`, but at least what the provider asked for. None when the provider asked for more
/// than `max` (the model counts as exhausted).
fn backoff(attempt: u32, base_ms: u64, max_ms: u64, retry_after_ms: Option<u64>) -> Option<Duration> {
    let ceiling = base_ms.saturating_mul(1u64 << (attempt.saturating_sub(1)).min(20)).min(max_ms);
    let jittered = rand::random_range(ceiling / 2..=ceiling.max(1));
    match retry_after_ms {
        Some(asked) if asked > max_ms => None,
        Some(asked) => Some(Duration::from_millis(asked.max(jittered.min(asked.saturating_add(base_ms))))),
        None => Some(Duration::from_millis(jittered)),
    }
}

impl From<CallError> for JobFailure {
    fn from(e: CallError) -> Self {
        let code = match &e {
            CallError::Plugin { kind: "content_blocked", .. } => ErrorCode::ContentBlocked,
            CallError::Plugin { kind: "unauthorized", .. } => ErrorCode::UnauthorizedProvider,
            CallError::Plugin { .. } | CallError::Retryable { .. } => ErrorCode::ProviderError,
            CallError::Timeout(_) | CallError::Memory(_) | CallError::Trap(_) | CallError::WrongKind(_) => {
                ErrorCode::PluginError
            }
        };
        let message = match e {
            CallError::Plugin { kind: "content_blocked" | "unauthorized", message } => message,
            other => other.to_string(),
        };
        Self::new(code, message)
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

    /// Run one claimed job to its end. Everything it logs — here, in the tasks it starts and
    /// in the plugins it calls — carries the generation's id and the `request_id` of the
    /// request that created it, on whichever replica the job runs.
    #[tracing::instrument(
        name = "job",
        skip_all,
        fields(request_id = tracing::field::Empty, generation_id = %job.id, attempt = job.attempts)
    )]
    async fn run_job(
        &self,
        worker: &str,
        job: ClaimedJob,
        mut events: tokio::sync::broadcast::Receiver<super::GenerationEvent>,
    ) {
        let started = Instant::now();
        // The request is read once, here: the job runs it, and its end uses the model (metrics)
        // and whether inputs were stored.
        let spec = serde_json::from_str::<GenerationSpec>(&job.request_json)
            .map_err(|e| JobFailure::new(ErrorCode::InternalError, format!("unreadable job request: {e}")));
        if let Some(request_id) = spec.as_ref().ok().and_then(|s| s.request_id.as_deref()) {
            tracing::Span::current().record("request_id", request_id);
        }
        let mut timings = BTreeMap::new();
        if job.attempts > job.max_attempts {
            let message = format!(
                "the job was interrupted {} times (its worker stopped or crashed); giving up",
                job.attempts - 1
            );
            if self.finish(worker, &job.id, Outcome::Failed { code: "internal_error".into(), message }, &timings).await
            {
                self.remove_inputs(&job.id).await;
            }
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
        let (model, has_inputs) =
            spec.as_ref().map_or((String::new(), false), |s| (s.model.clone(), s.input_image_key.is_some()));
        let run = async {
            match spec {
                Ok(spec) => self.execute(worker, &job, spec, &mut timings).await,
                Err(f) => Err(f),
            }
        };
        let result = tokio::select! {
            r = run => Some(r),
            _ = canceled => None,
            _ = lost_rx => None,
        };
        heartbeat.abort();
        self.drop_callback_slot(&job.id);
        let Some(result) = result else {
            // Whatever the plugin call still running in the background returns is dropped;
            // files it already wrote are removed (no row points at them).
            tracing::info!("stopped: the generation was canceled or is no longer this worker's");
            self.remove_unowned_files(&job.id).await;
            return;
        };

        timings.insert("total_ms", started.elapsed().as_millis() as u64);
        let outcome = match result {
            Ok((images, provider_metadata_json, model_used)) => {
                Outcome::Succeeded { images, provider_metadata_json, model_used }
            }
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
        if recorded && has_inputs {
            self.remove_inputs(&job.id).await;
        }
        if recorded {
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
        tokio::spawn(tracing::Instrument::in_current_span(async move {
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
        }))
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
            handle.spawn(tracing::Instrument::in_current_span(async move {
                if let Ok(true) = app.db.set_progress(&id, &worker, progress, &stage).await {
                    app.publish(&id, "running", progress, &stage);
                }
            }));
        })
    }

    async fn execute(
        &self,
        worker: &str,
        job: &ClaimedJob,
        spec: GenerationSpec,
        timings: &mut BTreeMap<&'static str, u64>,
    ) -> Result<(Vec<ImageRow>, String, String), JobFailure> {
        let caller_key = self.caller_keys.lock().unwrap_or_else(|e| e.into_inner()).remove(&job.id).map(|(k, _)| k);
        if spec.uses_caller_key && caller_key.is_none() {
            return Err(JobFailure::new(
                ErrorCode::ProviderError,
                "the caller's provider key is no longer available (it is kept in memory only, and the job \
                 moved to another server or the server restarted); submit the generation again",
            ));
        }
        let (input_image, mask) = self.load_inputs(&job.id, &spec).await?;
        let _ = self.db.set_progress(&job.id, worker, 5.0, "generating").await;
        self.publish(&job.id, "running", 5.0, "generating");

        // The requested model, then its fallbacks (already filtered by the caller's tier).
        let primary_plugin = spec.model.split_once('/').map_or("", |(p, _)| p).to_string();
        let chain: Vec<String> = std::iter::once(spec.model.clone()).chain(spec.fallbacks.iter().cloned()).collect();
        let t = Instant::now();
        let mut last_failure = None;
        let mut found = None;
        for (index, model) in chain.iter().enumerate() {
            if let Some(previous) = &last_failure {
                let previous: &JobFailure = previous;
                let stage = format!("falling back to {model}");
                tracing::warn!(%model, code = previous.code.as_str(), message = %previous.message, "falling back");
                let retry = Retry { stage: &stage, code: previous.code.as_str(), message: &previous.message };
                let _ = self.db.set_retrying(&job.id, worker, &retry).await;
                self.publish(&job.id, "retrying", 5.0, &stage);
            }
            // The caller's key belongs to the provider they asked for: never hand it to another.
            let key =
                if model.split_once('/').is_some_and(|(p, _)| p == primary_plugin) { caller_key.clone() } else { None };
            let plan = match self.plan_call(&spec, model, key.is_some(), index > 0, &input_image, &mask) {
                Ok(plan) => plan,
                Err(unavailable) => {
                    last_failure = Some(unavailable);
                    continue;
                }
            };
            match self.call_with_retries(worker, &job.id, plan.0.clone(), plan.1, key).await {
                Ok(response) => {
                    found = Some((plan.0, model.clone(), response));
                    break;
                }
                Err(Attempt::Exhausted(f)) => last_failure = Some(f),
                Err(Attempt::Final(f)) => return Err(f),
            }
        }
        timings.insert("provider_ms", t.elapsed().as_millis() as u64);
        let Some((plugin, model_used, response)) = found else {
            return Err(last_failure
                .unwrap_or_else(|| JobFailure::new(ErrorCode::ProviderError, "no model could take the job")));
        };
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
            let data = match generated.data {
                abi::ImageData::Url(url) => abi::ImageData::Encoded(self.download_result(&plugin, &url).await?),
                other => other,
            };
            let (main, variants) = self.finish_image(&job.id, position, data, &spec).await?;
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
                model: Some(model_used.clone()),
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
        Ok((rows, provider_metadata.to_string(), model_used))
    }

    /// The plugin and request for one model of the chain, or why that model cannot take the
    /// job now (not loaded, no key, cannot do what was asked): the chain moves on.
    fn plan_call(
        &self,
        spec: &GenerationSpec,
        model: &str,
        has_caller_key: bool,
        is_fallback: bool,
        input_image: &Option<crate::plugins::runtime::types::Image>,
        mask: &Option<crate::plugins::runtime::types::Image>,
    ) -> Result<(Arc<crate::plugins::Plugin>, abi::GenerateRequest), JobFailure> {
        let unavailable = |m: String| JobFailure::new(ErrorCode::ProviderError, m);
        let (plugin, described) =
            self.plugins.find_model(model).ok_or_else(|| unavailable(format!("model {model} is not available")))?;
        if plugin.needs_key() && !has_caller_key && (spec.bring_own_key || !plugin.operator_key_configured()) {
            return Err(unavailable(format!(
                "model {model} needs an API key: none is configured for the {} plugin and none was sent in X-Provider-Key",
                plugin.manifest.id
            )));
        }
        let (draw_width, draw_height) = if is_fallback {
            if u32::from(described.max_n.min(4) as u16) < spec.n {
                return Err(unavailable(format!("model {model} makes at most {} images a call", described.max_n)));
            }
            super::generations::draw_size(&described, spec.width, spec.height)
                .map_err(|m| unavailable(format!("model {model}: {m}")))?
        } else {
            (spec.draw_width, spec.draw_height)
        };
        use abi::ModelKind;
        if is_fallback && !spec.loras.is_empty() && !described.supported_parameters.iter().any(|p| p == "loras") {
            return Err(unavailable(format!("model {model} does not take LoRAs")));
        }
        if input_image.is_none() && !described.kinds.contains(&ModelKind::TextToImage) {
            return Err(unavailable(format!("model {model} needs an input image")));
        }
        if mask.is_some() && !described.kinds.contains(&ModelKind::Inpainting) {
            return Err(unavailable(format!("model {model} does not do inpainting")));
        }
        if input_image.is_some()
            && !described.kinds.iter().any(|k| matches!(k, ModelKind::ImageToImage | ModelKind::Inpainting))
        {
            return Err(unavailable(format!("model {model} does not take an input image")));
        }
        let (prompt, negative_prompt) = prompts_for(
            spec.provider_prompt.clone().unwrap_or_else(|| spec.prompt.clone()),
            if spec.provider_prompt.is_some() {
                spec.provider_negative_prompt.clone()
            } else {
                spec.negative_prompt.clone()
            },
            described.supported_parameters.iter().any(|p| p == "negative_prompt"),
        );
        let request = abi::GenerateRequest {
            model: model.split_once('/').map(|(_, m)| m.to_string()).unwrap_or_default(),
            prompt,
            negative_prompt,
            width: draw_width,
            height: draw_height,
            n: spec.n,
            seed: spec.seed,
            steps: spec.steps,
            guidance_scale: spec.guidance_scale,
            quality: spec.quality.clone(),
            style_hint: spec.style_hint.clone(),
            input_image: input_image.clone(),
            mask: mask.clone(),
            strength: spec.strength,
            loras: spec.loras.iter().map(|l| abi::Lora { path: l.path.clone(), scale: l.scale }).collect(),
            options_json: if is_fallback {
                // Options are written for the model the caller chose; another provider's
                // schema would not know them.
                "{}".into()
            } else {
                spec.provider_options.as_ref().map_or_else(|| "{}".into(), |o| o.to_string())
            },
        };
        Ok((plugin, request))
    }

    /// Call one model, retrying temporary failures (429, 5xx, upstream timeouts, transport
    /// errors) with exponential backoff and full jitter, honouring the provider's retry hint.
    /// The generation shows `retrying` (with the last error) while it waits.
    async fn call_with_retries(
        &self,
        worker: &str,
        id: &str,
        plugin: Arc<crate::plugins::Plugin>,
        request: abi::GenerateRequest,
        caller_key: Option<crate::config::Secret>,
    ) -> Result<abi::GenerateResponse, Attempt> {
        let jobs = &self.config.jobs;
        let mut secrets = plugin.secret_values();
        secrets.extend(caller_key.clone());
        for attempt in 1..=jobs.provider_attempts {
            let callback = self.callback_slot(id, &plugin);
            let result = plugin
                .generate(request.clone(), Some(self.progress_sink(worker, id)), caller_key.clone(), callback)
                .await;
            let error = match result {
                Ok(response) => return Ok(response),
                Err(e) => e,
            };
            let retry_after = match &error {
                CallError::Retryable { retry_after_ms, .. } => Some(retry_after_ms.map(u64::from)),
                CallError::Plugin { kind: "http" | "timeout", .. } => Some(None),
                _ => None,
            };
            // The plugin's whole time ran out (a queue that never got to the job): another
            // call would wait as long again, but the next model of the chain may serve.
            let exhausted_now = matches!(error, CallError::Timeout(_));
            let failure = JobFailure::from(error).scrubbed(&secrets);
            if exhausted_now {
                return Err(Attempt::Exhausted(failure));
            }
            let Some(hint) = retry_after else { return Err(Attempt::Final(failure)) };
            if attempt == jobs.provider_attempts {
                return Err(Attempt::Exhausted(failure));
            }
            let delay = backoff(attempt, jobs.retry_base_delay_ms, jobs.retry_max_delay_ms, hint);
            let Some(delay) = delay else {
                let message = format!("{} (asked to wait longer than {} ms)", failure.message, jobs.retry_max_delay_ms);
                return Err(Attempt::Exhausted(JobFailure::new(failure.code, message)));
            };
            let stage = format!(
                "retrying in {:.1}s (attempt {} of {})",
                delay.as_secs_f64(),
                attempt + 1,
                jobs.provider_attempts
            );
            tracing::warn!(attempt, code = failure.code.as_str(), message = %failure.message, ?delay, "provider failed; retrying");
            let retry = Retry { stage: &stage, code: failure.code.as_str(), message: &failure.message };
            match self.db.set_retrying(id, worker, &retry).await {
                Ok(true) => {}
                // Canceled or taken over: the job's runner stops this future anyway.
                Ok(false) => return Err(Attempt::Final(failure)),
                // The lease is still ours; the status is only late. Retry all the same.
                Err(e) => tracing::warn!(error = ?e, "recording the retry failed"),
            }
            self.publish(id, "retrying", 5.0, &stage);
            tokio::time::sleep(delay).await;
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Fetch an image URL a provider returned, under that provider's HTTP rules. The image is
    /// already paid for, so a passing failure (timeout, connection, 408/429/5xx) is tried
    /// again twice, 0.5 s and 1 s later.
    async fn download_result(&self, plugin: &crate::plugins::Plugin, url: &str) -> Result<Vec<u8>, JobFailure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match plugin.download(url, Duration::from_secs(60)).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.transient && attempt < 3 => {
                    tracing::warn!(attempt, error = %e.message, "downloading a provider's image failed; trying again");
                    tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
                }
                // The message names the URL's origin, never a key (no secret is sent with it).
                Err(e) => {
                    return Err(JobFailure::new(
                        ErrorCode::ProviderError,
                        format!("the provider's image URL could not be used: {}", e.message),
                    ));
                }
            }
        }
    }

    /// Read the stored input image and mask of an img2img / inpainting job.
    async fn load_inputs(
        &self,
        id: &str,
        spec: &GenerationSpec,
    ) -> Result<
        (Option<crate::plugins::runtime::types::Image>, Option<crate::plugins::runtime::types::Image>),
        JobFailure,
    > {
        let mut out = [None, None];
        for (slot, key) in out.iter_mut().zip([&spec.input_image_key, &spec.mask_key]) {
            let Some(key) = key else { continue };
            let bytes = self.blobs.get(key).await.map_err(|e| {
                tracing::warn!(error = ?e, generation_id = id, "reading a stored input failed");
                JobFailure::new(ErrorCode::InternalError, "the generation's input image could not be read")
            })?;
            let max_pixels = self.config.limits.max_pixels;
            let image = blocking(move || imaging::decode(&bytes, max_pixels)).await?.map_err(|e| {
                JobFailure::new(ErrorCode::InternalError, format!("the stored input image is unreadable: {e}"))
            })?;
            *slot = Some(crate::plugins::runtime::types::Image {
                width: image.width(),
                height: image.height(),
                pixels: image.into_raw(),
            });
        }
        let [image, mask] = out;
        Ok((image, mask))
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

/// The prompt and negative prompt a model gets. A model without a negative prompt of its own
/// (`negative_prompt` not in its `supported_parameters`) still honours one, as an "Avoid: …"
/// sentence appended to the prompt: so `negative_prompt` is never dropped.
fn prompts_for(prompt: String, negative: Option<String>, native_negative: bool) -> (String, Option<String>) {
    match negative.filter(|n| !n.trim().is_empty()) {
        Some(avoid) if !native_negative => (format!("{}\n\nAvoid: {}", prompt.trim_end(), avoid.trim()), None),
        negative => (prompt, negative),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, JobFailure> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
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
        // Downloaded before decoding (`download_result`); a URL here is a host bug.
        abi::ImageData::Url(_) => Err(JobFailure::new(ErrorCode::InternalError, "an image URL was not downloaded")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_prompt_is_merged_for_models_without_their_own() {
        let (p, n) = prompts_for("a cat \n".into(), Some(" dogs ".into()), false);
        assert_eq!((p.as_str(), n), ("a cat\n\nAvoid: dogs", None));
        let (p, n) = prompts_for("a cat".into(), Some("dogs".into()), true);
        assert_eq!((p.as_str(), n.as_deref()), ("a cat", Some("dogs")));
        let (p, n) = prompts_for("a cat".into(), Some("  ".into()), false);
        assert_eq!((p.as_str(), n), ("a cat", None));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_the_providers_hint() {
        for _ in 0..200 {
            let d = backoff(1, 1000, 60_000, None).unwrap().as_millis();
            assert!((500..=1000).contains(&d), "{d}");
            let d = backoff(3, 1000, 60_000, None).unwrap().as_millis();
            assert!((2000..=4000).contains(&d), "{d}");
            let d = backoff(12, 1000, 60_000, None).unwrap().as_millis();
            assert!((30_000..=60_000).contains(&d), "capped: {d}");
            // Never sooner than the provider asked, and not much later.
            let d = backoff(1, 1000, 60_000, Some(15_000)).unwrap().as_millis();
            assert_eq!(d, 15_000);
            let d = backoff(4, 1000, 60_000, Some(100)).unwrap().as_millis();
            assert!((100..=1100).contains(&d), "{d}");
        }
        // A provider asking for more than the longest wait has run out for now.
        assert!(backoff(1, 1000, 60_000, Some(120_000)).is_none());
    }

    #[test]
    fn keys_are_scrubbed_from_provider_messages() {
        let secrets = [crate::config::Secret::new("sk-live-abcdef123"), crate::config::Secret::new("ab")];
        let f = JobFailure::new(ErrorCode::UnauthorizedProvider, "Incorrect API key provided: sk-live-abcdef123.")
            .scrubbed(&secrets);
        assert_eq!(f.message, "Incorrect API key provided: [redacted].");
        // Too short to be a key: left alone rather than mangling words.
        let f = JobFailure::new(ErrorCode::ProviderError, "about").scrubbed(&secrets);
        assert_eq!(f.message, "about");
    }

    #[test]
    fn provider_errors_map_to_stable_codes() {
        let code = |e: CallError| JobFailure::from(e).code;
        let plugin = |kind: &'static str| CallError::Plugin { kind, message: "m".into() };
        assert_eq!(code(plugin("content_blocked")), ErrorCode::ContentBlocked);
        assert_eq!(code(plugin("unauthorized")), ErrorCode::UnauthorizedProvider);
        assert_eq!(code(plugin("invalid_input")), ErrorCode::ProviderError);
        assert_eq!(
            code(CallError::Retryable { message: "429".into(), retry_after_ms: None }),
            ErrorCode::ProviderError
        );
        assert_eq!(code(CallError::Timeout(10)), ErrorCode::PluginError);
    }
}
