//! `plugin.toml`: who a plugin is, what it needs, and the limits it runs under.

use serde::{Deserialize, Serialize};

/// The ABI version this host implements.
pub const API_VERSION: &str = "0.1.0";

/// The kinds of plugin, one WIT world each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Makes images from prompts (world `provider-plugin`).
    Provider,
    /// Style templates (world `style-pack-plugin`).
    StylePack,
    /// Archetypes, crops and background removal (world `cropper-plugin`).
    Cropper,
    /// Editing filters (world `filter-plugin`).
    Filter,
}

impl PluginKind {
    /// The wire name, e.g. `provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::StylePack => "style-pack",
            Self::Cropper => "cropper",
            Self::Filter => "filter",
        }
    }
}

/// A parsed and validated `plugin.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lowercase id, `[a-z][a-z0-9-]{0,39}`; the prefix of its model ids.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// Which world the component implements.
    pub kind: PluginKind,
    /// ABI version the plugin was built against; must be `0.1.0`.
    pub api_version: String,
    /// File name of the component, beside `plugin.toml`.
    pub wasm: String,
    /// Optional hex SHA-256 of the component; checked when present.
    #[serde(default)]
    pub sha256: Option<String>,
    /// One-line description.
    #[serde(default)]
    pub description: Option<String>,
    /// What the plugin asks for; the operator grants it in `[plugins.<id>]`.
    #[serde(default)]
    pub permissions: Permissions,
    /// Resource limits per call.
    #[serde(default)]
    pub limits: Limits,
}

/// Capabilities a plugin asks for.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Hosts the plugin may reach through the host's HTTP import (`https://host[:port]`, `*.` allowed).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Names of secrets the host may substitute into its requests (`{{secret:NAME}}`).
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// Per-call limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory cap, MiB (1..=4096).
    pub memory_mb: u64,
    /// Wall-clock budget per call, ms (10..=600000).
    pub timeout_ms: u64,
    /// Largest HTTP response the host accepts for the plugin, bytes.
    pub max_response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { memory_mb: 256, timeout_ms: 60_000, max_response_bytes: 32 << 20 }
    }
}

/// What is wrong with a manifest, in plain words.
#[derive(Debug, thiserror::Error)]
#[error("plugin.toml: {0}")]
pub struct ManifestError(pub String);

impl Manifest {
    /// Parse and validate the text of a `plugin.toml`.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let m: Manifest = toml::from_str(text).map_err(|e| ManifestError(e.message().to_string()))?;
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let id_ok = self.id.len() <= 40
            && self.id.starts_with(|c: char| c.is_ascii_lowercase())
            && self.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok {
            return Err(ManifestError(format!(
                "id {:?} must be 1-40 characters of a-z, 0-9 and '-', starting with a letter",
                self.id
            )));
        }
        if self.api_version != API_VERSION {
            return Err(ManifestError(format!(
                "api_version {:?} is not supported; this Easel speaks {API_VERSION}",
                self.api_version
            )));
        }
        if self.wasm.contains(['/', '\\']) || !self.wasm.ends_with(".wasm") {
            return Err(ManifestError(format!("wasm {:?} must be a file name ending in .wasm", self.wasm)));
        }
        if let Some(sha) = &self.sha256
            && (sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(ManifestError("sha256 must be 64 hex digits".into()));
        }
        if !(1..=4096).contains(&self.limits.memory_mb) {
            return Err(ManifestError("limits.memory_mb must be 1..=4096".into()));
        }
        if !(10..=600_000).contains(&self.limits.timeout_ms) {
            return Err(ManifestError("limits.timeout_ms must be 10..=600000".into()));
        }
        if !(1..=(1 << 30)).contains(&self.limits.max_response_bytes) {
            return Err(ManifestError("limits.max_response_bytes must be 1..=1073741824 (1 GiB)".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "id = \"local\"\nname = \"L\"\nversion = \"0.1.0\"\nkind = \"provider\"\napi_version = \"0.1.0\"\nwasm = \"x.wasm\"\n";

    #[test]
    fn parses_with_defaults() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.kind, PluginKind::Provider);
        assert_eq!(m.limits.memory_mb, 256);
    }

    #[test]
    fn rejects_bad_fields_in_plain_words() {
        let cases = [
            (GOOD.replace("\"local\"", "\"Local!\""), "id"),
            (GOOD.replace("api_version = \"0.1.0\"", "api_version = \"9.0.0\""), "api_version"),
            (GOOD.replace("x.wasm", "../x.wasm"), "wasm"),
            (GOOD.replace("provider", "teapot"), "teapot"),
            (format!("{GOOD}[limits]\nmemory_mb = 0\n"), "memory_mb"),
            (format!("{GOOD}[limits]\nmax_response_bytes = 0\n"), "max_response_bytes"),
            (format!("{GOOD}surprise = 1\n"), "surprise"),
        ];
        for (text, word) in cases {
            let err = Manifest::parse(&text).unwrap_err().to_string();
            assert!(err.contains(word), "{err} should mention {word}");
        }
    }
}
