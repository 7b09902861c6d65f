//! `POST /v1/callbacks/{plugin}/{generation_id}`: providers calling back (fal webhooks).

use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::problem::ApiError;
use super::{Tag, app};
use crate::error::{AppError, ErrorCode};
use crate::plugins::CallError;
use crate::plugins::runtime::abi;
use crate::service::{App, ReplicaSignal};

/// Provider callbacks.
pub struct CallbacksApi {
    pub(crate) app: Option<App>,
}

/// Largest callback body accepted.
const MAX_CALLBACK_BYTES: usize = 1 << 20;

/// What happened to a callback.
#[derive(Debug, Clone, Object)]
pub struct CallbackReceipt {
    /// Always true: the callback was authentic and the generation's job looks at the
    /// provider now.
    pub accepted: bool,
}

/// Answers of the callback route.
#[derive(ApiResponse)]
pub enum CallbackResponse {
    /// Verified; the job was woken.
    #[oai(status = 202)]
    Accepted(Json<CallbackReceipt>),
}

#[OpenApi(tag = "Tag::Generations")]
impl CallbacksApi {
    /// Receive a provider's callback (webhook) for a running generation.
    ///
    /// For providers the operator lets call back (`[plugins.<id>] callbacks = true`; the
    /// bundled `fal` plugin passes this URL as `fal_webhook`). Nothing in the body is trusted
    /// before the provider plugin verified it (fal: an ED25519 signature over the request id,
    /// user id, timestamp and body hash, checked against fal's published keys, timestamp
    /// within 5 minutes). An authentic callback makes the job look at the provider at once;
    /// the result itself is still fetched from the provider, and polling stays the fallback.
    ///
    /// Errors: 404 `not_found` when the plugin takes no callbacks or the generation is not
    /// running with it; 401 `unauthorized` when the callback is not authentic; 413 over 1 MiB.
    #[oai(path = "/v1/callbacks/:plugin/:generation_id", method = "post", operation_id = "provider_callback")]
    async fn callback(
        &self,
        /// The provider plugin's id, e.g. `fal`.
        plugin: Path<String>,
        /// The generation the callback is about (`gen_…`).
        generation_id: Path<String>,
        body: Binary<Vec<u8>>,
        request: &poem::Request,
    ) -> Result<CallbackResponse, ApiError> {
        let app = app(&self.app);
        if body.0.len() > MAX_CALLBACK_BYTES {
            return Err(AppError::coded(ErrorCode::PayloadTooLarge, "a callback is at most 1 MiB").into());
        }
        let not_found = || AppError::not_found("callback target", &format!("{}/{}", plugin.0, generation_id.0));
        let target = app.plugins.catalog().plugins.get(plugin.0.as_str()).cloned();
        let Some(target) = target.filter(|p| p.takes_callbacks()) else { return Err(not_found().into()) };
        // Only a generation still in progress with this provider (as its model or a fallback).
        let of_plugin = |m: &str| m.split_once('/').is_some_and(|(p, _)| p == target.manifest.id);
        let running = app.db.get_generation(&generation_id.0).await?.filter(|g| {
            matches!(g.status.as_str(), "queued" | "running" | "retrying")
                && serde_json::from_str::<crate::service::generations::GenerationSpec>(&g.request_json)
                    .is_ok_and(|spec| of_plugin(&spec.model) || spec.fallbacks.iter().any(|m| of_plugin(m)))
        });
        if running.is_none() {
            return Err(not_found().into());
        }
        let headers = request
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_ascii_lowercase(), v.to_string())))
            .collect();
        let callback = abi::Callback { generation_id: generation_id.0.clone(), headers, body: body.0 };
        match target.handle_callback(callback).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(plugin = %target.manifest.id, generation_id = %generation_id.0, "refused a callback that did not verify");
                return Err(AppError::coded(ErrorCode::Unauthorized, "the callback's signature did not verify").into());
            }
            Err(CallError::Plugin { kind: "unsupported", .. }) => return Err(not_found().into()),
            Err(e) => {
                tracing::warn!(plugin = %target.manifest.id, error = %e, "verifying a callback failed");
                return Err(AppError::coded(ErrorCode::Unauthorized, "the callback could not be verified").into());
            }
        }
        tracing::info!(plugin = %target.manifest.id, generation_id = %generation_id.0, "provider callback verified");
        if !app.callback_arrived(&generation_id.0) {
            let signal =
                ReplicaSignal::Callback { generation_id: generation_id.0.clone(), origin: app.replica_id.clone() };
            if let Err(e) = app.signal(&signal).await {
                tracing::warn!(error = ?e, "relaying a callback to other replicas failed; polling will find the result");
            }
        }
        Ok(CallbackResponse::Accepted(Json(CallbackReceipt { accepted: true })))
    }
}
