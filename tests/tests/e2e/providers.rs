//! Remote provider plugins (the bundled `gemini`, `openai`, `fal` and `replicate`) against
//! local fixture servers that replay the providers' documented wire formats
//! (`tests/support/providers`, after `shared/PROVIDERS.md`): results stored, retries with
//! backoff, fallbacks, cancel propagation, keys kept out of logs and records, and image URLs
//! fetched under the plugin's rules (SSRF attempts refused).

use std::time::{Duration, Instant};

use easel::config::{Config, Secret};
use serde_json::{Value, json};

use super::{TestServer, captured_logs};

/// Grant `plugin` the fixture at `base_url` (loopback, so private addresses are allowed for
/// it alone), with `key` as the operator's secret `secret_name`, quick polls and retries.
pub fn point_at(config: &mut Config, plugin: &str, base_url: &str, secret_name: &str, key: Option<&str>) {
    let grant = config.plugins.grants.entry(plugin.to_string()).or_default();
    grant.allowed_outbound_hosts = vec![base_url.trim_end_matches('/').to_string()];
    grant.allow_private_ips = true;
    grant.config.insert("base_url".into(), base_url.to_string());
    grant.config.insert("poll_interval_ms".into(), "20".into());
    grant.config.insert("request_timeout_ms".into(), "2000".into());
    if let Some(key) = key {
        grant.secrets.insert(secret_name.to_string(), Secret::new(key));
    }
    config.jobs.retry_base_delay_ms = 10;
    config.jobs.retry_max_delay_ms = 3000;
}

/// Create a generation and poll it to its end.
#[track_caller]
pub fn run(s: &TestServer, body: Value) -> Value {
    let g = s.create(body);
    s.poll(g["id"].as_str().unwrap())
}

/// Poll until `pred` holds for the generation (10 s at most).
#[track_caller]
pub fn wait_until(s: &TestServer, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let g = s.get(&format!("/v1/generations/{id}")).json();
        if pred(&g) {
            return g;
        }
        assert!(Instant::now() < deadline, "generation {id} never got {what}: {g}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// No trace of `key` in the server's log, its generation records or its answers.
#[track_caller]
pub fn assert_key_nowhere(s: &TestServer, key: &str, generation: &Value) {
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).to_string();
    assert!(!logs.is_empty(), "the log capture is empty");
    assert!(!logs.contains(key), "the key appears in the log");
    assert!(!generation.to_string().contains(key), "the key appears in the generation: {generation}");
    let id = generation["id"].as_str().unwrap().to_string();
    let db = s.db();
    let row = super::block_on(async move { db.get_generation(&id).await.unwrap().unwrap() });
    let stored = format!("{row:?}");
    assert!(!stored.contains(key), "the key appears in the stored generation");
}

#[test]
fn models_of_remote_providers_are_listed_with_their_key_state() {
    captured_logs();
    let s = TestServer::start(|c| {
        c.plugins
            .grants
            .entry("gemini".into())
            .or_default()
            .secrets
            .insert("GEMINI_API_KEY".into(), Secret::new("gk-configured-1234"));
    });
    let models = s.get("/v1/models").json();
    let by_id = |id: &str| models["items"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned();
    let gemini = by_id("gemini/gemini-2.5-flash-image").expect("gemini models are bundled");
    assert_eq!(gemini["status"]["needs_key"], true);
    assert_eq!(gemini["status"]["configured"], true, "{gemini}");
    let openai = by_id("openai/gpt-image-1").expect("openai models are bundled");
    assert_eq!(openai["status"]["configured"], false);
    assert!(by_id("fal/fal-ai/flux/dev").is_some(), "model ids keep the provider's slashes");
    let local = by_id("local/procedural").unwrap();
    assert_eq!(local["status"]["needs_key"], false);
    assert_eq!(local["status"]["configured"], true);
    let one = s.get("/v1/models/fal%2Ffal-ai%2Fflux%2Fdev");
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["provider"], "fal");

    let ready = s.get("/ready").json();
    let providers = ready["providers"].as_array().unwrap();
    assert!(providers.iter().any(|p| p["provider"] == "gemini" && p["configured"] == true), "{ready}");
    assert!(providers.iter().any(|p| p["provider"] == "replicate" && p["configured"] == false), "{ready}");
    assert_eq!(ready["ready"], true, "a provider without a key does not make the server unready");
    for text in [models.to_string(), ready.to_string()] {
        assert!(!text.contains("gk-configured-1234"));
    }
}

#[test]
fn a_model_without_a_key_is_refused_at_once_or_served_by_its_fallback() {
    captured_logs();
    let s = TestServer::start(|c| {
        c.fallbacks.insert(
            "openai/gpt-image-1".into(),
            vec!["replicate/black-forest-labs/flux-dev".into(), "local/procedural".into()],
        );
    });
    // No key anywhere and no fallback: a clear 422 naming the model, before anything is queued.
    let r = s.post_json("/v1/generations", &json!({"prompt": "a fox", "model": "gemini/gemini-2.5-flash-image"}));
    let body = r.problem(422, "validation_error");
    assert_eq!(body["errors"][0]["field"], "model", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("X-Provider-Key"), "{body}");

    // With a chain, the job moves on: replicate has no key either, local draws.
    let g = run(&s, json!({"prompt": "a fox", "model": "openai/gpt-image-1", "size": "1024x1024", "seed": 3}));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!(g["model"], "openai/gpt-image-1");
    assert_eq!(g["model_used"], "local/procedural");
    assert_eq!(g["fallbacks"], json!(["replicate/black-forest-labs/flux-dev", "local/procedural"]));
    assert_eq!(g["images"][0]["model"], "local/procedural");
    assert_eq!((g["images"][0]["width"].as_u64(), g["images"][0]["height"].as_u64()), (Some(1024), Some(1024)));
    let last = &g["last_error"];
    assert!(last["message"].as_str().unwrap().contains("needs an API key"), "{g}");
}

#[test]
fn a_tier_that_brings_its_own_key_cannot_spend_the_operators() {
    captured_logs();
    let s = TestServer::start(|c| {
        c.plugins
            .grants
            .entry("gemini".into())
            .or_default()
            .secrets
            .insert("GEMINI_API_KEY".into(), Secret::new("operator-key-5678"));
    });
    let r = s.send(
        "POST",
        "/v1/auth/register",
        None,
        Some(&json!({"email": "byok@example.com", "password": "a long enough password"})),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let token = r.json()["token"].as_str().unwrap().to_string();
    let body = json!({"prompt": "a fox", "model": "gemini/gemini-2.5-flash-image"});
    let r = s.send("POST", "/v1/generations", Some(&token), Some(&body));
    let problem = r.problem(403, "forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("X-Provider-Key"), "{problem}");
}
