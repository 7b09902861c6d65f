//! The operator's settings for this plugin (`[plugins.fal] config = {...}`), read once per call.

/// Default origin of fal's queue API.
pub const DEFAULT_BASE_URL: &str = "https://queue.fal.run";

/// Default location of the public keys fal signs webhooks with.
pub const DEFAULT_JWKS_URL: &str = "https://rest.alpha.fal.ai/.well-known/jwks.json";

/// Settings with their defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Origin (and optional path prefix) of the queue API, without a trailing slash.
    pub base_url: String,
    /// Endpoint ids replacing the built-in catalogue, when the operator set `models`.
    pub models: Option<Vec<String>>,
    /// Pause between two status polls, in milliseconds.
    pub poll_interval_ms: u32,
    /// Time limit of each HTTP call, in milliseconds.
    pub request_timeout_ms: u32,
    /// Where fal's webhook-signing public keys (a JWKS) are fetched from.
    pub jwks_url: String,
    /// The operator's fal user id: webhooks signed for another account are refused.
    pub webhook_user_id: Option<String>,
}

impl Settings {
    /// Read the settings through `get` (the host's `config.get`, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let number = |key: &str, default: u32, min: u32, max: u32| {
            get(key).and_then(|v| v.trim().parse::<u32>().ok()).map_or(default, |v| v.clamp(min, max))
        };
        let base_url = get("base_url")
            .map(|v| v.trim().trim_end_matches('/').to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let jwks_url = get("jwks_url")
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_JWKS_URL.to_string());
        let models = get("models")
            .map(|v| v.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_string).collect::<Vec<_>>());
        Self {
            base_url,
            models: models.filter(|m| !m.is_empty()),
            poll_interval_ms: number("poll_interval_ms", 1000, 10, 60_000),
            request_timeout_ms: number("request_timeout_ms", 60_000, 1_000, 600_000),
            jwks_url,
            webhook_user_id: get("webhook_user_id").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()),
        }
    }

    /// The settings the operator gave this plugin.
    pub fn from_host() -> Self {
        Self::from_lookup(easel_plugin_sdk::host::config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let s = with(&[]);
        assert_eq!(s.base_url, DEFAULT_BASE_URL);
        assert_eq!(s.models, None);
        assert_eq!(s.poll_interval_ms, 1000);
        assert_eq!(s.request_timeout_ms, 60_000);
        assert_eq!(s.jwks_url, DEFAULT_JWKS_URL);
    }

    #[test]
    fn overrides_are_trimmed_and_clamped() {
        let s = with(&[
            ("base_url", "http://127.0.0.1:9000/ "),
            ("models", " fal-ai/flux/dev, ,fal-ai/custom/app "),
            ("poll_interval_ms", "1"),
            ("request_timeout_ms", "oops"),
            ("jwks_url", " http://127.0.0.1:9000/.well-known/jwks.json "),
        ]);
        assert_eq!(s.jwks_url, "http://127.0.0.1:9000/.well-known/jwks.json");
        assert_eq!(s.base_url, "http://127.0.0.1:9000");
        assert_eq!(s.models, Some(vec!["fal-ai/flux/dev".to_string(), "fal-ai/custom/app".to_string()]));
        assert_eq!(s.poll_interval_ms, 10);
        assert_eq!(s.request_timeout_ms, 60_000);
        assert_eq!(with(&[("models", " , ")]).models, None);
    }
}
