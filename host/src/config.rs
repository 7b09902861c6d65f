//! Operator configuration: embedded defaults → TOML file (`--config`) → `EASEL_*` environment
//! → command-line flags. Key names follow `shared/API.md` and `docker/easel.example.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The whole configuration of one `easel serve` process.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Socket address to listen on, e.g. `127.0.0.1:8080` or `0.0.0.0:8080`.
    pub listen: SocketAddr,
    /// Directory for the SQLite file, local blobs, plugins and caches.
    pub data_dir: PathBuf,
    /// Base of absolute links the server hands out (signed URLs, webhooks).
    pub public_url: String,
    /// `sqlite://path` (default: `<data_dir>/easel.db`).
    pub database_url: Option<String>,
    /// Model used when a request names none, as `provider/model`.
    pub default_model: String,
    /// Log output: `pretty` (default) or `json`.
    pub log_format: LogFormat,
    /// Object storage for image files.
    pub blobs: BlobsConfig,
    /// The job queue and its workers.
    pub jobs: JobsConfig,
    /// Request and image limits.
    pub limits: LimitsConfig,
    /// Plugins directory, default limits and per-plugin grants.
    pub plugins: PluginsConfig,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, coloured when on a terminal.
    #[default]
    Pretty,
    /// One JSON object a line, for log shippers.
    Json,
}

/// `[blobs]`: where image files live.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobsConfig {
    /// `file:///abs/path` or `file://./relative`; default `<data_dir>/blobs`.
    pub url: Option<String>,
}

/// `[jobs]`: queue workers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Generations run at once by this process (1..=64).
    pub workers: usize,
    /// A claimed job is taken up by another worker when its lease is not renewed for this long.
    pub lease_seconds: u64,
    /// Times a job is claimed before it is failed for good (a worker died each time).
    pub max_attempts: u32,
    /// How often idle workers look for work another process queued, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { workers: 4, lease_seconds: 30, max_attempts: 3, poll_interval_ms: 500 }
    }
}

/// `[limits]`: bounds on requests and images.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most pixels (width × height) of one generated image.
    pub max_pixels: u64,
    /// Longest `Prefer: wait=N` honoured, in seconds.
    pub max_wait_seconds: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { max_body_bytes: 32 << 20, max_pixels: 4096 * 4096, max_wait_seconds: 60 }
    }
}

/// `[plugins]`: the directory and what the operator grants each plugin.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginsConfig {
    /// Extra plugins: one folder each with `plugin.toml` and the `.wasm`; default `<data_dir>/plugins`.
    pub dir: Option<PathBuf>,
    /// Load the first-party plugins built into the binary.
    pub bundled: bool,
    /// Cache compiled components on disk (`<data_dir>/cache/plugins`).
    pub compile_cache: bool,
    /// Watch the plugins directory and reload changed plugins without a restart.
    pub watch: bool,
    /// Per plugin id: grants and settings (`[plugins.<id>]`).
    #[serde(flatten)]
    pub grants: BTreeMap<String, PluginGrant>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self { dir: None, bundled: true, compile_cache: true, watch: true, grants: BTreeMap::new() }
    }
}

/// `[plugins.<id>]`: what the operator grants one plugin.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginGrant {
    /// Non-secret settings the plugin reads with `config.get`.
    pub config: BTreeMap<String, String>,
    /// Outbound hosts granted (`https://host[:port]`, `*.` wildcards); effective = manifest ∩ this.
    pub allowed_outbound_hosts: Vec<String>,
    /// Allow private, loopback and link-local addresses (local backends and fixture tests only).
    pub allow_private_ips: bool,
    /// Secrets the host substitutes into the plugin's requests (`{{secret:NAME}}`); never shown to it.
    pub secrets: BTreeMap<String, Secret>,
    /// Lower the manifest's memory limit (MiB).
    pub memory_mb: Option<u64>,
    /// Lower the manifest's time limit per call (ms).
    pub timeout_ms: Option<u64>,
    /// Do not load this plugin.
    pub disabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().unwrap(),
            data_dir: PathBuf::from("./easel-data"),
            public_url: "http://localhost:8080".into(),
            database_url: None,
            default_model: "local/procedural".into(),
            log_format: LogFormat::Pretty,
            blobs: BlobsConfig::default(),
            jobs: JobsConfig::default(),
            limits: LimitsConfig::default(),
            plugins: PluginsConfig::default(),
        }
    }
}

/// A secret value whose `Debug` prints `[redacted]`, so it never reaches a log.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Figment layers configuration through `Serialize`; keep the value so defaults merge,
        // but nothing else in Easel serializes configuration.
        s.serialize_str(&self.0)
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
}

/// A configuration that could not be loaded; the message names the key and the source.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Load defaults, then `file` (if any), then `EASEL_*` variables, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!("config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        // `EASEL_CONFIG` names the file itself (a CLI flag), not a key.
        figment = figment.merge(Env::prefixed("EASEL_").split("__").lowercase(true).filter(|k| k.as_str() != "config"));
        let mut config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(format) = overrides.log_format {
            config.log_format = format;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=64).contains(&self.jobs.workers) {
            return Err(ConfigError(format!("jobs.workers must be 1..=64, got {}", self.jobs.workers)));
        }
        if self.jobs.lease_seconds < 2 {
            return Err(ConfigError("jobs.lease_seconds must be at least 2".into()));
        }
        if self.jobs.max_attempts == 0 {
            return Err(ConfigError("jobs.max_attempts must be at least 1".into()));
        }
        if !self.default_model.contains('/') {
            return Err(ConfigError(format!("default_model must be `provider/model`, got {:?}", self.default_model)));
        }
        if let Some(url) = &self.database_url
            && !url.starts_with("sqlite:")
        {
            return Err(ConfigError(format!(
                "database_url {:?}: only sqlite:// is supported by this build",
                Redacted(url)
            )));
        }
        Ok(())
    }

    /// The SQLite URL to open: `database_url`, or `<data_dir>/easel.db`.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("easel.db").display()))
    }

    /// Local directory for blobs: from `blobs.url` (`file://…`) or `<data_dir>/blobs`.
    pub fn blobs_dir(&self) -> Result<PathBuf, ConfigError> {
        match &self.blobs.url {
            None => Ok(self.data_dir.join("blobs")),
            Some(url) => url
                .strip_prefix("file://")
                .map(PathBuf::from)
                .ok_or_else(|| ConfigError(format!("blobs.url {url:?}: only file:// is supported by this build"))),
        }
    }

    /// Directory scanned for extra plugins.
    pub fn plugins_dir(&self) -> PathBuf {
        self.plugins.dir.clone().unwrap_or_else(|| self.data_dir.join("plugins"))
    }
}

/// Shows only the scheme of a URL that may carry credentials.
struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once("://") {
            Some((scheme, _)) => write!(f, "{scheme}://[redacted]"),
            None => f.write_str("[redacted]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.default_model, "local/procedural");
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("easel.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\n[jobs]\nworkers = 2\n[plugins.local]\nconfig = { a = \"b\" }\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.jobs.workers, 2);
        assert_eq!(c.plugins.grants["local"].config["a"], "b");
        let o = Overrides { listen: Some("127.0.0.1:1".parse().unwrap()), ..Default::default() };
        assert_eq!(Config::load(Some(&file), &o).unwrap().listen.port(), 1);
    }

    #[test]
    fn bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("easel.toml");
        std::fs::write(&file, "[jobs]\nworkers = 0\n").unwrap();
        let err = Config::load(Some(&file), &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("jobs.workers"), "{err}");
        assert!(Config::load(Some(&dir.path().join("missing.toml")), &Overrides::default()).is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("easel.toml");
        std::fs::write(&file, "[plugins.gemini]\nsecrets = { GEMINI_API_KEY = \"hunter2\" }\n").unwrap();
        let c = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(c.plugins.grants["gemini"].secrets["GEMINI_API_KEY"].expose(), "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn database_url_is_never_printed_with_credentials() {
        let shown = format!("{:?}", Redacted("postgres://user:hunter2@db/easel"));
        assert!(!shown.contains("hunter2"));
    }
}

#[cfg(test)]
mod example_config {
    use super::*;

    #[test]
    fn the_documented_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/easel.example.toml");
        let config = Config::load(Some(&path), &Overrides::default()).expect("docker/easel.example.toml is valid");
        let defaults = Config::default();
        assert_eq!(config.listen, defaults.listen);
        assert_eq!(config.jobs.workers, defaults.jobs.workers);
        assert_eq!(config.limits.max_pixels, defaults.limits.max_pixels);
        assert!(config.plugins.grants.contains_key("local"));
    }
}
