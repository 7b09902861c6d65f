//! The casbin policy: tier × route template × method, and tier × model.
//!
//! The model and policy come from `<data_dir>/policy/{model.conf,policy.csv}` (or
//! `auth.policy_model` / `auth.policy_file`) when present, else from the embedded defaults;
//! every tier's `allowed_models` adds `p, <tier>, /models/<pattern>, use`. A change to those
//! files builds a new enforcer and swaps it in; a policy that does not load leaves the old one
//! in force (and says why in the log).
//!
//! casbin evaluates its matcher (and compiles `keyMatch3`'s regular expressions) on every
//! call, so answers are memoized per policy: requests are keyed by route *template*, not by
//! path, which keeps the memo small and every hot answer a hash lookup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use casbin::{CoreApi, DefaultModel, Enforcer, StringAdapter};

use crate::config::Config;

/// The embedded casbin model.
pub const DEFAULT_MODEL: &str = include_str!("model.conf");
/// The embedded casbin policy.
pub const DEFAULT_POLICY: &str = include_str!("policy.csv");

/// One loaded policy with its memo.
pub struct Policy {
    enforcer: Enforcer,
    memo: RwLock<HashMap<(String, String, String), bool>>,
    /// Where the model and policy came from, for logs.
    pub source: String,
}

impl Policy {
    /// Build the enforcer from `config`'s files (or the embedded defaults) plus the tiers'
    /// allowed models.
    pub async fn load(config: &Config) -> anyhow::Result<Self> {
        let (model_path, policy_path) = paths(config);
        let (model_text, model_source) = read_or(&model_path, DEFAULT_MODEL)?;
        let (mut policy_text, policy_source) = read_or(&policy_path, DEFAULT_POLICY)?;
        policy_text.push('\n');
        for (tier, t) in &config.tiers {
            if let Some(parent) = &t.inherits {
                policy_text.push_str(&format!("g, {tier}, {parent}\n"));
            }
            for pattern in &t.allowed_models {
                let object = if pattern == "*" { "/models/*".to_string() } else { format!("/models/{pattern}") };
                policy_text.push_str(&format!("p, {tier}, {object}, use\n"));
            }
        }
        let model =
            DefaultModel::from_str(&model_text).await.with_context(|| format!("casbin model {model_source}"))?;
        let enforcer = Enforcer::new(model, StringAdapter::new(policy_text))
            .await
            .with_context(|| format!("casbin policy {policy_source}"))?;
        check_patterns(&enforcer).with_context(|| format!("casbin policy {policy_source}"))?;
        Ok(Self { enforcer, memo: RwLock::default(), source: format!("model {model_source}, policy {policy_source}") })
    }

    /// May `tier` do `act` on `obj`? Errors in the policy's evaluation deny.
    pub fn allows(&self, tier: &str, obj: &str, act: &str) -> bool {
        if let Some(&answer) = self.memo.read().unwrap_or_else(|e| e.into_inner()).get(&(
            tier.to_string(),
            obj.to_string(),
            act.to_string(),
        )) {
            return answer;
        }
        // casbin panics on a pattern it cannot compile; patterns are checked at load, and a
        // panic that slips through still only denies.
        let evaluated =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.enforcer.enforce((tier, obj, act))));
        let answer = match evaluated {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, tier, obj, act, "casbin could not evaluate the policy; denying");
                false
            }
            Err(_) => {
                tracing::error!(tier, obj, act, "casbin panicked evaluating the policy; denying");
                false
            }
        };
        // Only short keys are remembered, so clients cannot grow the memo with long strings.
        if tier.len() + obj.len() + act.len() > 256 {
            return answer;
        }
        let mut memo = self.memo.write().unwrap_or_else(|e| e.into_inner());
        if memo.len() > 100_000 {
            memo.clear();
        }
        memo.insert((tier.to_string(), obj.to_string(), act.to_string()), answer);
        answer
    }

    /// May `tier` use `model` (`provider/model`)?
    pub fn allows_model(&self, tier: &str, model: &str) -> bool {
        self.allows(tier, &format!("/models/{model}"), "use")
    }
}

/// Every `p` rule's object and action must compile as casbin will compile them at request
/// time (`keyMatch3` and `regexMatch`), so a bad pattern is refused at load, not on a request.
fn check_patterns(enforcer: &Enforcer) -> anyhow::Result<()> {
    use casbin::MgmtApi;
    let params = regex::Regex::new(r"\{[^/]+\}").expect("a valid regex");
    for rule in enforcer.get_policy() {
        let (Some(obj), Some(act)) = (rule.get(1), rule.get(2)) else { continue };
        let obj_regex = format!("^{}$", params.replace_all(&obj.replace("/*", "/.*"), "[^/]+"));
        regex::Regex::new(&obj_regex)
            .with_context(|| format!("rule {rule:?}: the object {obj:?} is not a valid pattern"))?;
        regex::Regex::new(act).with_context(|| format!("rule {rule:?}: the action {act:?} is not a valid regex"))?;
    }
    Ok(())
}

/// The model and policy files in effect (they may not exist: then the embedded ones apply).
fn paths(config: &Config) -> (PathBuf, PathBuf) {
    let dir = policy_dir(config);
    (
        config.auth.policy_model.clone().unwrap_or_else(|| dir.join("model.conf")),
        config.auth.policy_file.clone().unwrap_or_else(|| dir.join("policy.csv")),
    )
}

/// `<data_dir>/policy`: where an operator drops a policy to override the embedded one.
pub fn policy_dir(config: &Config) -> PathBuf {
    config.data_dir.join("policy")
}

fn read_or(path: &Path, default: &str) -> anyhow::Result<(String, String)> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, path.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((default.to_string(), "(embedded)".into())),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The policy in force, swapped whole when its files change.
pub struct Policies {
    current: ArcSwap<Policy>,
    watcher: std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Policies {
    /// Load the policy; a broken policy at start-up is an error (the server does not start).
    pub async fn load(config: &Config) -> anyhow::Result<Arc<Self>> {
        let policy = Policy::load(config).await?;
        tracing::info!(source = %policy.source, "authorization policy loaded");
        Ok(Arc::new(Self { current: ArcSwap::from_pointee(policy), watcher: Default::default() }))
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Load again from the files and swap; on error the old policy stays.
    pub async fn reload(&self, config: &Config) -> anyhow::Result<()> {
        let policy = Policy::load(config).await?;
        tracing::info!(source = %policy.source, "authorization policy reloaded");
        self.current.store(Arc::new(policy));
        Ok(())
    }

    /// Reload when the policy files change (debounced). Watches the folders that hold them.
    pub fn watch(self: &Arc<Self>, config: Arc<Config>) -> anyhow::Result<()> {
        use notify_debouncer_mini::notify::{self, RecursiveMode, Watcher};
        let (model, policy) = paths(&config);
        std::fs::create_dir_all(policy_dir(&config)).ok();
        let files = [model.clone(), policy.clone()];
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res
                && !event.kind.is_access()
                && event.paths.iter().any(|p| files.iter().any(|f| p.file_name() == f.file_name()))
            {
                let _ = tx.send(());
            }
        })?;
        let mut dirs: Vec<PathBuf> =
            [&model, &policy].iter().filter_map(|p| p.parent().map(Path::to_path_buf)).collect();
        dirs.dedup();
        for dir in &dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive).with_context(|| format!("watching {}", dir.display()))?;
        }
        let weak = Arc::downgrade(self);
        let handle = tokio::runtime::Handle::current();
        std::thread::Builder::new().name("easel-policy-watch".into()).spawn(move || {
            while rx.recv().is_ok() {
                while rx.recv_timeout(Duration::from_millis(150)).is_ok() {}
                let Some(policies) = weak.upgrade() else { return };
                if let Err(e) = handle.block_on(policies.reload(&config)) {
                    tracing::error!(error = %format!("{e:#}"), "the changed policy does not load; the previous one stays in force");
                }
            }
        })?;
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(watcher));
        Ok(())
    }
}

/// Route templates of the API (from its OpenAPI spec, plus the few routes outside it), to
/// name the object of a request: `/v1/generations/gen_01…/cancel` → `/v1/generations/{id}/cancel`.
pub struct Routes {
    templates: Vec<Vec<String>>,
}

impl Routes {
    /// The templates of `spec` (an OpenAPI document) and `extra`.
    pub fn from_spec(spec: &str, extra: &[&str]) -> Self {
        let doc: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let mut templates: Vec<Vec<String>> =
            doc["paths"].as_object().map(|paths| paths.keys().map(|k| split(k)).collect()).unwrap_or_default();
        templates.extend(extra.iter().map(|t| split(t)));
        // Literal segments win over `{param}` ones (`/v1/images/download` before `/v1/images/{id}`).
        templates.sort_by_key(|t| t.iter().filter(|s| s.starts_with('{')).count());
        Self { templates }
    }

    /// The template `path` matches, or None for a path outside the API.
    pub fn template(&self, path: &str) -> Option<String> {
        let segments = split(path);
        self.templates
            .iter()
            .find(|t| t.len() == segments.len() && t.iter().zip(&segments).all(|(t, s)| t.starts_with('{') || t == s))
            .map(|t| format!("/{}", t.join("/")))
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn default_policy_grants_by_tier() {
        let config = Config { data_dir: tempfile::tempdir().unwrap().keep(), ..Config::default() };
        let p = Policy::load(&config).await.unwrap();
        assert!(p.allows("anonymous", "/v1/models", "GET"));
        assert!(!p.allows("anonymous", "/v1/generations", "POST"));
        assert!(p.allows("free", "/v1/generations", "POST"));
        assert!(p.allows("free", "/v1/generations/{id}/cancel", "POST"));
        assert!(!p.allows("free", "/v1/admin/users", "GET"));
        assert!(p.allows("pro", "/v1/keys/{id}", "DELETE"));
        assert!(p.allows("admin", "/v1/admin/users/{id}", "PATCH"));
        assert!(p.allows_model("free", "local/procedural"));
        assert!(p.allows_model("free", "gemini/gemini-3.1-flash-image"));
        assert!(!p.allows_model("free", "openai/gpt-image-1"));
        assert!(p.allows_model("pro", "openai/gpt-image-1"));
        assert!(p.allows_model("pro", "fal/fal-ai/flux/schnell"));
        assert!(p.allows_model("local", "openai/gpt-image-1"));
        assert!(!p.allows("local", "/v1/admin/users", "GET"));
        assert!(!p.allows("nobody", "/health", "GET"));
        // Memoized answers are the same answers.
        assert!(!p.allows_model("free", "openai/gpt-image-1"));
    }

    #[tokio::test]
    async fn a_policy_with_a_bad_pattern_does_not_load() {
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::create_dir_all(dir.join("policy")).unwrap();
        std::fs::write(dir.join("policy/policy.csv"), "p, free, /v1/(broken, GET\n").unwrap();
        let config = Config { data_dir: dir, ..Config::default() };
        let err = Policy::load(&config).await.err().expect("refused");
        assert!(format!("{err:#}").contains("not a valid pattern"), "{err:#}");
    }

    #[test]
    fn routes_resolve_to_templates() {
        let spec =
            r#"{"paths": {"/v1/images/{id}": {}, "/v1/images/download": {}, "/v1/generations/{id}/cancel": {}}}"#;
        let routes = Routes::from_spec(spec, &["/metrics"]);
        assert_eq!(routes.template("/v1/images/img_1").as_deref(), Some("/v1/images/{id}"));
        assert_eq!(routes.template("/v1/images/download").as_deref(), Some("/v1/images/download"));
        assert_eq!(routes.template("/v1/generations/gen_1/cancel").as_deref(), Some("/v1/generations/{id}/cancel"));
        assert_eq!(routes.template("/metrics").as_deref(), Some("/metrics"));
        assert_eq!(routes.template("/v1/nothing"), None);
    }
}
