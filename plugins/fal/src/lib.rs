//! `fal`: image generation on [fal.ai](https://fal.ai) through its
//! [queue API](https://docs.fal.ai/model-endpoints/queue): submit to
//! `POST {base_url}/{endpoint id}`, poll `status_url?logs=1`, fetch `response_url`, and cancel
//! with `PUT cancel_url` when the generation is canceled.
//!
//! Model ids are fal endpoint ids (`fal/fal-ai/flux/dev` → endpoint `fal-ai/flux/dev`). The
//! built-in catalogue ([`catalogue::KNOWN`]) knows FLUX.1 [dev] / [schnell] / with LoRAs,
//! FLUX.1 Kontext [pro], Recraft V3, Ideogram V3, nano-banana (and its edit endpoint) and
//! Stable Diffusion 3.5 Large, with each endpoint's inputs (see `https://fal.ai/models/<id>/api`).
//!
//! Settings (`[plugins.fal] config`): `base_url` (default `https://queue.fal.run`), `models`
//! (comma-separated endpoint ids replacing the catalogue; unknown ids get a generic mapping),
//! `poll_interval_ms` (default 1000), `request_timeout_ms` (default 60000), `jwks_url` (default
//! `https://rest.alpha.fal.ai/.well-known/jwks.json`).
//! Secret: `FAL_KEY`, sent as `Authorization: Key {{secret:FAL_KEY}}` and substituted by the host.
//!
//! Results are image URLs on fal's CDN (`*.fal.media`), returned as `ImageData::Url` for the
//! host to fetch. Images fal's safety checker flags (`has_nsfw_concepts`) fail the call with
//! `content-blocked`.
//!
//! Webhooks: when the operator sets `[plugins.fal] callbacks = true`, submissions carry
//! `?fal_webhook={public_url}/v1/callbacks/fal/{generation id}`. fal POSTs there when the job is
//! done; [`webhook`] verifies the ED25519 signature against fal's JWKS and an authentic callback
//! ends the wait before the next status poll. Polling stays the source of truth and the fallback.

#![warn(missing_docs)]

pub mod catalogue;
pub mod env;
pub mod queue;
pub mod settings;
pub mod util;
pub mod webhook;
pub mod wire;

use easel_plugin_sdk::host::{Level, log};
use easel_plugin_sdk::provider::*;

/// The `fal` provider.
pub struct Fal;

impl Provider for Fal {
    fn describe() -> ProviderInfo {
        let settings = settings::Settings::from_host();
        let ids = catalogue::model_ids(settings.models.as_deref());
        ProviderInfo { models: ids.iter().map(|id| catalogue::model(id)).collect() }
    }

    fn generate(request: GenerateRequest) -> Result<GenerateResponse, PluginError> {
        queue::generate(&mut env::HostEnv, &settings::Settings::from_host(), &request)
    }

    fn handle_callback(callback: Callback) -> Result<bool, PluginError> {
        let settings = settings::Settings::from_host();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| PluginError::Internal("the clock is before 1970".into()))?
            .as_secs();
        let verdict = webhook::handle(
            &callback.headers,
            &callback.body,
            now,
            &settings.jwks_url,
            settings.webhook_user_id.as_deref(),
            settings.request_timeout_ms,
            easel_plugin_sdk::http::fetch,
        )?;
        match verdict {
            Ok(()) => Ok(true),
            Err(reason) => {
                log(Level::Warn, &format!("refused a fal webhook for {}: {reason}", callback.generation_id));
                Ok(false)
            }
        }
    }
}

easel_plugin_sdk::register_provider!(Fal);
