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
    /// The address clients reach this server at, e.g. `https://images.example.com` or
    /// `https://example.com/easel` (an `http`/`https` origin with an optional path prefix; a
    /// trailing `/` is dropped). When set, every link in an answer is absolute under it (image
    /// `url` and `variants`, `Location` headers), provider callbacks are addressed to it, and
    /// its host counts as this server's own name for the IP-allowlisted tiers. Unset (the
    /// default): links are relative to the server (`/v1/images/…`) and callbacks are off.
    pub public_url: Option<String>,
    /// `sqlite://path` (default: `<data_dir>/easel.db`) or `postgres://user:pass@host:5432/db`.
    /// Redacted in `Debug`: a PostgreSQL URL usually carries a password.
    pub database_url: Option<Secret>,
    /// Connections in this process's database pool (1..=200).
    pub database_max_connections: u32,
    /// Older name of `defaults.model`, still honoured: the model used when a request and the
    /// user's settings name none, as `provider/model`. Setting both to different models is
    /// an error.
    pub default_model: Option<String>,
    /// Reject a request parameter the chosen model does not take (`steps`, `seed`, `quality`,
    /// `guidance_scale`, `strength`, `loras`) with 422 `validation_error` naming the field and
    /// the model (`true`, the default); `false` accepts the generation without it and lists
    /// what was dropped in its `warnings`.
    pub strict_parameters: bool,
    /// Server-wide defaults for what a request and the user's settings leave out.
    pub defaults: DefaultsConfig,
    /// Log output: `pretty` (default) or `json`.
    pub log_format: LogFormat,
    /// Object storage for image files.
    pub blobs: BlobsConfig,
    /// The job queue and its workers.
    pub jobs: JobsConfig,
    /// Request and image limits.
    pub limits: LimitsConfig,
    /// Where user-supplied input image URLs may point.
    pub inputs: InputsConfig,
    /// Plugins directory, default limits and per-plugin grants.
    pub plugins: PluginsConfig,
    /// Accounts, sessions, IP allowlists and the authorization policy.
    pub auth: AuthConfig,
    /// Tiers by name (`[tiers.<name>]`): quotas, limits, allowed models and credits. The
    /// defaults define `anonymous`, `local`, `free`, `pro` and `admin`; a file or the
    /// environment changes single keys (`EASEL_TIERS__FREE__IMAGES_PER_DAY=20`) or adds tiers.
    pub tiers: BTreeMap<String, TierConfig>,
    /// Fallback chains (`[fallbacks]`): when a model is unavailable (not loaded, no key
    /// configured) or exhausted (its retries used up on rate limits, overload or outages),
    /// the job moves to the next model of its chain, e.g.
    /// `"gemini/gemini-3.1-flash-image" = ["fal/fal-ai/flux/schnell", "local/procedural"]`.
    /// Models the caller's tier may not use are skipped. The generation records the model
    /// that produced its images (`model_used`).
    pub fallbacks: BTreeMap<String, Vec<String>>,
    /// `EASEL_*` environment variables that name no configuration key and were not applied
    /// (the server logs them once at start-up). Not a configuration key itself.
    #[serde(skip)]
    pub ignored_env: Vec<String>,
}

/// `[defaults]`: what a generation uses when neither the request nor the user's settings
/// (`PATCH /v1/me`) say. Precedence, for each field: request > user settings > these >
/// the style template's and then the archetype's preferred ratio (so `aspect_ratio = "16:9"`
/// wins over an archetype's 4:3: set no default ratio to let archetypes choose).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefaultsConfig {
    /// `provider/model`; default `local/procedural` (or the older top-level `default_model`).
    pub model: Option<String>,
    /// Exact ratio `"W:H"`, 1 ≤ W, H ≤ 64, used when a request gives no size in any form.
    pub aspect_ratio: Option<String>,
    /// Style template id (`GET /v1/styles`); one that no loaded plugin offers is skipped
    /// (and logged at start-up).
    pub style: Option<String>,
    /// Archetype id (`GET /v1/archetypes`); one that no loaded plugin offers is skipped (and
    /// logged at start-up).
    pub archetype: Option<String>,
    /// Stored format: `png`, `jpeg` or `webp`; default `png`.
    pub output_format: Option<String>,
}

/// The model used when a request and the user's settings name none, out of the box.
pub const BUILTIN_DEFAULT_MODEL: &str = "local/procedural";

/// `[auth]`: who may register, how long sessions last, which networks get a tier without
/// credentials, and where the casbin policy comes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `open` (anyone may register), `closed` (only operators create users: `easel user
    /// create`, admin API) or `invite` (registration needs a code from `POST /v1/admin/invites`).
    pub registration: Registration,
    /// Lifetime of a session token from `POST /v1/auth/login`, in seconds (60..=31536000).
    pub session_ttl_seconds: u64,
    /// Tier of newly registered users.
    pub default_tier: String,
    /// HMAC key signing session tokens (HS256), at least 32 bytes. When unset, one is
    /// generated once and kept in the database, so every replica shares it.
    pub jwt_secret: Option<Secret>,
    /// Networks let in without credentials, each with the tier its callers get, checked in
    /// order with casbin's `ipMatch`. Default: loopback (IPv4 and IPv6) → `local`, so a fresh
    /// server answers `curl` on the same machine. Set `ip_allowlist = []` to turn that off.
    pub ip_allowlist: Vec<IpRule>,
    /// Proxies (CIDRs) whose `X-Forwarded-For` is believed: the client is the right-most
    /// address in it that is not itself a trusted proxy. Empty: the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// When not empty, admin routes (`/v1/admin/*`, `POST /v1/plugins/reload`) answer only
    /// to clients in these CIDRs, whatever their tier.
    pub admin_allowlist: Vec<String>,
    /// The casbin model (`.conf`); default `<data_dir>/policy/model.conf` when it exists, else
    /// the embedded model.
    pub policy_model: Option<PathBuf>,
    /// The casbin policy (`.csv`); default `<data_dir>/policy/policy.csv` when it exists, else
    /// the embedded policy. Edits take effect without a restart.
    pub policy_file: Option<PathBuf>,
    /// Sign-in attempts allowed per e-mail address per 15 minutes (per client IP: 5 times
    /// this), after which `POST /v1/auth/login` answers 429.
    pub login_attempts: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            registration: Registration::Open,
            session_ttl_seconds: 86_400,
            default_tier: "free".into(),
            jwt_secret: None,
            ip_allowlist: vec![
                IpRule { cidr: "127.0.0.0/8".into(), tier: "local".into() },
                IpRule { cidr: "::1/128".into(), tier: "local".into() },
            ],
            trusted_proxies: Vec::new(),
            admin_allowlist: Vec::new(),
            policy_model: None,
            policy_file: None,
            login_attempts: 10,
        }
    }
}

/// Who may register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone.
    #[default]
    Open,
    /// No one; operators create users.
    Closed,
    /// Whoever has an unused invite code.
    Invite,
}

/// `[[auth.ip_allowlist]]`: a network and the tier its callers get without credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpRule {
    /// An address or CIDR, IPv4 or IPv6 (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`).
    pub cidr: String,
    /// A tier defined under `[tiers]`.
    pub tier: String,
}

/// `[tiers.<name>]`: what one tier may do. An absent limit means no limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TierConfig {
    /// A tier whose policy rules (routes and models) this one has too, as a casbin
    /// `g, <tier>, <inherits>` line: a new tier usually starts from `free` or `pro`.
    pub inherits: Option<String>,
    /// Images generated per UTC day (reserved when a generation is accepted, given back when
    /// it fails or is canceled).
    pub images_per_day: Option<u64>,
    /// Requests per hour, at least 1: every counted request (all but probes, docs and
    /// provider callbacks) takes one. A sliding window (GCRA), shared by replicas: the whole
    /// limit may be used at once, then one more request passes every `3600 / limit` seconds.
    pub requests_per_hour: Option<u64>,
    /// Requests per minute, at least 1, the same way: a burst of `limit`, then one every
    /// `60 / limit` seconds.
    pub requests_per_minute: Option<u64>,
    /// Generations created per minute, at least 1 (`POST /v1/generations`; a refused or
    /// replayed creation takes nothing), the same way.
    pub generations_per_minute: Option<u64>,
    /// Generations queued or running at once.
    pub max_concurrent: Option<u64>,
    /// Largest `n` of one generation.
    pub max_n: Option<u32>,
    /// Most pixels (width × height) of one image (the server-wide `limits.max_pixels` still applies).
    pub max_pixels: Option<u64>,
    /// Models this tier may use, as `provider/model` patterns (`local/*`, `*`). Added to the
    /// casbin policy as `p, <tier>, /models/<pattern>, use`.
    pub allowed_models: Vec<String>,
    /// Credits one image costs; when set, users of this tier need credits to generate.
    pub credits_per_image: Option<u64>,
    /// Balance a user's credits are topped up to at the start of each refill period.
    pub credits_refill: Option<u64>,
    /// `day`, `week` (Monday 00:00 UTC) or `month`.
    pub credits_refill_period: RefillPeriod,
    /// Users of this tier must bring their own key (`X-Provider-Key`) for models whose
    /// provider needs one: the operator's keys are not spent on them.
    pub bring_own_key: bool,
}

/// How often credits are topped up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefillPeriod {
    /// Every UTC day.
    Day,
    /// Every week, from Monday 00:00 UTC.
    Week,
    /// Every calendar month (UTC).
    #[default]
    Month,
}

/// The tiers a fresh server knows (see `docker/easel.example.toml`).
pub fn default_tiers() -> BTreeMap<String, TierConfig> {
    let models = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    BTreeMap::from([
        (
            "anonymous".to_string(),
            TierConfig {
                requests_per_hour: Some(600),
                requests_per_minute: Some(60),
                generations_per_minute: Some(5),
                images_per_day: Some(0),
                bring_own_key: true,
                ..TierConfig::default()
            },
        ),
        ("local".to_string(), TierConfig { allowed_models: models(&["*"]), ..TierConfig::default() }),
        (
            "free".to_string(),
            TierConfig {
                images_per_day: Some(50),
                requests_per_hour: Some(100),
                requests_per_minute: Some(60),
                generations_per_minute: Some(10),
                max_concurrent: Some(5),
                max_n: Some(4),
                max_pixels: Some(4_194_304),
                allowed_models: models(&["local/*", "gemini/*"]),
                bring_own_key: true,
                ..TierConfig::default()
            },
        ),
        (
            "pro".to_string(),
            TierConfig {
                images_per_day: Some(1000),
                requests_per_hour: Some(5000),
                requests_per_minute: Some(300),
                generations_per_minute: Some(60),
                max_concurrent: Some(20),
                max_n: Some(10),
                max_pixels: Some(16_777_216),
                allowed_models: models(&["*"]),
                ..TierConfig::default()
            },
        ),
        ("admin".to_string(), TierConfig { allowed_models: models(&["*"]), ..TierConfig::default() }),
    ])
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
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobsConfig {
    /// `file:///abs/path` or `file://./relative` (default `<data_dir>/blobs`), or
    /// `s3://bucket[/prefix]` for AWS S3 and S3-compatible services (MinIO, R2, Ceph, Garage).
    pub url: Option<String>,
    /// Endpoint of an S3-compatible service, e.g. `http://127.0.0.1:9000`; omit for AWS.
    pub s3_endpoint: Option<String>,
    /// Region used to sign requests (`us-east-1` suits most S3-compatible services).
    pub s3_region: String,
    /// Access key id; when both keys are unset, the standard `AWS_*` environment variables
    /// (and instance credentials on AWS) are used.
    pub s3_access_key_id: Option<Secret>,
    /// Secret access key (prefer `EASEL_BLOBS__S3_SECRET_ACCESS_KEY`).
    pub s3_secret_access_key: Option<Secret>,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted style
    /// (`bucket.endpoint/key`): true for MinIO and most self-hosted stores.
    pub s3_path_style: bool,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        Self {
            url: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_path_style: false,
        }
    }
}

/// Where blobs live, as parsed from `[blobs] url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobLocation {
    /// A local directory.
    Dir(PathBuf),
    /// An S3 bucket and a key prefix (may be empty).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix without leading or trailing `/`.
        prefix: String,
    },
}

/// Which database `database_url` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    /// `sqlite:`: one process (or several on one machine).
    Sqlite,
    /// `postgres:` / `postgresql:`: any number of replicas.
    Postgres,
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
    /// Calls to one model per job when its provider fails temporarily (429, 5xx, timeouts,
    /// transport errors), the first included (1..=10). The generation shows `retrying` between them.
    pub provider_attempts: u32,
    /// First backoff delay in milliseconds; doubled per retry, with full jitter (10..=60000).
    pub retry_base_delay_ms: u64,
    /// Longest backoff delay in milliseconds, and the longest `Retry-After` honoured: a
    /// provider asking for a longer wait counts as exhausted (its fallback, if any, is tried).
    pub retry_max_delay_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            lease_seconds: 30,
            max_attempts: 3,
            poll_interval_ms: 500,
            provider_attempts: 4,
            retry_base_delay_ms: 1000,
            retry_max_delay_ms: 60_000,
        }
    }
}

/// `[limits]`: bounds on requests and images.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Largest single uploaded image in bytes, checked per field within the body: a decoded
    /// base64 `data` input (`input_image.data`, `mask.data`) and an input image fetched from
    /// a `url` (and any upload route to come). Over it: 413 `payload_too_large` naming the field.
    pub max_upload_bytes: usize,
    /// Most pixels (width × height) of one generated image.
    pub max_pixels: u64,
    /// Longest `Prefer: wait=N` honoured, in seconds.
    pub max_wait_seconds: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { max_body_bytes: 32 << 20, max_upload_bytes: 20 << 20, max_pixels: 4096 * 4096, max_wait_seconds: 60 }
    }
}

/// `[inputs]`: where the server may fetch user-supplied image URLs (`input_image.url`,
/// `mask.url`) from. By default only public addresses on ports 80 and 443.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputsConfig {
    /// Origins on internal hosts that input image URLs may name, e.g.
    /// `["http://assets.internal:8000"]`: scheme, host and port, matched exactly (a URL with
    /// another port or scheme is not listed), no path. Such a URL may resolve to a private
    /// address and use any port; a redirect from it is judged afresh, so it never leads to
    /// another private address. Empty (the default): none.
    pub allowed_private_origins: Vec<String>,
}

impl InputsConfig {
    /// The listed origins as `scheme://host:port` (default port written out), the form
    /// [`crate::plugins::http::origin`] gives a URL. Entries that do not parse are left out
    /// (start-up refuses them).
    pub fn private_origins(&self) -> Vec<String> {
        self.allowed_private_origins.iter().filter_map(|o| parse_origin(o).ok()).collect()
    }
}

/// `scheme://host[:port]` → `scheme://host:port`; an error says what is wrong.
fn parse_origin(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("{text:?}: only http and https origins are fetched"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?}: credentials are not allowed"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || text.contains('*') {
        return Err(format!("{text:?}: give an origin only (scheme://host:port), no path, query or wildcard"));
    }
    Ok(crate::plugins::http::origin(&url))
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
        // The bundled remote providers may reach their official APIs (and the hosts their
        // results are downloaded from) out of the box: an operator only adds a key. A file or
        // the environment replaces a list to narrow it or to add a self-hosted `base_url`.
        let grant = |hosts: &[&str]| PluginGrant {
            allowed_outbound_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..PluginGrant::default()
        };
        let grants = BTreeMap::from([
            ("gemini".to_string(), grant(&["https://generativelanguage.googleapis.com"])),
            ("openai".to_string(), grant(&["https://api.openai.com", "https://*.blob.core.windows.net"])),
            (
                "fal".to_string(),
                grant(&[
                    "https://queue.fal.run",
                    "https://*.fal.media",
                    "https://fal.media",
                    "https://rest.alpha.fal.ai",
                ]),
            ),
            (
                "replicate".to_string(),
                grant(&["https://api.replicate.com", "https://replicate.delivery", "https://*.replicate.delivery"]),
            ),
        ]);
        Self { dir: None, bundled: true, compile_cache: true, watch: true, grants }
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
    /// Let the provider call back (`POST /v1/callbacks/<id>/<generation id>` under
    /// `public_url`, which must be reachable from the provider): the plugin verifies each
    /// callback, and an authentic one makes the job look at the upstream at once instead of
    /// at its next poll. Polling stays the fallback.
    pub callbacks: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().unwrap(),
            data_dir: PathBuf::from("./easel-data"),
            public_url: None,
            database_url: None,
            database_max_connections: 10,
            default_model: None,
            strict_parameters: true,
            defaults: DefaultsConfig::default(),
            log_format: LogFormat::Pretty,
            blobs: BlobsConfig::default(),
            jobs: JobsConfig::default(),
            limits: LimitsConfig::default(),
            inputs: InputsConfig::default(),
            plugins: PluginsConfig::default(),
            auth: AuthConfig::default(),
            tiers: default_tiers(),
            fallbacks: BTreeMap::new(),
            ignored_env: Vec::new(),
        }
    }
}

/// A secret value whose `Debug` prints `[redacted]`, so it never reaches a log.
///
/// Read from text, or from an integer or boolean: environment values are parsed like TOML,
/// so `EASEL_…=12345678` arrives as a number and is kept as its digits.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

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
        // Only variables whose first part names a configuration key are applied: `EASEL_API_KEY`
        // and `EASEL_URL` belong to the command-line client, `EASEL_CONFIG` names the file, and
        // an operator's unrelated `EASEL_*` must not stop the server. The rest are listed in
        // `ignored_env` for the server to log once. A wrong key inside a known section
        // (`EASEL_JOBS__WORKRES`) is still an error.
        let known_keys = top_level_keys();
        let known = known_keys.clone();
        figment = figment.merge(
            Env::prefixed("EASEL_")
                .split("__")
                .lowercase(true)
                .filter(move |k| known.iter().any(|key| *key == first_segment(k.as_str()))),
        );
        let mut config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.ignored_env = ignored(&known_keys, std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(format) = overrides.log_format {
            config.log_format = format;
        }
        // An empty value (`EASEL_PUBLIC_URL=` from a template) means unset.
        config.public_url = config
            .public_url
            .take()
            .map(|url| url.trim().trim_end_matches('/').to_string())
            .filter(|url| !url.is_empty());
        let cwd = std::env::current_dir()
            .map_err(|e| ConfigError(format!("cannot read the working directory to resolve relative paths: {e}")))?;
        config.resolve_paths(&cwd);
        config.validate()?;
        Ok(config)
    }

    /// The configuration as TOML (what `easel config check` prints), with every secret
    /// replaced by `[redacted]`: plugin secrets, S3 keys, the JWT secret and the password in
    /// `database_url`.
    pub fn redacted_toml(&self) -> Result<String, ConfigError> {
        let mut shown = self.clone();
        let hide = |s: &mut Secret| *s = Secret::new("[redacted]");
        for secret in
            [&mut shown.blobs.s3_access_key_id, &mut shown.blobs.s3_secret_access_key, &mut shown.auth.jwt_secret]
                .into_iter()
                .flatten()
        {
            hide(secret);
        }
        for grant in shown.plugins.grants.values_mut() {
            grant.secrets.values_mut().for_each(hide);
        }
        if let Some(url) = &shown.database_url {
            shown.database_url = Some(Secret::new(without_password(url.expose())));
        }
        toml::to_string_pretty(&shown).map_err(|e| ConfigError(format!("cannot show the configuration as TOML: {e}")))
    }

    /// Make every relative path absolute against `base` (the working directory at start-up):
    /// `data_dir`, `plugins.dir`, `auth.policy_model`, `auth.policy_file`, a `file://` blob
    /// URL and a `sqlite:` database URL. Done once, so later uses (the plugin compile cache,
    /// which must be absolute, or a process that changes directory) all see the same paths.
    pub fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &Path| if p.is_absolute() { clean(p) } else { clean(&base.join(p)) };
        self.data_dir = abs(&self.data_dir);
        for path in
            [&mut self.plugins.dir, &mut self.auth.policy_model, &mut self.auth.policy_file].into_iter().flatten()
        {
            *path = abs(path);
        }
        if let Some(url) = &self.blobs.url
            && let Some(path) = url.strip_prefix("file://")
            && !path.is_empty()
        {
            self.blobs.url = Some(format!("file://{}", abs(Path::new(path)).display()));
        }
        if let Some(url) = &self.database_url
            && let Some(rest) = url.expose().strip_prefix("sqlite:")
        {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, query) = match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            };
            if !path.is_empty() && !path.starts_with(":memory:") {
                let mut url = format!("sqlite://{}", abs(Path::new(path)).display());
                if let Some(q) = query {
                    url.push('?');
                    url.push_str(q);
                }
                self.database_url = Some(Secret::new(url));
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=64).contains(&self.jobs.workers) {
            return Err(ConfigError(format!("jobs.workers must be 1..=64, got {}", self.jobs.workers)));
        }
        if !(2..=3600).contains(&self.jobs.lease_seconds) {
            return Err(ConfigError(format!("jobs.lease_seconds must be 2..=3600, got {}", self.jobs.lease_seconds)));
        }
        if !(10..=60_000).contains(&self.jobs.poll_interval_ms) {
            return Err(ConfigError(format!(
                "jobs.poll_interval_ms must be 10..=60000, got {}",
                self.jobs.poll_interval_ms
            )));
        }
        if self.jobs.max_attempts == 0 {
            return Err(ConfigError("jobs.max_attempts must be at least 1".into()));
        }
        if !(1..=10).contains(&self.jobs.provider_attempts) {
            return Err(ConfigError(format!(
                "jobs.provider_attempts must be 1..=10, got {}",
                self.jobs.provider_attempts
            )));
        }
        if !(10..=60_000).contains(&self.jobs.retry_base_delay_ms)
            || self.jobs.retry_max_delay_ms < self.jobs.retry_base_delay_ms
            || self.jobs.retry_max_delay_ms > 3_600_000
        {
            return Err(ConfigError(
                "jobs.retry_base_delay_ms must be 10..=60000 and jobs.retry_max_delay_ms between it and 3600000".into(),
            ));
        }
        for (model, chain) in &self.fallbacks {
            let ok = |m: &str| {
                m.split_once('/').is_some_and(|(p, r)| !p.is_empty() && !r.is_empty())
                    && m.len() <= 200
                    && m.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b))
            };
            if !ok(model) {
                return Err(ConfigError(format!("fallbacks: {model:?} must be a provider/model id")));
            }
            if chain.len() > 8 {
                return Err(ConfigError(format!("fallbacks.{model:?}: at most 8 fallback models")));
            }
            for (i, m) in chain.iter().enumerate() {
                if !ok(m) || m == model {
                    return Err(ConfigError(format!(
                        "fallbacks.{model:?}[{i}]: {m:?} must be a provider/model id other than the model itself"
                    )));
                }
            }
        }
        self.validate_public_url()?;
        self.validate_defaults()?;
        if !(1..=200).contains(&self.database_max_connections) {
            return Err(ConfigError(format!(
                "database_max_connections must be 1..=200, got {}",
                self.database_max_connections
            )));
        }
        if self.limits.max_body_bytes == 0 || self.limits.max_upload_bytes == 0 {
            return Err(ConfigError("limits.max_body_bytes and limits.max_upload_bytes must be at least 1".into()));
        }
        for (i, origin) in self.inputs.allowed_private_origins.iter().enumerate() {
            parse_origin(origin).map_err(|e| ConfigError(format!("inputs.allowed_private_origins[{i}]: {e}")))?;
        }
        self.database_kind()?;
        self.blob_location()?;
        if let Some(endpoint) = &self.blobs.s3_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError(format!("blobs.s3_endpoint {endpoint:?} must start with http:// or https://")));
        }
        if self.blobs.s3_access_key_id.is_some() != self.blobs.s3_secret_access_key.is_some() {
            return Err(ConfigError(
                "blobs.s3_access_key_id and blobs.s3_secret_access_key must be set together".into(),
            ));
        }
        self.validate_auth()
    }

    /// `public_url`: an absolute `http`/`https` URL with a host, an optional path prefix and
    /// nothing else; `[plugins.<id>] callbacks = true` needs it.
    fn validate_public_url(&self) -> Result<(), ConfigError> {
        let Some(raw) = &self.public_url else {
            if let Some((id, _)) = self.plugins.grants.iter().find(|(_, g)| g.callbacks && !g.disabled) {
                return Err(ConfigError(format!(
                    "plugins.{id}.callbacks = true needs public_url: the provider calls back at \
                     {{public_url}}/v1/callbacks/{id}/<generation id>, so set public_url to the address it can reach"
                )));
            }
            return Ok(());
        };
        let bad = |why: &str| {
            ConfigError(format!(
                "public_url {raw:?} {why}: use an http(s) origin with an optional path prefix, e.g. \
                 https://images.example.com or https://example.com/easel"
            ))
        };
        let url = reqwest::Url::parse(raw).map_err(|e| bad(&format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must start with http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("names no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        if raw.is_empty() || raw.ends_with('/') {
            return Err(bad("must not end with /"));
        }
        Ok(())
    }

    /// The host name of `public_url` (lower case, IPv6 without brackets), when set.
    pub fn public_host(&self) -> Option<String> {
        let url = reqwest::Url::parse(self.public_url.as_deref()?).ok()?;
        Some(url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
    }

    /// The base of links handed to clients: `public_url`, or `""` (links relative to the server).
    pub fn link_base(&self) -> &str {
        self.public_url.as_deref().unwrap_or("").trim_end_matches('/')
    }

    /// The model a generation uses when neither the request nor the user's settings name
    /// one: `defaults.model`, else the older `default_model`, else `local/procedural`.
    pub fn default_model(&self) -> &str {
        self.defaults.model.as_deref().or(self.default_model.as_deref()).unwrap_or(BUILTIN_DEFAULT_MODEL)
    }

    /// `[defaults]` and `default_model`: well-formed values (whether the model, style and
    /// archetype exist is known only once plugins load; the server logs a warning then).
    fn validate_defaults(&self) -> Result<(), ConfigError> {
        let d = &self.defaults;
        if let (Some(new), Some(old)) = (&d.model, &self.default_model)
            && new != old
        {
            return Err(ConfigError(format!(
                "defaults.model ({new:?}) and default_model ({old:?}) disagree: default_model is the older name \
                 of defaults.model; keep one"
            )));
        }
        let model_ok = |m: &str| {
            m.split_once('/').is_some_and(|(p, r)| !p.is_empty() && !r.is_empty())
                && m.len() <= 200
                && m.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b))
        };
        for (key, value) in [("defaults.model", &d.model), ("default_model", &self.default_model)] {
            if let Some(m) = value
                && !model_ok(m)
            {
                return Err(ConfigError(format!("{key} must be `provider/model`, got {m:?}")));
            }
        }
        if let Some(ar) = &d.aspect_ratio {
            crate::imaging::Ratio::parse(ar).map_err(|e| ConfigError(format!("defaults.aspect_ratio: {e}")))?;
        }
        if let Some(f) = &d.output_format
            && crate::imaging::Format::parse(f).is_none()
        {
            return Err(ConfigError(format!("defaults.output_format must be png, jpeg or webp, got {f:?}")));
        }
        for (key, value) in [("defaults.style", &d.style), ("defaults.archetype", &d.archetype)] {
            if let Some(id) = value
                && (id.is_empty()
                    || id.len() > 100
                    || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b)))
            {
                return Err(ConfigError(format!(
                    "{key} must be an id such as the ones GET /v1/styles and GET /v1/archetypes list, got {id:?}"
                )));
            }
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        let tier_known = |key: &str, tier: &str| {
            if self.tiers.contains_key(tier) {
                Ok(())
            } else {
                let known: Vec<&str> = self.tiers.keys().map(String::as_str).collect();
                Err(ConfigError(format!("{key}: tier {tier:?} is not defined under [tiers] ({})", known.join(", "))))
            }
        };
        tier_known("auth.default_tier", &auth.default_tier)?;
        for name in ["anonymous", "admin"] {
            tier_known("tiers", name)?;
        }
        if !(60..=31_536_000).contains(&auth.session_ttl_seconds) {
            return Err(ConfigError(format!(
                "auth.session_ttl_seconds must be 60..=31536000, got {}",
                auth.session_ttl_seconds
            )));
        }
        if let Some(secret) = &auth.jwt_secret
            && secret.expose().len() < 32
        {
            return Err(ConfigError("auth.jwt_secret must be at least 32 bytes".into()));
        }
        if auth.login_attempts == 0 {
            return Err(ConfigError("auth.login_attempts must be at least 1".into()));
        }
        for (i, rule) in auth.ip_allowlist.iter().enumerate() {
            parse_cidr(&rule.cidr).map_err(|e| ConfigError(format!("auth.ip_allowlist[{i}].cidr: {e}")))?;
            tier_known(&format!("auth.ip_allowlist[{i}].tier"), &rule.tier)?;
        }
        for (key, list) in
            [("auth.trusted_proxies", &auth.trusted_proxies), ("auth.admin_allowlist", &auth.admin_allowlist)]
        {
            for (i, cidr) in list.iter().enumerate() {
                parse_cidr(cidr).map_err(|e| ConfigError(format!("{key}[{i}]: {e}")))?;
            }
        }
        for (name, tier) in &self.tiers {
            if name.is_empty()
                || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(ConfigError(format!(
                    "tiers.{name}: tier names are lowercase letters, digits, '-' and '_'"
                )));
            }
            for (i, pattern) in tier.allowed_models.iter().enumerate() {
                if pattern.is_empty() || !pattern.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@*".contains(&b))
                {
                    return Err(ConfigError(format!(
                        "tiers.{name}.allowed_models[{i}]: {pattern:?} must be a provider/model pattern such as local/* or *"
                    )));
                }
            }
            if let Some(parent) = &tier.inherits {
                tier_known(&format!("tiers.{name}.inherits"), parent)?;
            }
            for (key, rate) in [
                ("requests_per_minute", tier.requests_per_minute),
                ("requests_per_hour", tier.requests_per_hour),
                ("generations_per_minute", tier.generations_per_minute),
            ] {
                if rate == Some(0) {
                    return Err(ConfigError(format!(
                        "tiers.{name}.{key} must be at least 1; leave it out for no limit (the policy decides \
                         which routes a tier may call)"
                    )));
                }
            }
            if tier.credits_refill.is_some() && tier.credits_per_image.is_none() {
                return Err(ConfigError(format!("tiers.{name}.credits_refill needs tiers.{name}.credits_per_image")));
            }
        }
        Ok(())
    }

    /// The database URL to open: `database_url`, or `sqlite://<data_dir>/easel.db`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_string(),
            None => format!("sqlite://{}", self.data_dir.join("easel.db").display()),
        }
    }

    /// Which database the URL selects; an error names the scheme (never the credentials).
    pub fn database_kind(&self) -> Result<DatabaseKind, ConfigError> {
        let url = self.database_url();
        if url.starts_with("sqlite:") {
            Ok(DatabaseKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseKind::Postgres)
        } else {
            Err(ConfigError(format!(
                "database_url {:?}: use sqlite://path or postgres://user:password@host:port/database",
                Redacted(&url)
            )))
        }
    }

    /// Where blobs live: from `blobs.url` (`file://…` or `s3://bucket/prefix`), default
    /// `<data_dir>/blobs`.
    pub fn blob_location(&self) -> Result<BlobLocation, ConfigError> {
        let Some(url) = &self.blobs.url else { return Ok(BlobLocation::Dir(self.data_dir.join("blobs"))) };
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(ConfigError("blobs.url \"file://\" names no directory".into()));
            }
            return Ok(BlobLocation::Dir(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
            if !bucket_ok {
                return Err(ConfigError(format!(
                    "blobs.url {url:?}: the bucket name must be 3 to 63 lowercase letters, digits, '-' or '.'"
                )));
            }
            return Ok(BlobLocation::S3 { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() });
        }
        Err(ConfigError(format!("blobs.url {url:?}: use file://directory or s3://bucket/prefix")))
    }

    /// Directory scanned for extra plugins.
    pub fn plugins_dir(&self) -> PathBuf {
        self.plugins.dir.clone().unwrap_or_else(|| self.data_dir.join("plugins"))
    }
}

/// Variables the `easel` command reads itself, never configuration keys: not reported as ignored.
const CLIENT_VARIABLES: [&str; 3] = ["config", "api_key", "url"];

/// The names of the configuration's top-level keys (`listen`, `jobs`, `tiers`, …).
fn top_level_keys() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().map(|(k, _)| k).collect(),
        _ => Vec::new(),
    }
}

/// The first part of an environment key after `EASEL_`, lowercased: `jobs` for
/// `EASEL_JOBS__WORKERS`, `listen` for `EASEL_LISTEN`.
fn first_segment(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    let end = [key.find('.'), key.find("__")].into_iter().flatten().min().unwrap_or(key.len());
    key[..end].to_string()
}

/// Of these environment variable names, the `EASEL_*` ones that name no configuration key,
/// leaving out those the command-line client reads and those Kubernetes injects for a
/// Service named `easel` (`EASEL_PORT*`, `EASEL_SERVICE_*`).
pub fn ignored_env_vars(names: impl IntoIterator<Item = String>) -> Vec<String> {
    ignored(&top_level_keys(), names)
}

/// [`ignored_env_vars`] against these top-level keys.
fn ignored(known: &[String], names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ignored: Vec<String> = names
        .into_iter()
        .filter(|name| {
            let Some(rest) = name.get(..6).filter(|p| p.eq_ignore_ascii_case("easel_")).map(|_| &name[6..]) else {
                return false;
            };
            let first = first_segment(rest);
            let lower = rest.to_ascii_lowercase();
            !known.contains(&first)
                && !CLIENT_VARIABLES.contains(&lower.as_str())
                && !lower.starts_with("port")
                && !lower.starts_with("service_")
        })
        .collect();
    ignored.sort();
    ignored
}

/// `path` without `.` components and with `..` folded where it can be (no file-system
/// access, so symbolic links are left as they are).
fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Parse `addr` or `addr/prefix` (IPv4 or IPv6) into the network's address and prefix length.
/// casbin's `ipMatch` panics on what it cannot parse, so every CIDR is checked here first.
pub fn parse_cidr(cidr: &str) -> Result<(std::net::IpAddr, u8), String> {
    let (addr, prefix) = match cidr.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (cidr, None),
    };
    let addr: std::net::IpAddr = addr.parse().map_err(|_| format!("{cidr:?} is not an IP address or CIDR"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{cidr:?}: the prefix length must be 0 to {max}"))?,
    };
    Ok((addr, prefix))
}

/// `scheme://user:password@host/…` with the password replaced by `[redacted]` (and any
/// `password=` query parameter too); other URLs unchanged.
fn without_password(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => {
            // The last `@` before the query ends the user information: a password that was not
            // percent-encoded may hold `/`, `:` or `@` itself.
            let query = rest.find('?').unwrap_or(rest.len());
            match rest[..query].rfind('@') {
                Some(at) => {
                    let (userinfo, host_and_tail) = (&rest[..at], &rest[at + 1..]);
                    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
                    let hidden = if userinfo.contains(':') { ":[redacted]" } else { "" };
                    format!("{scheme}://{user}{hidden}@{host_and_tail}")
                }
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    };
    if let Some((base, query)) = out.split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{base}?{}", query.join("&"));
    }
    out
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
// `figment::Jail` closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.default_model(), "local/procedural");
        assert_eq!(c.public_url, None);
        assert!(c.strict_parameters);
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
        for (toml, key) in [
            ("[jobs]\npoll_interval_ms = 0\n", "jobs.poll_interval_ms"),
            ("[jobs]\nlease_seconds = 99999999999\n", "jobs.lease_seconds"),
            ("[tiers.free]\nrequests_per_minute = 0\n", "tiers.free.requests_per_minute must be at least 1"),
            ("[tiers.pro]\ngenerations_per_minute = 0\n", "tiers.pro.generations_per_minute must be at least 1"),
        ] {
            std::fs::write(&file, toml).unwrap();
            let err = Config::load(Some(&file), &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        assert!(Config::load(Some(&dir.path().join("missing.toml")), &Overrides::default()).is_err());
    }

    #[test]
    fn public_url_is_optional_and_checked_when_set() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("easel.toml");
        let load = |toml: &str| {
            std::fs::write(&file, toml).unwrap();
            Config::load(Some(&file), &Overrides::default())
        };
        let c = load("").unwrap();
        assert_eq!((c.public_url.as_deref(), c.link_base(), c.public_host()), (None, "", None));
        let c = load("public_url = \"https://Images.Example.com/easel/\"\n").unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://Images.Example.com/easel"), "a trailing / is dropped");
        assert_eq!(c.link_base(), "https://Images.Example.com/easel");
        assert_eq!(c.public_host().as_deref(), Some("images.example.com"));
        assert_eq!(load("public_url = \"\"\n").unwrap().public_url, None, "empty means unset");
        let c = load("public_url = \"http://[::1]:8080\"\n").unwrap();
        assert_eq!(c.public_host().as_deref(), Some("::1"));
        for bad in [
            "ftp://example.com",
            "example.com",
            "https://",
            "https://user:pw@example.com",
            "https://example.com/?a=b",
            "https://example.com/#top",
        ] {
            let err = load(&format!("public_url = {bad:?}\n")).unwrap_err().to_string();
            assert!(err.contains("public_url"), "{bad}: {err}");
        }
    }

    #[test]
    fn private_input_origins_are_exact_origins() {
        let mut c = Config::default();
        assert!(c.inputs.private_origins().is_empty());
        c.inputs.allowed_private_origins =
            vec!["http://assets.internal:8000".into(), "https://Images.LAN/".into(), "http://[fd00::1]".into()];
        c.validate().unwrap();
        assert_eq!(
            c.inputs.private_origins(),
            ["http://assets.internal:8000", "https://images.lan:443", "http://[fd00::1]:80"]
        );
        for bad in [
            "assets.internal:8000",
            "ftp://assets.internal",
            "http://assets.internal:8000/images",
            "http://*.internal",
            "http://user:pw@assets.internal",
            "http://assets.internal?x=1",
            "http://",
        ] {
            c.inputs.allowed_private_origins = vec!["http://ok.internal".into(), bad.into()];
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("inputs.allowed_private_origins[1]"), "{bad}: {err}");
        }
    }

    #[test]
    fn public_url_and_defaults_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("EASEL_PUBLIC_URL", "");
            jail.set_env("EASEL_DEFAULTS__ASPECT_RATIO", "16:9");
            jail.set_env("EASEL_STRICT_PARAMETERS", "false");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.public_url, None, "an empty EASEL_PUBLIC_URL (a compose default) is unset");
            assert_eq!(c.defaults.aspect_ratio.as_deref(), Some("16:9"));
            assert!(!c.strict_parameters);
            jail.set_env("EASEL_PUBLIC_URL", "https://images.example.com/");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.public_url.as_deref(), Some("https://images.example.com"));
            Ok(())
        });
    }

    #[test]
    fn callbacks_need_a_public_url() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("easel.toml");
        std::fs::write(&file, "[plugins.fal]\ncallbacks = true\n").unwrap();
        let err = Config::load(Some(&file), &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("plugins.fal.callbacks") && err.contains("public_url"), "{err}");
        std::fs::write(&file, "public_url = \"https://easel.example.com\"\n[plugins.fal]\ncallbacks = true\n").unwrap();
        Config::load(Some(&file), &Overrides::default()).unwrap();
        // A disabled plugin is never called back.
        std::fs::write(&file, "[plugins.fal]\ncallbacks = true\ndisabled = true\n").unwrap();
        Config::load(Some(&file), &Overrides::default()).unwrap();
    }

    #[test]
    fn defaults_and_the_older_default_model() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("easel.toml");
        let load = |toml: &str| {
            std::fs::write(&file, toml).unwrap();
            Config::load(Some(&file), &Overrides::default())
        };
        assert_eq!(load("default_model = \"fal/fal-ai/flux/dev\"\n").unwrap().default_model(), "fal/fal-ai/flux/dev");
        let c = load("[defaults]\nmodel = \"gemini/x\"\naspect_ratio = \"16:9\"\noutput_format = \"webp\"\nstyle = \"anime\"\narchetype = \"icon\"\n").unwrap();
        assert_eq!(c.default_model(), "gemini/x");
        assert_eq!(c.defaults.aspect_ratio.as_deref(), Some("16:9"));
        load("default_model = \"gemini/x\"\n[defaults]\nmodel = \"gemini/x\"\n").unwrap();
        let err =
            load("default_model = \"local/procedural\"\n[defaults]\nmodel = \"gemini/x\"\n").unwrap_err().to_string();
        assert!(err.contains("defaults.model") && err.contains("default_model"), "{err}");
        for (toml, key) in [
            ("default_model = \"procedural\"\n", "default_model"),
            ("[defaults]\nmodel = \"x\"\n", "defaults.model"),
            ("[defaults]\naspect_ratio = \"wide\"\n", "defaults.aspect_ratio"),
            ("[defaults]\naspect_ratio = \"100:1\"\n", "defaults.aspect_ratio"),
            ("[defaults]\noutput_format = \"gif\"\n", "defaults.output_format"),
            ("[defaults]\nstyle = \"\"\n", "defaults.style"),
            ("[defaults]\narchetype = \"a b\"\n", "defaults.archetype"),
            ("[defaults]\nquality = \"high\"\n", "quality"),
        ] {
            let err = load(toml).unwrap_err().to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
        assert!(!load("strict_parameters = false\n").unwrap().strict_parameters);
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
        let c = Config { database_url: Some(Secret::new("postgres://u:hunter2@db/e")), ..Config::default() };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.database_kind().unwrap(), DatabaseKind::Postgres);
        let bad = Config { database_url: Some(Secret::new("mysql://u:hunter2@db/e")), ..Config::default() };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("database_url") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn all_digit_secrets_from_the_environment_are_kept_as_text() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("EASEL_BLOBS__S3_ACCESS_KEY_ID", "12345678");
            jail.set_env("EASEL_BLOBS__S3_SECRET_ACCESS_KEY", "true");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.blobs.s3_access_key_id.unwrap().expose(), "12345678");
            assert_eq!(c.blobs.s3_secret_access_key.unwrap().expose(), "true");
            Ok(())
        });
    }

    #[test]
    fn relative_paths_are_resolved_once_against_the_working_directory() {
        let mut c = Config { database_url: Some(Secret::new("sqlite:./db/../easel.db?mode=rwc")), ..Config::default() };
        c.plugins.dir = Some("extra/plugins".into());
        c.auth.policy_file = Some("./policy.csv".into());
        c.auth.policy_model = Some("/etc/easel/model.conf".into());
        c.blobs.url = Some("file://./easel-data/blobs".into());
        c.resolve_paths(Path::new("/srv/easel"));
        assert_eq!(c.data_dir, PathBuf::from("/srv/easel/easel-data"));
        assert_eq!(c.plugins_dir(), PathBuf::from("/srv/easel/extra/plugins"));
        assert_eq!(c.auth.policy_file, Some(PathBuf::from("/srv/easel/policy.csv")));
        assert_eq!(c.auth.policy_model, Some(PathBuf::from("/etc/easel/model.conf")));
        assert_eq!(c.blob_location().unwrap(), BlobLocation::Dir(PathBuf::from("/srv/easel/easel-data/blobs")));
        assert_eq!(c.database_url(), "sqlite:///srv/easel/easel.db?mode=rwc");
        // Without a database URL, the default follows the resolved data directory.
        let mut d = Config::default();
        d.resolve_paths(Path::new("/srv/easel"));
        assert_eq!(d.database_url(), "sqlite:///srv/easel/easel-data/easel.db");
        // In-memory SQLite and PostgreSQL URLs are left alone.
        for url in ["sqlite::memory:", "postgres://u:p@db/easel"] {
            let mut e = Config { database_url: Some(Secret::new(url)), ..Config::default() };
            e.resolve_paths(Path::new("/srv/easel"));
            assert_eq!(e.database_url(), url);
        }
    }

    #[test]
    fn load_resolves_the_default_data_dir() {
        // In a jail: it owns the working directory while the test runs.
        figment::Jail::expect_with(|_| {
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert!(c.data_dir.is_absolute(), "{}", c.data_dir.display());
            assert_eq!(c.data_dir, std::env::current_dir().unwrap().join("easel-data"));
            Ok(())
        });
    }

    #[test]
    fn unknown_environment_variables_are_ignored_and_reported() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("EASEL_API_KEY", "esk_client");
            jail.set_env("EASEL_URL", "http://127.0.0.1:8080");
            jail.set_env("EASEL_SOMETHING_ELSE", "1");
            jail.set_env("EASEL_JOBS__WORKERS", "3");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.jobs.workers, 3);
            assert!(c.ignored_env.contains(&"EASEL_SOMETHING_ELSE".to_string()), "{:?}", c.ignored_env);
            assert!(!c.ignored_env.iter().any(|v| v == "EASEL_API_KEY" || v == "EASEL_URL" || v.contains("JOBS")));
            // A wrong key inside a known section is still an error naming it.
            jail.set_env("EASEL_JOBS__WORKRES", "3");
            let err = Config::load(None, &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains("workres"), "{err}");
            Ok(())
        });
        let ignored = ignored_env_vars(
            ["EASEL_LISTEN", "EASEL_PORT_8080_TCP", "EASEL_SERVICE_HOST", "EASEL_CONFIG", "easel_nope", "HOME"]
                .map(String::from),
        );
        assert_eq!(ignored, vec!["easel_nope".to_string()]);
    }

    #[test]
    fn the_effective_configuration_is_shown_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("easel.toml");
        std::fs::write(
            &file,
            "database_url = \"postgres://easel:hunter2@db:5432/easel?sslmode=require&password=hunter3\"\n\
             [auth]\njwt_secret = \"0123456789abcdef0123456789abcdef-hunter4\"\n\
             [blobs]\nurl = \"s3://bucket\"\ns3_access_key_id = \"AKIAHUNTER5\"\ns3_secret_access_key = \"hunter6\"\n\
             [plugins.gemini]\nsecrets = { GEMINI_API_KEY = \"hunter7\" }\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), &Overrides::default()).unwrap();
        let shown = c.redacted_toml().unwrap();
        for secret in ["hunter2", "hunter3", "hunter4", "HUNTER5", "hunter6", "hunter7"] {
            assert!(!shown.contains(secret), "{secret} shown in:\n{shown}");
        }
        assert!(
            shown.contains("postgres://easel:[redacted]@db:5432/easel?sslmode=require&password=[redacted]"),
            "{shown}"
        );
        assert!(shown.contains("GEMINI_API_KEY = \"[redacted]\""), "{shown}");
        for (url, expect) in [
            ("postgres://u:pa/ss@db/easel", "postgres://u:[redacted]@db/easel"),
            (
                "postgres://u:p@ss:w/rd@db:5432/easel?sslmode=require",
                "postgres://u:[redacted]@db:5432/easel?sslmode=require",
            ),
            ("postgres://db/easel", "postgres://db/easel"),
            ("sqlite:///data/easel.db", "sqlite:///data/easel.db"),
        ] {
            assert_eq!(without_password(url), expect);
        }
        // What is shown is itself a valid configuration file with the same settings.
        let again = dir.path().join("again.toml");
        // (Less the JWT secret, whose placeholder is shorter than a valid one.)
        let loadable: String =
            shown.lines().filter(|l| !l.starts_with("jwt_secret")).map(|l| format!("{l}\n")).collect();
        std::fs::write(&again, loadable).unwrap();
        let reloaded = Config::load(Some(&again), &Overrides::default()).unwrap();
        assert_eq!(reloaded.tiers, c.tiers);
        assert_eq!(reloaded.listen, c.listen);
        assert_eq!(reloaded.data_dir, c.data_dir);
    }

    #[test]
    fn blob_locations() {
        let mut c = Config::default();
        assert_eq!(c.blob_location().unwrap(), BlobLocation::Dir(PathBuf::from("./easel-data/blobs")));
        c.blobs.url = Some("s3://easel-images/prod/".into());
        assert_eq!(
            c.blob_location().unwrap(),
            BlobLocation::S3 { bucket: "easel-images".into(), prefix: "prod".into() }
        );
        c.blobs.url = Some("s3://Bad_Bucket".into());
        assert!(c.validate().unwrap_err().to_string().contains("blobs.url"));
        c.blobs.url = Some("ftp://x".into());
        assert!(c.validate().is_err());
        c.blobs.url = Some("s3://ok-bucket".into());
        c.blobs.s3_access_key_id = Some(Secret::new("id"));
        assert!(c.validate().unwrap_err().to_string().contains("together"));
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
        assert_eq!(config.limits.max_body_bytes, defaults.limits.max_body_bytes);
        assert_eq!(config.limits.max_upload_bytes, defaults.limits.max_upload_bytes);
        assert_eq!(config.inputs.allowed_private_origins, defaults.inputs.allowed_private_origins);
        assert!(config.plugins.grants.contains_key("local"));
        // What the example documents is what a fresh server does.
        assert_eq!(config.tiers, defaults.tiers);
        assert_eq!(config.jobs.provider_attempts, defaults.jobs.provider_attempts);
        assert_eq!(config.public_url, defaults.public_url);
        assert_eq!(config.strict_parameters, defaults.strict_parameters);
        assert_eq!(config.default_model(), defaults.default_model());
        assert_eq!(
            DefaultsConfig { model: None, ..config.defaults.clone() },
            defaults.defaults,
            "[defaults] shows only the default model"
        );
        for id in ["gemini", "openai", "fal", "replicate"] {
            assert_eq!(
                config.plugins.grants[id].allowed_outbound_hosts, defaults.plugins.grants[id].allowed_outbound_hosts,
                "[plugins.{id}]"
            );
        }
    }
}
