//! `replicate`: image generation on [Replicate](https://replicate.com) through its
//! [predictions API](https://replicate.com/docs/reference/http): create a prediction with
//! `POST {base_url}/v1/models/{owner}/{name}/predictions` (or `POST /v1/predictions` with a
//! `version` for pinned ids `owner/name:version`), holding the answer with `Prefer: wait=N`;
//! when it is not finished by then, poll `urls.get` and cancel with `POST urls.cancel` if the
//! generation is canceled.
//!
//! Model ids are Replicate model ids (`replicate/black-forest-labs/flux-dev` → model
//! `black-forest-labs/flux-dev`). Known models ([`catalogue::KNOWN`]) get their own input
//! mapping; other models from the `models` setting get a generic one (`prompt`,
//! `aspect_ratio`, `seed`; one image a call). `provider_options` merge into `input`.
//!
//! Settings (`[plugins.replicate] config`): `base_url` (default `https://api.replicate.com`),
//! `models` (comma-separated ids replacing the default list), `poll_interval_ms` (default 1000),
//! `request_timeout_ms` (default 60000), `wait_seconds` (`Prefer: wait`, default 60, 1..=60).
//! Secret: `REPLICATE_API_TOKEN`, sent as `Authorization: Bearer {{secret:REPLICATE_API_TOKEN}}`.
//!
//! Outputs are URLs on `replicate.delivery`, returned as `ImageData::Url` for the host to fetch.
//! Failed predictions whose error mentions NSFW/safety fail with `content-blocked`.

#![warn(missing_docs)]

pub mod catalogue;
pub mod env;
pub mod predict;
pub mod settings;
pub mod util;
pub mod wire;

use easel_plugin_sdk::provider::*;

/// The `replicate` provider.
pub struct Replicate;

impl Provider for Replicate {
    fn describe() -> ProviderInfo {
        let settings = settings::Settings::from_host();
        let models = settings
            .models
            .iter()
            .filter_map(|text| util::parse_model_id(text).map(|id| catalogue::model(text, &id)))
            .collect();
        ProviderInfo { models }
    }

    fn generate(request: GenerateRequest) -> Result<GenerateResponse, PluginError> {
        predict::generate(&mut env::HostEnv, &settings::Settings::from_host(), &request)
    }
}

easel_plugin_sdk::register_provider!(Replicate);
