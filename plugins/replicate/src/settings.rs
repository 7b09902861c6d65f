//! The operator's settings for this plugin (`[plugins.replicate] config = {...}`), read once per call.

/// Default origin of Replicate's HTTP API.
pub const DEFAULT_BASE_URL: &str = "https://api.replicate.com";

/// The catalogue when the operator sets no `models`.
pub const DEFAULT_MODELS: &[&str] = &[
    "black-forest-labs/flux-dev",
    "black-forest-labs/flux-schnell",
    "black-forest-labs/flux-1.1-pro",
    "stability-ai/stable-diffusion-3.5-large",
    "recraft-ai/recraft-v3",
    "ideogram-ai/ideogram-v3-turbo",
];

/// Settings with their defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Origin of the API, without a trailing slash.
    pub base_url: String,
    /// Model ids offered (`owner/name` or `owner/name:version`).
    pub models: Vec<String>,
    /// Pause between two polls of a running prediction, in milliseconds.
    pub poll_interval_ms: u32,
    /// Time limit of each HTTP call, in milliseconds (the create call gets `wait_seconds` more).
    pub request_timeout_ms: u32,
    /// `Prefer: wait=N` on create: how long Replicate holds the answer for a finished prediction.
    pub wait_seconds: u32,
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
        let models = get("models")
            .map(|v| v.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_string).collect::<Vec<_>>())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| DEFAULT_MODELS.iter().map(|m| m.to_string()).collect());
        Self {
            base_url,
            models,
            poll_interval_ms: number("poll_interval_ms", 1000, 10, 60_000),
            request_timeout_ms: number("request_timeout_ms", 60_000, 1_000, 600_000),
            wait_seconds: number("wait_seconds", 60, 1, 60),
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
        assert_eq!(s.models.len(), DEFAULT_MODELS.len());
        assert_eq!((s.poll_interval_ms, s.request_timeout_ms, s.wait_seconds), (1000, 60_000, 60));
    }

    #[test]
    fn overrides() {
        let s = with(&[("base_url", "http://127.0.0.1:9/"), ("models", "a/b, c/d:abc123"), ("wait_seconds", "0")]);
        assert_eq!(s.base_url, "http://127.0.0.1:9");
        assert_eq!(s.models, vec!["a/b".to_string(), "c/d:abc123".to_string()]);
        assert_eq!(s.wait_seconds, 1);
        assert_eq!(with(&[("wait_seconds", "600")]).wait_seconds, 60);
    }
}
