//! Plugin author tooling behind `easel plugin new` and `easel plugin check`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::config::PluginsConfig;
use crate::plugins::manifest::{Manifest, PluginKind};
use crate::plugins::runtime::Runtime;
use crate::plugins::{Described, Registry, Source};

macro_rules! template {
    ($kind:literal) => {
        [
            ("Cargo.toml", include_str!(concat!("../../plugin-sdk/templates/", $kind, "/Cargo.toml.tmpl"))),
            ("src/lib.rs", include_str!(concat!("../../plugin-sdk/templates/", $kind, "/src/lib.rs.tmpl"))),
            ("plugin.toml", include_str!(concat!("../../plugin-sdk/templates/", $kind, "/plugin.toml.tmpl"))),
            ("README.md", include_str!(concat!("../../plugin-sdk/templates/", $kind, "/README.md.tmpl"))),
            (".gitignore", include_str!("../../plugin-sdk/templates/gitignore.tmpl")),
            (".cargo/config.toml", include_str!("../../plugin-sdk/templates/cargo-config.toml.tmpl")),
        ]
    };
}

/// The SDK dependency line for new plugins: a path to the SDK this binary was built from when
/// it is still there, else the published crate.
pub fn default_sdk_dependency() -> String {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    match sdk.canonicalize() {
        Ok(path) if path.join("Cargo.toml").is_file() => {
            format!("easel-plugin-sdk = {{ path = {:?} }}", path.display().to_string())
        }
        _ => format!("easel-plugin-sdk = \"{}\"", env!("CARGO_PKG_VERSION")),
    }
}

/// Write a new stand-alone plugin crate of `kind` named `name` into `parent/<name>`.
pub fn plugin_new(kind: PluginKind, name: &str, parent: &Path, sdk_dependency: &str) -> anyhow::Result<PathBuf> {
    let id_ok = (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    anyhow::ensure!(id_ok, "the name {name:?} must be 1-40 characters of a-z, 0-9 and '-', starting with a letter");
    let dir = parent.join(name);
    anyhow::ensure!(!dir.exists(), "{} already exists", dir.display());
    let files = match kind {
        PluginKind::Provider => template!("provider"),
        PluginKind::StylePack => template!("style-pack"),
        PluginKind::Cropper => template!("cropper"),
        PluginKind::Filter => template!("filter"),
    };
    let crate_name = name.replace('-', "_");
    let display: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    for (path, text) in files {
        let text = text
            .replace("{{id}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{name}}", &display)
            .replace("{{sdk_dependency}}", sdk_dependency);
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("files live in the plugin folder"))?;
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(dir)
}

/// What `easel plugin check` found.
#[derive(Debug)]
pub struct CheckReport {
    /// The plugin's id.
    pub id: String,
    /// Its kind.
    pub kind: PluginKind,
    /// The component that was checked.
    pub wasm: PathBuf,
    /// One line per model, template, archetype or filter.
    pub offers: Vec<String>,
    /// Outbound hosts and secrets it asks for (the operator must grant them).
    pub asks: Vec<String>,
}

/// Validate a plugin folder (or a crate folder after `cargo build --release --target
/// wasm32-wasip2`): manifest, ABI version, exports for its kind, and its self-description.
pub fn plugin_check(dir: &Path) -> anyhow::Result<CheckReport> {
    let manifest_path = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("no readable plugin.toml in {}", dir.display()))?;
    let manifest = Manifest::parse(&text)?;
    let candidates = [dir.join(&manifest.wasm), dir.join("target/wasm32-wasip2/release").join(&manifest.wasm)];
    let wasm_path = candidates.iter().find(|p| p.is_file()).cloned().with_context(|| {
        format!(
            "{} not found beside plugin.toml or in target/wasm32-wasip2/release; build it with \
             `cargo build --release --target wasm32-wasip2`",
            manifest.wasm
        )
    })?;
    let wasm = std::fs::read(&wasm_path)?;
    let runtime = Runtime::new(None)?;
    let empty = tempfile::tempdir()?;
    let registry: Arc<Registry> = Registry::load(
        runtime,
        PluginsConfig { bundled: false, compile_cache: false, watch: false, ..PluginsConfig::default() },
        empty.path().to_path_buf(),
    );
    let plugin = registry.load_one(&text, &wasm, Source::Directory(dir.to_path_buf()))?;
    let offers = match &plugin.described {
        Described::Provider(info) => {
            info.models.iter().map(|m| format!("model {}/{}: {}", manifest.id, m.id, m.name)).collect()
        }
        Described::StylePack(ts) => ts.iter().map(|t| format!("style {} ({}): {}", t.id, t.category, t.name)).collect(),
        Described::Cropper(xs) => xs.iter().map(|a| format!("archetype {}: {}", a.id, a.name)).collect(),
        Described::Filter(fs) => fs.iter().map(|f| format!("filter {}: {}", f.id, f.name)).collect(),
    };
    let mut asks: Vec<String> =
        manifest.permissions.allowed_outbound_hosts.iter().map(|h| format!("outbound host {h}")).collect();
    asks.extend(manifest.permissions.secrets.iter().map(|s| format!("secret {s}")));
    Ok(CheckReport { id: manifest.id.clone(), kind: manifest.kind, wasm: wasm_path, offers, asks })
}
