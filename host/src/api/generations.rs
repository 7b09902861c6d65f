//! `/v1/generations`: create (optionally waiting), get, list, cancel, and the progress stream.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::images::Image;
use super::problem::ApiError;
use super::{Tag, app};
use crate::auth::Principal;
use crate::service::App;
use crate::service::generations::{GenerationView, NewGeneration, is_final};

/// Generation operations.
pub struct GenerationsApi {
    pub(crate) app: Option<App>,
}

/// Body of `POST /v1/generations`. Give the size in at most one of three forms:
/// `aspect_ratio`, `size`, or `width` + `height` (default: 1:1 at about one megapixel).
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGenerationRequest {
    /// What to draw, 1–4000 characters.
    pub prompt: String,
    /// What to avoid, ≤ 2000 characters. Every model takes it: one whose `supported_parameters`
    /// do not list `negative_prompt` gets it merged into the prompt as an "Avoid: …" sentence.
    pub negative_prompt: Option<String>,
    /// `provider/model` from `GET /v1/models`; default: your settings' `default_model`, else the
    /// server's `[defaults] model` (`local/procedural` out of the box).
    pub model: Option<String>,
    /// Exact ratio `"W:H"`, 1 ≤ W, H ≤ 64, e.g. `"16:9"` or `"2:7"`. About one megapixel. A model with
    /// fixed native sizes draws at the nearest native ratio and the server crops centrally to this one.
    /// When no size is given in any form: your settings' `default_aspect_ratio`, else the server's
    /// `[defaults] aspect_ratio`, else the style's, then the archetype's preferred ratio, else 1:1.
    pub aspect_ratio: Option<String>,
    /// A preset (`square_hd` 1024², `square` 512², `portrait_4_3` 768×1024, `portrait_16_9` 576×1024,
    /// `landscape_4_3` 1024×768, `landscape_16_9` 1024×576) or `"WxH"`.
    pub size: Option<String>,
    /// Width in pixels, 64–4096 (with `height`).
    pub width: Option<i64>,
    /// Height in pixels, 64–4096 (with `width`).
    pub height: Option<i64>,
    /// Images to make, 1–4 (at most the model's `max_n`). Default 1.
    pub n: Option<i64>,
    /// 0–4294967295. Image *i* uses `seed + i`. Same seed and request → same image on deterministic
    /// models. Random when absent; always echoed.
    ///
    /// `seed`, `steps`, `guidance_scale`, `quality`, `strength` and `loras` are for models whose
    /// `supported_parameters` (`GET /v1/models`) list them; for another model they are a 422
    /// `validation_error` naming the field and the model, or, on a server with
    /// `strict_parameters = false`, dropped and listed in the generation's `warnings`.
    pub seed: Option<i64>,
    /// Sampling steps, 1–100, for models that support them (see `seed`).
    pub steps: Option<i64>,
    /// Classifier-free guidance, 0–20, for models that support it (see `seed`).
    pub guidance_scale: Option<f64>,
    /// `draft`, `standard` or `high`; mapped by the provider, for models that support it (see `seed`).
    pub quality: Option<String>,
    /// Stored format: `png`, `jpeg` or `webp`; default the server's `[defaults] output_format`
    /// (`png` out of the box).
    pub output_format: Option<String>,
    /// Your own JSON object (≤ 64 keys, 16 KiB), stored and echoed.
    pub metadata: Option<serde_json::Value>,
    /// Style template id from `GET /v1/styles`: expands the prompt and negative prompt and fills in
    /// its default parameters where the model takes them (your own values win). Default: your
    /// settings' `default_style`, else the server's `[defaults] style`.
    pub style: Option<String>,
    /// Archetype id from `GET /v1/archetypes`: steers the prompt, picks the ratio when neither you,
    /// your settings nor the server's `[defaults] aspect_ratio` give a size, and for the vector
    /// kinds turns background removal on. Default: the server's `[defaults] archetype`.
    pub archetype: Option<String>,
    /// Which part to keep when cropping to the exact ratio: `center` (default), `top`, `bottom`,
    /// `left`, `right`, or `smart` (content-aware).
    pub crop_anchor: Option<String>,
    /// Also make a `transparent` variant (PNG) with a plain background removed. Default from the archetype.
    pub remove_background: Option<bool>,
    /// Include each image's bytes as base64 in the finished generation: the main file as
    /// `images[].base64` and every variant (`original`, `cropped`, `transparent`) as
    /// `images[].variants.<name>.base64`. Large: prefer the `url` links for big images.
    pub return_base64: Option<bool>,
    /// Source image for image-to-image, editing and inpainting (models whose `kinds` include
    /// `image_to_image` or `inpainting`). Any size within the server's pixel limit.
    pub input_image: Option<ImageInput>,
    /// Inpainting mask, the size of `input_image`: white = repaint, black = keep.
    pub mask: Option<ImageInput>,
    /// How much of `input_image` may change, 0–1 (img2img); the provider's default when absent.
    pub strength: Option<f64>,
    /// LoRA adapters (at most 8) for models whose `supported_parameters` list `loras`.
    pub loras: Option<Vec<LoraInput>>,
    /// Provider-specific options, a JSON object ≤ 16 KiB, passed to the provider plugin; see
    /// the model's `options_schema`. Not passed to fallback models.
    pub provider_options: Option<serde_json::Value>,
    /// Your own key for the model's provider: the same as the `X-Provider-Key` header (which
    /// wins). Used for this generation only; never stored, never logged, not part of the
    /// idempotency fingerprint.
    pub provider_api_key: Option<String>,
}

/// An input image: exactly one of `image_id`, `url` or `data`.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageInput {
    /// One of your images (`img_…`).
    pub image_id: Option<String>,
    /// A public `http(s)` URL the server downloads: public addresses on ports 80 and 443
    /// only, or an internal origin the operator lists (`[inputs] allowed_private_origins`);
    /// at most `limits.max_upload_bytes` (413 `payload_too_large` over it); 20 s.
    pub url: Option<String>,
    /// Base64 PNG, JPEG or WebP bytes; a `data:image/…;base64,` prefix is accepted. At most
    /// `limits.max_upload_bytes` once decoded (default 20 MiB; 413 `payload_too_large` naming
    /// the field over it).
    pub data: Option<String>,
}

/// A LoRA adapter.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraInput {
    /// URL or provider path of the weights (1–2048 characters).
    pub path: String,
    /// Strength, -4 to 4 (default 1).
    pub scale: Option<f64>,
}

impl From<ImageInput> for crate::service::generations::ImageSource {
    fn from(i: ImageInput) -> Self {
        Self { image_id: i.image_id, url: i.url, data: i.data }
    }
}

/// Why a generation failed.
#[derive(Debug, Clone, Object)]
pub struct GenerationError {
    /// Stable code: `provider_error`, `plugin_error`, `internal_error`, …
    pub code: String,
    /// What happened.
    pub message: String,
}

/// A request parameter the server did not pass on (`strict_parameters = false`).
#[derive(Debug, Clone, Object)]
pub struct ParameterWarning {
    /// The request field, e.g. `steps`.
    pub field: String,
    /// What happened to it, naming the model.
    pub message: String,
}

/// A generation: the request echoed, its job state, and its images once it succeeded.
#[derive(Debug, Clone, Object)]
pub struct Generation {
    /// `gen_…`, time-sortable.
    pub id: String,
    /// `queued`, `running`, `retrying`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    /// 0–100.
    pub progress: f64,
    /// Current pipeline stage (`queued`, `generating`, `rendering`, `storing`, …).
    pub stage: Option<String>,
    /// Jobs ahead of this one while queued (0 = next).
    pub queue_position: Option<i64>,
    /// The prompt.
    pub prompt: String,
    /// The negative prompt.
    pub negative_prompt: Option<String>,
    /// `provider/model`.
    pub model: String,
    /// Exact ratio of the images, reduced (`"16:9"`).
    pub aspect_ratio: String,
    /// Width of each image in pixels.
    pub width: u32,
    /// Height of each image in pixels.
    pub height: u32,
    /// Images requested.
    pub n: u32,
    /// Seed of the first image.
    pub seed: u32,
    /// Steps, when given.
    pub steps: Option<u32>,
    /// Guidance scale, when given.
    pub guidance_scale: Option<f32>,
    /// Quality, when given.
    pub quality: Option<String>,
    /// Stored format.
    pub output_format: String,
    /// Style template applied.
    pub style: Option<String>,
    /// Archetype applied.
    pub archetype: Option<String>,
    /// Crop anchor.
    pub crop_anchor: String,
    /// Whether a transparent variant is made.
    pub remove_background: bool,
    /// Whether image bytes are inlined.
    pub return_base64: bool,
    /// The prompt as sent to the provider after the style and archetype, when they changed it.
    pub provider_prompt: Option<String>,
    /// The images, in order (empty until `succeeded`).
    pub images: Vec<Image>,
    /// Request parameters that were not used, one `{field, message}` each: those the model
    /// does not take, dropped on a server with `strict_parameters = false` (by default such a
    /// request is refused with 422 `validation_error` instead), and those a fallback model
    /// that drew the images (`model_used`) ignored.
    pub warnings: Vec<ParameterWarning>,
    /// Set when `failed`: `provider_error`, `content_blocked` (the provider's safety system
    /// refused), `unauthorized_provider` (the provider refused the key), `plugin_error`, ….
    pub error: Option<GenerationError>,
    /// The last provider error while the job is `retrying` or fell back to another model
    /// (kept after it succeeded, for the record).
    pub last_error: Option<GenerationError>,
    /// Provider calls and job claims made: 1 normally; each retry after a temporary provider
    /// failure (429, 5xx, timeout) and each recovery after a worker crash adds one.
    pub attempts: i64,
    /// The model that produced the images: `model`, or a fallback from the server's chain.
    pub model_used: Option<String>,
    /// Models tried, in order, if `model` is unavailable or exhausted (the server's
    /// `[fallbacks]`, filtered by what your tier may use).
    pub fallbacks: Vec<String>,
    /// True when the job uses an input image (img2img, editing, inpainting).
    pub has_input_image: bool,
    /// Milliseconds per pipeline stage once finished (`provider_ms`, `process_ms`, `store_ms`, `total_ms`).
    pub timings: Option<serde_json::Value>,
    /// Your metadata.
    pub metadata: serde_json::Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a worker first took it up.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached its final state.
    pub completed_at: Option<DateTime<Utc>>,
}

/// A page of generations.
#[derive(Debug, Clone, Object)]
pub struct GenerationList {
    /// Newest first.
    pub items: Vec<Generation>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

pub(crate) fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Generation {
    /// The API form of a generation, its links under `base` (`public_url`, or `""` for links
    /// relative to the server; see [`super::link`]).
    pub fn from_view(v: GenerationView, base: &str) -> Self {
        let s = v.spec;
        let r = v.row;
        Generation {
            error: r.error_code.map(|code| GenerationError { code, message: r.error_message.unwrap_or_default() }),
            images: v.images.into_iter().map(|i| Image::from_row(i, base)).collect(),
            warnings: s.warnings.into_iter().map(|w| ParameterWarning { field: w.field, message: w.message }).collect(),
            id: r.id,
            status: r.status,
            progress: r.progress,
            stage: r.stage,
            queue_position: v.queue_position,
            prompt: s.prompt,
            negative_prompt: s.negative_prompt,
            model: s.model,
            aspect_ratio: s.aspect_ratio,
            width: s.width,
            height: s.height,
            n: s.n,
            seed: s.seed,
            steps: s.steps,
            guidance_scale: s.guidance_scale,
            quality: s.quality,
            output_format: s.output_format,
            style: s.style,
            archetype: s.archetype,
            crop_anchor: s.crop_anchor,
            remove_background: s.remove_background,
            return_base64: s.return_base64,
            provider_prompt: s.provider_prompt,
            attempts: r.attempts + r.retries,
            last_error: r
                .last_error_code
                .map(|code| GenerationError { code, message: r.last_error_message.unwrap_or_default() }),
            model_used: r.model_used,
            fallbacks: s.fallbacks,
            has_input_image: s.input_image_key.is_some(),
            timings: r.timings_json.and_then(|t| serde_json::from_str(&t).ok()),
            metadata: v.metadata,
            created_at: ts(r.created_at),
            started_at: r.started_at.map(ts),
            completed_at: r.completed_at.map(ts),
        }
    }
}

/// Answers of `POST /v1/generations`.
#[derive(ApiResponse)]
pub enum CreateGenerationResponse {
    /// Finished within the `Prefer: wait=N` time (succeeded or failed: check `status`).
    #[oai(status = 200)]
    Finished(Json<Generation>, #[oai(header = "Preference-Applied")] String),
    /// Accepted and queued (or still running when the wait ran out): poll `Location` (absolute
    /// under the server's `public_url` when set, else relative).
    #[oai(status = 202)]
    Accepted(Json<Generation>, #[oai(header = "Location")] String),
}

/// Seconds asked for by `Prefer: wait=N` (RFC 7240), if any.
fn prefer_wait(prefer: Option<&str>) -> Option<u64> {
    prefer?
        .split([',', ';'])
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("wait"))
        .and_then(|(_, v)| v.trim().trim_matches('"').parse().ok())
}

#[OpenApi(tag = "Tag::Generations")]
impl GenerationsApi {
    /// Create a generation (text-to-image, image-to-image, inpainting).
    ///
    /// Validates the request against the model (`GET /v1/models`), queues a job and answers
    /// 202 with the generation (`status: queued`) and its `Location`. With `Prefer: wait=N`
    /// (N ≤ 60) the server waits up to N seconds and answers 200 with the finished generation
    /// (`succeeded` with `images`, or `failed` with `error`), or 202 when it is still running.
    ///
    /// Remote models (Gemini, OpenAI, fal, Replicate, …) use the operator's key, or yours in
    /// `X-Provider-Key`. Temporary provider failures are retried with backoff (`status:
    /// retrying`, `attempts`, `last_error`), then the server's fallback models are tried
    /// (`model_used` says which one produced the images).
    ///
    /// Errors: 422 `validation_error` naming each invalid field (`errors[].field`: also
    /// `input_image`, `mask`, `strength`, `loras`, `provider_options`, and `model` when it needs
    /// a key nobody configured; and each parameter the model does not take, naming the model,
    /// unless the server has `strict_parameters = false`: then the generation's `warnings` list
    /// what was dropped), 403 `forbidden` when your tier may not use the model or must
    /// bring its own key, 400 for a body that is not JSON, 413 for a body over the limit, 415
    /// for a non-JSON content type, 429/402 for limits (see Limits).
    #[oai(path = "/v1/generations", method = "post", operation_id = "create_generation")]
    async fn create(
        &self,
        body: JsonBody<CreateGenerationRequest>,
        /// `wait=N`: wait up to N seconds (max 60) for the result.
        #[oai(name = "Prefer")]
        prefer: Header<Option<String>>,
        /// Your own key for the model's provider, used for this generation only: held in memory
        /// until the job starts, never stored, never logged.
        #[oai(name = "X-Provider-Key")]
        provider_key: Header<Option<String>>,
        /// Your unique key for this request (1–255 printable ASCII characters, e.g. a UUID). A
        /// retry with the same key and the same body returns the first request's generation,
        /// on any replica, for 24 hours; the same key with another body is a 422.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        principal: Data<&Principal>,
    ) -> Result<CreateGenerationResponse, ApiError> {
        use poem_openapi::types::ToJSON;
        let app = app(&self.app);
        let mut b = body.0;
        // The fingerprint never covers a key.
        let body_key = b.provider_api_key.take();
        let idempotency = crate::service::Idempotency::new(
            &principal.owner,
            "POST /v1/generations",
            idempotency_key.0,
            &b.to_json_string(),
        )?;
        let input = NewGeneration {
            prompt: Some(b.prompt),
            negative_prompt: b.negative_prompt,
            model: b.model,
            aspect_ratio: b.aspect_ratio,
            size: b.size,
            width: b.width,
            height: b.height,
            n: b.n,
            seed: b.seed,
            steps: b.steps,
            guidance_scale: b.guidance_scale,
            quality: b.quality,
            output_format: b.output_format,
            metadata: b.metadata,
            style: b.style,
            archetype: b.archetype,
            crop_anchor: b.crop_anchor,
            remove_background: b.remove_background,
            return_base64: b.return_base64,
            provider_key: provider_key.0.or(body_key).map(crate::config::Secret::new),
            input_image: b.input_image.map(Into::into),
            mask: b.mask.map(Into::into),
            strength: b.strength,
            loras: b.loras.map(|ls| {
                ls.into_iter()
                    .map(|l| crate::service::generations::Lora { path: l.path, scale: l.scale.unwrap_or(1.0) as f32 })
                    .collect()
            }),
            provider_options: b.provider_options,
        };
        let mut view = app.create_generation(&principal, input, idempotency.as_ref()).await?;
        if let Some(wait) = prefer_wait(prefer.0.as_deref()) {
            let wait = wait.min(app.config.limits.max_wait_seconds);
            view = app.wait_for_generation(&principal, &view.row.id, Duration::from_secs(wait)).await?;
            if view.is_finished() {
                let generation = with_base64(app, view).await?;
                return Ok(CreateGenerationResponse::Finished(Json(generation), format!("wait={wait}")));
            }
        }
        let location = super::link(app, &format!("/v1/generations/{}", view.row.id));
        Ok(CreateGenerationResponse::Accepted(Json(Generation::from_view(view, app.config.link_base())), location))
    }

    /// Get a generation.
    ///
    /// Poll this until `status` is `succeeded`, `failed` or `canceled`. 404 `not_found` for an unknown id.
    #[oai(path = "/v1/generations/:id", method = "get", operation_id = "get_generation")]
    async fn get(&self, id: Path<String>, principal: Data<&Principal>) -> Result<Json<Generation>, ApiError> {
        let app = app(&self.app);
        Ok(Json(with_base64(app, app.get_generation(&principal, &id).await?).await?))
    }

    /// Cancel a generation.
    ///
    /// Allowed while it is `queued`, `running` or `retrying`: a queued job never starts; a
    /// running one is abandoned (on whichever replica runs it) and nothing it made is stored.
    /// Returns the generation, now `canceled`; waiters and event streams see the `canceled`
    /// event. 404 `not_found` for an unknown id; 409 `invalid_state` when it already finished.
    #[oai(path = "/v1/generations/:id/cancel", method = "post", operation_id = "cancel_generation")]
    async fn cancel(&self, id: Path<String>, principal: Data<&Principal>) -> Result<Json<Generation>, ApiError> {
        let app = app(&self.app);
        Ok(Json(Generation::from_view(app.cancel_generation(&principal, &id).await?, app.config.link_base())))
    }

    /// Stream a generation's progress as Server-Sent Events.
    ///
    /// The first event is the current state; then one event per change until the generation is
    /// final, when the stream ends. Event names (the SSE `event:` field): `progress` (status
    /// `queued`, `running` or `retrying`; `progress` 0–100 and `stage`), then exactly one of
    /// `succeeded`, `failed` or `canceled`, whose data also carries the whole `generation`.
    /// Works on any replica, whichever one runs the job. A comment line is sent every 15 s to
    /// keep proxies from closing an idle stream. 404 `not_found` for an unknown id.
    #[oai(path = "/v1/generations/:id/events", method = "get", operation_id = "stream_generation_events")]
    async fn events(
        &self,
        id: Path<String>,
        principal: Data<&Principal>,
    ) -> Result<EventStream<futures_util::stream::BoxStream<'static, GenerationStreamEvent>>, ApiError> {
        let app = app(&self.app).clone();
        let first = app.get_generation(&principal, &id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<GenerationStreamEvent>(16);
        tokio::spawn(stream_generation(app, first, tx));
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
        Ok(EventStream::new(Box::pin(stream) as futures_util::stream::BoxStream<'static, _>)
            .keep_alive(Duration::from_secs(15))
            .to_event(|e: GenerationStreamEvent| {
                use poem_openapi::types::ToJSON;
                let name = if is_final(&e.status) { e.status.clone() } else { "progress".to_string() };
                poem::web::sse::Event::message(e.to_json_string()).event_type(name)
            }))
    }

    /// List generations, newest first.
    ///
    /// `status` filters (`queued`, `running`, `retrying`, `succeeded`, `failed`, `canceled`);
    /// `limit` 1–100 (default 20); pass `next_cursor` back as `cursor` for the next page.
    /// Pages are stable under concurrent inserts.
    #[oai(path = "/v1/generations", method = "get", operation_id = "list_generations")]
    async fn list(
        &self,
        status: Query<Option<String>>,
        #[oai(default = "default_limit")] limit: Query<u32>,
        cursor: Query<Option<String>>,
        principal: Data<&Principal>,
    ) -> Result<Json<GenerationList>, ApiError> {
        let app = app(&self.app);
        let (views, next) = app.list_generations(&principal, status.0, cursor.0, limit.0).await?;
        let base = app.config.link_base();
        let items = views.into_iter().map(|v| Generation::from_view(v, base)).collect();
        Ok(Json(GenerationList { items, next_cursor: next }))
    }
}

/// The generation, with the bytes of each image's every variant inlined (`variants.<name>.base64`,
/// and the main file as `base64`) when the request asked for it and it succeeded.
async fn with_base64(app: &App, view: GenerationView) -> crate::error::AppResult<Generation> {
    use base64::Engine;
    let wanted = view.spec.return_base64 && view.row.status == "succeeded";
    let keys: Vec<_> = view.images.iter().map(super::images::variant_keys).collect();
    let mut generation = Generation::from_view(view, app.config.link_base());
    if wanted {
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        for (image, keys) in generation.images.iter_mut().zip(keys) {
            for (name, variant) in image.variants.named_mut() {
                let (Some(variant), Some(key)) = (variant, keys.get(name)) else { continue };
                variant.base64 = Some(encode(&app.blobs.get(key).await?));
            }
            image.base64 = image.variants.cropped.as_ref().and_then(|v| v.base64.clone());
        }
    }
    Ok(generation)
}

/// One event of `GET /v1/generations/{id}/events`.
#[derive(Debug, Clone, Object)]
pub struct GenerationStreamEvent {
    /// `gen_…`.
    pub id: String,
    /// `queued`, `running`, `retrying`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    /// 0–100.
    pub progress: f64,
    /// The pipeline stage (`queued`, `claimed`, `generating`, `storing`…).
    pub stage: Option<String>,
    /// The whole generation, on the final event only.
    #[oai(skip_serializing_if_is_none)]
    pub generation: Option<Generation>,
}

/// Feed a stream: the current state, then each change until the generation is final or the
/// client has gone. Progress comes straight from this process's events (which include other
/// replicas' where the database relays them); the database is read only for the final event,
/// after a missed event, and on a timer (every 2 s on PostgreSQL, 500 ms on SQLite, where
/// other processes can only be polled).
pub(crate) async fn stream_generation(
    app: App,
    first: GenerationView,
    tx: tokio::sync::mpsc::Sender<GenerationStreamEvent>,
) {
    let id = first.row.id.clone();
    let mut events = app.events.subscribe();
    let every = match app.db.kind() {
        crate::config::DatabaseKind::Postgres => Duration::from_secs(2),
        crate::config::DatabaseKind::Sqlite => Duration::from_millis(500),
    };
    let mut view = Some(first);
    let mut last: Option<GenerationStreamEvent> = None;
    loop {
        let event = match view.take() {
            Some(v) if v.is_finished() => {
                let event = stream_event(&v.row.id, &v.row.status, v.row.progress, v.row.stage.clone());
                let generation = with_base64(&app, v).await.ok();
                let _ = tx.send(GenerationStreamEvent { generation, ..event }).await;
                return;
            }
            Some(v) => Some(stream_event(&id, &v.row.status, v.row.progress, v.row.stage)),
            None => None,
        };
        // Send what changed; progress never goes back within one status (events may overtake
        // each other).
        if let Some(event) = event
            && last.as_ref().is_none_or(|l| {
                l.status != event.status
                    || (event.progress > l.progress || (event.progress == l.progress && l.stage != event.stage))
            })
        {
            if tx.send(event.clone()).await.is_err() {
                return;
            }
            last = Some(event);
        }
        let tick = tokio::time::sleep(every);
        tokio::pin!(tick);
        let reread = loop {
            tokio::select! {
                _ = &mut tick => break true,
                _ = tx.closed() => return,
                e = events.recv() => match e {
                    Ok(e) if e.id == id && is_final(&e.status) => break true,
                    Ok(e) if e.id == id => {
                        let event = stream_event(&id, &e.status, e.progress, Some(e.stage));
                        if last.as_ref().is_none_or(|l| l.status != event.status || event.progress > l.progress
                            || (event.progress == l.progress && l.stage != event.stage))
                        {
                            if tx.send(event.clone()).await.is_err() {
                                return;
                            }
                            last = Some(event);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break true,
                },
            }
        };
        if reread {
            // Ownership was checked when the stream opened.
            view = match app.get_generation(&Principal::system(), &id).await {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(error = ?e, generation_id = %id, "event stream ended: reading the generation failed");
                    return;
                }
            };
        }
    }
}

fn stream_event(id: &str, status: &str, progress: f64, stage: Option<String>) -> GenerationStreamEvent {
    GenerationStreamEvent { id: id.to_string(), status: status.to_string(), progress, stage, generation: None }
}

fn default_limit() -> u32 {
    20
}

impl App {
    /// Wait until the generation is final or `timeout` passes; returns its latest view.
    pub async fn wait_for_generation(
        &self,
        principal: &Principal,
        id: &str,
        timeout: Duration,
    ) -> crate::error::AppResult<GenerationView> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = self.events.subscribe();
        loop {
            let view = self.get_generation(principal, id).await?;
            if is_final(&view.row.status) || tokio::time::Instant::now() >= deadline {
                return Ok(view);
            }
            // Wake on this generation's events; re-read at least every 500 ms (other replicas).
            let tick = tokio::time::Instant::now() + Duration::from_millis(500);
            let until = tick.min(deadline);
            loop {
                match tokio::time::timeout_at(until, events.recv()).await {
                    Ok(Ok(e)) if e.id == id && is_final(&e.status) => break,
                    Ok(Ok(_)) => continue,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => break,
                    Ok(Err(_)) | Err(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefer_wait;

    #[test]
    fn prefer_header() {
        assert_eq!(prefer_wait(Some("wait=5")), Some(5));
        assert_eq!(prefer_wait(Some("respond-async, wait=10")), Some(10));
        assert_eq!(prefer_wait(Some("handling=lenient; wait=3")), Some(3));
        assert_eq!(prefer_wait(Some("respond-async")), None);
        assert_eq!(prefer_wait(None), None);
    }
}
