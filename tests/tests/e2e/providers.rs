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
        // An unset variable interpolated by Compose arrives empty: no key.
        c.plugins.grants.entry("openai".into()).or_default().secrets.insert("OPENAI_API_KEY".into(), Secret::new(""));
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

    // With a chain, the job moves on: replicate has no key either, local draws. (No seed:
    // gpt-image-1 takes none, and parameters are judged against the model asked for.)
    let g = run(&s, json!({"prompt": "a fox", "model": "openai/gpt-image-1", "size": "1024x1024", "quality": "high"}));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!(g["model"], "openai/gpt-image-1");
    assert_eq!(g["model_used"], "local/procedural");
    assert_eq!(g["fallbacks"], json!(["replicate/black-forest-labs/flux-dev", "local/procedural"]));
    assert_eq!(g["images"][0]["model"], "local/procedural");
    assert_eq!((g["images"][0]["width"].as_u64(), g["images"][0]["height"].as_u64()), (Some(1024), Some(1024)));
    let last = &g["last_error"];
    assert!(last["message"].as_str().unwrap().contains("needs an API key"), "{g}");
    // gpt-image-1 takes a quality; the fallback that drew did not, and the generation says so.
    assert_eq!(g["warnings"].as_array().unwrap().len(), 1, "{g}");
    assert_eq!(g["warnings"][0]["field"], "quality");
    assert!(g["warnings"][0]["message"].as_str().unwrap().contains("local/procedural"), "{g}");
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

#[path = "../../support/providers/fal.rs"]
mod fal_fx;
#[path = "../../support/providers/gemini.rs"]
mod gemini_fx;
#[path = "../../support/providers/openai.rs"]
mod openai_fx;
#[path = "../../support/providers/replicate.rs"]
mod replicate_fx;

/// A key unique to this test, so finding it anywhere is meaningful.
fn unique_key(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), easel::service::new_id("k"))
}

/// A small PNG as base64, for input images and masks.
fn png_base64(width: u32, height: u32, rgba: [u8; 4]) -> String {
    use base64::Engine as _;
    let img = image::RgbaImage::from_pixel(width, height, image::Rgba(rgba));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(out.into_inner())
}

const GEMINI: &str = "gemini/gemini-2.5-flash-image";

#[test]
fn gemini_draws_edits_and_maps_its_errors() {
    captured_logs();
    let key = unique_key("gk");
    let fx = gemini_fx::GeminiFixture::start_with_key(&key);
    let s = TestServer::start(|c| point_at(c, "gemini", &fx.base_url, "GEMINI_API_KEY", Some(&key)));

    // Text to image at a native ratio, the negative prompt merged, the key only in its header.
    let g = run(
        &s,
        json!({"prompt": "a lighthouse at dusk", "negative_prompt": "people", "model": GEMINI,
               "aspect_ratio": "16:9", "seed": 5}),
    );
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!((g["model_used"].as_str(), g["attempts"].as_i64()), (Some(GEMINI), Some(1)));
    let sent = fx.requests().pop().unwrap();
    assert_eq!(sent.header("x-goog-api-key"), Some(key.as_str()));
    assert!(sent.path.starts_with("/v1beta/models/gemini-2.5-flash-image:generateContent"), "{}", sent.path);
    assert_eq!(sent.json()["generationConfig"]["imageConfig"]["aspectRatio"], "16:9");
    assert!(sent.prompt_text().contains("a lighthouse at dusk") && sent.prompt_text().contains("Avoid: people"));
    let (file, img) = s.download(&g["images"][0]);
    assert_eq!(file.status, 200);
    assert_eq!(
        (img.width(), img.height()),
        (g["width"].as_u64().unwrap() as u32, g["height"].as_u64().unwrap() as u32)
    );
    assert_key_nowhere(&s, &key, &g);

    // Image to image: the input travels as inlineData.
    let g = run(
        &s,
        json!({"prompt": "make it snow", "model": GEMINI, "input_image": {"data": png_base64(40, 30, [200, 10, 10, 255])}}),
    );
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!(g["has_input_image"], true);
    assert_eq!(fx.requests().pop().unwrap().inline_images().len(), 1);

    // Rate limited with Google's retryDelay, then overloaded: retried with backoff.
    fx.script(vec![
        gemini_fx::Reply::Status { status: 429, retry_after: Some(Duration::from_millis(300)) },
        gemini_fx::Reply::Status { status: 503, retry_after: None },
        gemini_fx::Reply::Success,
    ]);
    let before = fx.hits("/v1beta");
    let started = Instant::now();
    let g = run(&s, json!({"prompt": "a fox", "model": GEMINI}));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!(g["attempts"], 3, "{g}");
    assert!(started.elapsed() >= Duration::from_millis(300), "the provider's retryDelay was honoured");
    assert_eq!(fx.hits("/v1beta") - before, 3);
    assert_eq!(g["last_error"]["code"], "provider_error", "{g}");

    // The generation shows `retrying` while it waits.
    fx.script(vec![gemini_fx::Reply::Status { status: 429, retry_after: Some(Duration::from_millis(1500)) }]);
    let created = s.create(json!({"prompt": "a hare", "model": GEMINI}));
    let id = created["id"].as_str().unwrap();
    let retrying = wait_until(&s, id, "retrying", |g| g["status"] == "retrying");
    assert!(retrying["last_error"]["message"].as_str().unwrap().contains("429"), "{retrying}");
    assert!(retrying["stage"].as_str().unwrap().starts_with("retrying in"), "{retrying}");
    assert_eq!(s.poll(id)["status"], "succeeded");

    // Malformed JSON is a transport failure: retried. A body over the plugin's limit would be
    // as large again: failed at once.
    fx.script(vec![gemini_fx::Reply::Malformed, gemini_fx::Reply::Success]);
    let g = run(&s, json!({"prompt": "a owl", "model": GEMINI}));
    assert_eq!((g["status"].as_str(), g["attempts"].as_i64()), (Some("succeeded"), Some(2)), "{g}");
    fx.script(vec![gemini_fx::Reply::Oversized]);
    let g = run(&s, json!({"prompt": "a owl", "model": GEMINI}));
    assert_eq!((g["status"].as_str(), g["attempts"].as_i64()), (Some("failed"), Some(1)), "{g}");
    assert!(g["error"]["message"].as_str().unwrap().contains("too large"), "{g}");

    // A provider that does not answer in time (request_timeout_ms = 2000) is retried.
    fx.script(vec![gemini_fx::Reply::Hang(Duration::from_millis(2600)), gemini_fx::Reply::Success]);
    let g = run(&s, json!({"prompt": "a bat", "model": GEMINI}));
    assert_eq!((g["status"].as_str(), g["attempts"].as_i64()), (Some("succeeded"), Some(2)), "{g}");

    // Safety blocks, bad requests: failed at once with our codes, never retried.
    for (reply, code) in [
        (gemini_fx::Reply::SafetyBlock, "content_blocked"),
        (gemini_fx::Reply::PromptBlocked, "content_blocked"),
        (gemini_fx::Reply::Status { status: 400, retry_after: None }, "provider_error"),
    ] {
        fx.script(vec![reply]);
        let before = fx.hits("/v1beta");
        let g = run(&s, json!({"prompt": "something", "model": GEMINI}));
        assert_eq!(g["status"], "failed", "{g}");
        assert_eq!(g["error"]["code"], code, "{g}");
        assert_eq!(fx.hits("/v1beta") - before, 1, "not retried: {g}");
    }

    // The caller's own key replaces the operator's for that request; a bad one is
    // `unauthorized_provider`, and it is nowhere afterwards.
    let callers = unique_key("caller-gk");
    let r = s.post_json_with(
        "/v1/generations",
        &[("X-Provider-Key", &callers)],
        &json!({"prompt": "mine", "model": GEMINI}),
    );
    assert_eq!(r.status, 202);
    let g = s.poll(r.json()["id"].as_str().unwrap());
    assert_eq!(g["error"]["code"], "unauthorized_provider", "{g}");
    assert_eq!(fx.requests().pop().unwrap().header("x-goog-api-key"), Some(callers.as_str()));
    assert_key_nowhere(&s, &callers, &g);
    assert_key_nowhere(&s, &key, &g);
}

#[test]
fn retries_run_out_into_the_fallback_chain() {
    captured_logs();
    let key = unique_key("gk");
    let fx = gemini_fx::GeminiFixture::start_with_key(&key);
    let s = TestServer::start(|c| {
        point_at(c, "gemini", &fx.base_url, "GEMINI_API_KEY", Some(&key));
        c.jobs.provider_attempts = 2;
        c.fallbacks.insert(GEMINI.into(), vec!["local/procedural".into()]);
        c.fallbacks.insert("gemini/gemini-3.1-flash-image".into(), vec!["openai/gpt-image-1".into()]);
    });
    let down = || gemini_fx::Reply::Status { status: 503, retry_after: None };
    fx.script(vec![down(), down()]);
    let g = run(&s, json!({"prompt": "a heron", "model": GEMINI, "n": 2}));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!(g["model"], GEMINI);
    assert_eq!(g["model_used"], "local/procedural");
    assert_eq!(g["images"].as_array().unwrap().len(), 2);
    assert!(g["images"].as_array().unwrap().iter().all(|i| i["model"] == "local/procedural"));
    assert_eq!(g["last_error"]["code"], "provider_error");
    assert_eq!(fx.hits("/v1beta"), 2, "both attempts were made before falling back");

    // A provider asking to wait longer than retry_max_delay_ms is exhausted at once.
    fx.script(vec![gemini_fx::Reply::Status { status: 429, retry_after: Some(Duration::from_secs(120)) }]);
    let g = run(&s, json!({"prompt": "a heron", "model": GEMINI}));
    assert_eq!(g["model_used"], "local/procedural", "{g}");
    assert!(g["last_error"]["message"].as_str().unwrap().contains("longer than"), "{g}");

    // When the whole chain is out, the last error is the generation's.
    fx.script(vec![down(), down()]);
    let g = run(&s, json!({"prompt": "a heron", "model": "gemini/gemini-3.1-flash-image"}));
    assert_eq!(g["status"], "failed", "{g}");
    assert!(g["error"]["message"].as_str().unwrap().contains("needs an API key"), "openai has no key: {g}");
}

const GPT_IMAGE: &str = "openai/gpt-image-1";

#[test]
fn openai_generates_edits_with_masks_and_fetches_url_results_safely() {
    captured_logs();
    let key = unique_key("sk");
    let fx = openai_fx::OpenAiFixture::start_with_key(&key);
    let s = TestServer::start(|c| point_at(c, "openai", &fx.base_url, "OPENAI_API_KEY", Some(&key)));

    let g = run(&s, json!({"prompt": "a red bicycle", "model": GPT_IMAGE, "size": "1536x1024", "quality": "high"}));
    assert_eq!(g["status"], "succeeded", "{g}");
    let sent = fx.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1/images/generations");
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {key}").as_str()));
    let body = sent.json();
    assert_eq!((body["model"].as_str(), body["size"].as_str()), (Some("gpt-image-1"), Some("1536x1024")), "{body}");
    assert_eq!(body["quality"], "high");
    assert_eq!((g["width"].as_u64(), g["height"].as_u64()), (Some(1536), Some(1024)));

    // Inpainting: the image and the mask travel as multipart parts.
    let g = run(
        &s,
        json!({"prompt": "add a moon", "model": GPT_IMAGE, "size": "1024x1024",
               "input_image": {"data": png_base64(64, 64, [10, 10, 80, 255])},
               "mask": {"data": png_base64(64, 64, [255, 255, 255, 255])}}),
    );
    assert_eq!(g["status"], "succeeded", "{g}");
    let sent = fx.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1/images/edits");
    assert!(
        sent.has_part("image") && sent.has_part("mask"),
        "{:?}",
        sent.form.iter().map(|p| &p.name).collect::<Vec<_>>()
    );
    let mask = image::load_from_memory(&sent.part("mask").unwrap().data).unwrap().to_rgba8();
    assert_eq!(mask.get_pixel(0, 0)[3], 0, "white (repaint) became transparent (OpenAI's edit area)");
    // A mask of another size is refused before anything is queued.
    let r = s.post_json(
        "/v1/generations",
        &json!({"prompt": "x", "model": GPT_IMAGE, "input_image": {"data": png_base64(64, 64, [0, 0, 0, 255])},
                "mask": {"data": png_base64(32, 32, [255, 255, 255, 255])}}),
    );
    assert_eq!(r.problem(422, "validation_error")["errors"][0]["field"], "mask");

    // An input image may be one of the caller's images; a URL must be public.
    let local = run(&s, json!({"prompt": "a pebble", "width": 96, "height": 96}));
    let own = local["images"][0]["id"].as_str().unwrap();
    let g = run(&s, json!({"prompt": "gild it", "model": GPT_IMAGE, "input_image": {"image_id": own}}));
    assert_eq!(g["status"], "succeeded", "{g}");
    let sent = fx.requests().pop().unwrap();
    let uploaded = image::load_from_memory(&sent.part("image").unwrap().data).unwrap();
    assert_eq!((uploaded.width(), uploaded.height()), (96, 96));
    for (source, field) in [
        (json!({"url": "http://127.0.0.1:9/x.png"}), "input_image.url"),
        (json!({"url": "http://169.254.169.254/latest/meta-data/"}), "input_image.url"),
        (json!({"url": "file:///etc/passwd"}), "input_image.url"),
        (json!({"image_id": "img_nobody"}), "input_image.image_id"),
        (json!({"data": "%%% not base64"}), "input_image.data"),
        (json!({"data": "aGVsbG8="}), "input_image"),
        (json!({"url": "https://example.com/a.png", "data": "aGVsbG8="}), "input_image"),
    ] {
        let r = s.post_json("/v1/generations", &json!({"prompt": "x", "model": GPT_IMAGE, "input_image": source}));
        let problem = r.problem(422, "validation_error");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let r = s.post_json(
        "/v1/generations",
        &json!({"prompt": "x", "input_image": {"data": png_base64(8, 8, [0, 0, 0, 255])}}),
    );
    assert_eq!(
        r.problem(422, "validation_error")["errors"][0]["field"],
        "input_image",
        "local/procedural draws from text only"
    );

    // URL results are downloaded and stored like any image.
    fx.script(vec![openai_fx::Reply::Url]);
    let g = run(&s, json!({"prompt": "a kite", "model": GPT_IMAGE}));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert!(fx.hits("/files/") >= 1, "the host fetched the image from the provider");
    assert_eq!(s.download(&g["images"][0]).0.status, 200);

    // A result URL pointing anywhere else (cloud metadata, another local port) is refused.
    for target in ["http://169.254.169.254/latest/meta-data/iam/security-credentials/", "http://127.0.0.1:9/x.png"] {
        fx.script(vec![openai_fx::Reply::UrlResult(target.into())]);
        let g = run(&s, json!({"prompt": "a kite", "model": GPT_IMAGE}));
        assert_eq!(g["status"], "failed", "{g}");
        assert_eq!(g["error"]["code"], "provider_error");
        assert!(g["error"]["message"].as_str().unwrap().contains("refused"), "{g}");
    }

    // retry-after-ms is honoured; moderation is content_blocked; a bad key is unauthorized_provider.
    fx.script(vec![openai_fx::Reply::Status { status: 429, retry_after: Some(Duration::from_millis(250)) }]);
    let g = run(&s, json!({"prompt": "a kite", "model": GPT_IMAGE}));
    assert_eq!((g["status"].as_str(), g["attempts"].as_i64()), (Some("succeeded"), Some(2)), "{g}");
    fx.script(vec![openai_fx::Reply::ModerationBlocked]);
    assert_eq!(run(&s, json!({"prompt": "x", "model": GPT_IMAGE}))["error"]["code"], "content_blocked");
    fx.script(vec![openai_fx::Reply::Status { status: 400, retry_after: None }]);
    let g = run(&s, json!({"prompt": "x", "model": GPT_IMAGE}));
    assert_eq!(g["error"]["code"], "provider_error");
    assert!(g["error"]["message"].as_str().unwrap().contains("size"), "the provider's param is named: {g}");
    fx.script(vec![openai_fx::Reply::LocalAiError { status: 500 }, openai_fx::Reply::Success]);
    assert_eq!(run(&s, json!({"prompt": "x", "model": GPT_IMAGE}))["attempts"], 2, "LocalAI's integer codes parse");
    let wrong = unique_key("sk-wrong");
    let r =
        s.post_json_with("/v1/generations", &[("X-Provider-Key", &wrong)], &json!({"prompt": "x", "model": GPT_IMAGE}));
    let g = s.poll(r.json()["id"].as_str().unwrap());
    assert_eq!(g["error"]["code"], "unauthorized_provider", "{g}");
    assert_key_nowhere(&s, &wrong, &g);
    assert_key_nowhere(&s, &key, &g);
}

const FLUX_DEV: &str = "fal/fal-ai/flux/dev";

#[test]
fn fal_queues_report_progress_cancel_upstream_and_map_errors() {
    captured_logs();
    let key = unique_key("fal");
    let fx = fal_fx::FalFixture::start_with_key(&key);
    let s = TestServer::start(|c| point_at(c, "fal", &fx.base_url, "FAL_KEY", Some(&key)));

    fx.script(vec![fal_fx::Reply::Progress { queued: 3, running: 3 }]);
    let g = run(
        &s,
        json!({"prompt": "a castle", "model": FLUX_DEV, "size": "landscape_4_3", "seed": 42, "steps": 20,
                           "guidance_scale": 4.0, "n": 2}),
    );
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!(g["images"].as_array().unwrap().len(), 2);
    let submit = fx.submissions().pop().unwrap();
    assert_eq!(submit.header("authorization"), Some(format!("Key {key}").as_str()));
    let input = submit.json().unwrap();
    assert_eq!(input["image_size"], "landscape_4_3", "{input}");
    assert_eq!(
        (input["seed"].as_i64(), input["num_images"].as_i64(), input["num_inference_steps"].as_i64()),
        (Some(42), Some(2), Some(20))
    );
    assert!(fx.hits("/fal-ai/flux/requests/") >= 7, "status polls, then the result");
    assert_key_nowhere(&s, &key, &g);

    // img2img goes to the image-to-image endpoint with the input as a data URI.
    let g = run(
        &s,
        json!({"prompt": "as a watercolour", "model": FLUX_DEV, "strength": 0.6,
                           "input_image": {"data": png_base64(48, 48, [0, 120, 0, 255])}}),
    );
    assert_eq!(g["status"], "succeeded", "{g}");
    let submit = fx.submissions().pop().unwrap();
    assert!(submit.path.starts_with("/fal-ai/flux/dev/image-to-image"), "{}", submit.path);
    let input = submit.json().unwrap();
    assert!(input["image_url"].as_str().unwrap().starts_with("data:image/png;base64,"));
    assert_eq!(input["strength"].as_f64(), Some(0.6_f32 as f64));

    // Canceling a generation cancels the fal request.
    fx.script(vec![fal_fx::Reply::Forever]);
    let created = s.create(json!({"prompt": "forever", "model": FLUX_DEV}));
    let id = created["id"].as_str().unwrap().to_string();
    wait_until(&s, &id, "running", |g| {
        g["status"] == "running" && g["stage"].as_str().is_some_and(|st| st != "claimed" && st != "generating")
    });
    let r = s.post_json(&format!("/v1/generations/{id}/cancel"), &json!({}));
    assert_eq!(r.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fx.canceled() {
        assert!(Instant::now() < deadline, "fal's cancel_url was never called");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.get(&format!("/v1/generations/{id}")).json()["status"], "canceled");

    // Errors: 422 names the field, NSFW results are content_blocked, 429 is retried.
    fx.script(vec![fal_fx::Reply::Status { status: 422, retry_after: None }]);
    let g = run(&s, json!({"prompt": "x", "model": FLUX_DEV}));
    assert_eq!(g["error"]["code"], "provider_error", "{g}");
    assert!(g["error"]["message"].as_str().unwrap().contains("prompt"), "{g}");
    fx.script(vec![fal_fx::Reply::Nsfw]);
    assert_eq!(run(&s, json!({"prompt": "x", "model": FLUX_DEV}))["error"]["code"], "content_blocked");
    fx.script(vec![fal_fx::Reply::Status { status: 429, retry_after: Some(1) }, fal_fx::Reply::Success]);
    let g = run(&s, json!({"prompt": "x", "model": FLUX_DEV}));
    assert_eq!((g["status"].as_str(), g["attempts"].as_i64()), (Some("succeeded"), Some(2)), "{g}");

    // Result URLs elsewhere are refused.
    fx.script(vec![fal_fx::Reply::UrlResult("http://10.0.0.1/internal.png".into())]);
    let g = run(&s, json!({"prompt": "x", "model": FLUX_DEV}));
    assert_eq!(g["status"], "failed", "{g}");
    assert!(g["error"]["message"].as_str().unwrap().contains("refused"), "{g}");
}

const FLUX_REPLICATE: &str = "replicate/black-forest-labs/flux-dev";

#[test]
fn replicate_predictions_wait_poll_cancel_and_fail_clearly() {
    captured_logs();
    let key = unique_key("r8");
    let fx = replicate_fx::ReplicateFixture::start_with_key(&key);
    let s = TestServer::start(|c| point_at(c, "replicate", &fx.base_url, "REPLICATE_API_TOKEN", Some(&key)));

    fx.script(vec![replicate_fx::Reply::SucceededAtOnce]);
    let g = run(&s, json!({"prompt": "a lighthouse", "model": FLUX_REPLICATE, "aspect_ratio": "3:2", "seed": 9}));
    assert_eq!(g["status"], "succeeded", "{g}");
    let create = fx.creates().pop().unwrap();
    assert_eq!(create.path, "/v1/models/black-forest-labs/flux-dev/predictions");
    assert_eq!(create.header("authorization"), Some(format!("Bearer {key}").as_str()));
    assert!(create.header("prefer").is_some_and(|p| p.starts_with("wait")), "Prefer: wait is sent");
    let input = &create.json().unwrap()["input"];
    assert_eq!((input["aspect_ratio"].as_str(), input["seed"].as_i64()), (Some("3:2"), Some(9)), "{input}");

    fx.script(vec![replicate_fx::Reply::Progress { processing: 4 }]);
    let g = run(&s, json!({"prompt": "a lighthouse", "model": FLUX_REPLICATE}));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert!(fx.hits("/v1/predictions/") >= 4, "polled until it succeeded");
    assert_key_nowhere(&s, &key, &g);

    fx.script(vec![replicate_fx::Reply::Forever]);
    let created = s.create(json!({"prompt": "forever", "model": FLUX_REPLICATE}));
    let id = created["id"].as_str().unwrap().to_string();
    let polls = fx.hits("/v1/predictions/");
    let deadline = Instant::now() + Duration::from_secs(10);
    while fx.hits("/v1/predictions/") < polls + 2 {
        assert!(Instant::now() < deadline, "the prediction was never polled");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.post_json(&format!("/v1/generations/{id}/cancel"), &json!({})).status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fx.canceled() {
        assert!(Instant::now() < deadline, "Replicate's cancel URL was never called");
        std::thread::sleep(Duration::from_millis(20));
    }

    fx.script(vec![replicate_fx::Reply::Nsfw]);
    assert_eq!(run(&s, json!({"prompt": "x", "model": FLUX_REPLICATE}))["error"]["code"], "content_blocked");
    // A prediction that failed for a passing reason (out of GPU memory) is tried again.
    fx.script(vec![replicate_fx::Reply::Failed("CUDA out of memory".into())]);
    let g = run(&s, json!({"prompt": "x", "model": FLUX_REPLICATE}));
    assert_eq!((g["status"].as_str(), g["attempts"].as_i64()), (Some("succeeded"), Some(2)), "{g}");
    assert!(g["last_error"]["message"].as_str().unwrap().contains("CUDA out of memory"), "{g}");
    fx.script(vec![replicate_fx::Reply::Status { status: 429, retry_after: Some(1) }, replicate_fx::Reply::Success]);
    let g = run(&s, json!({"prompt": "x", "model": FLUX_REPLICATE}));
    assert_eq!((g["status"].as_str(), g["attempts"].as_i64()), (Some("succeeded"), Some(2)), "{g}");
    fx.script(vec![replicate_fx::Reply::Status { status: 401, retry_after: None }]);
    assert_eq!(run(&s, json!({"prompt": "x", "model": FLUX_REPLICATE}))["error"]["code"], "unauthorized_provider");
}

#[test]
fn fal_webhooks_wake_the_job_and_forgeries_are_refused() {
    captured_logs();
    let key = unique_key("fal");
    let fx = fal_fx::FalFixture::start_with_key(&key);
    // The callback URL is built from public_url, so the port is chosen before the start.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = TestServer::start(|c| {
        point_at(c, "fal", &fx.base_url, "FAL_KEY", Some(&key));
        let grant = c.plugins.grants.get_mut("fal").unwrap();
        grant.callbacks = true;
        grant.config.insert("jwks_url".into(), fx.jwks_url());
        grant.config.insert("webhook_user_id".into(), fal_fx::WEBHOOK_USER_ID.into());
        // Polls 30 s apart: only the webhook can make this quick.
        grant.config.insert("poll_interval_ms".into(), "30000".into());
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.public_url = Some(format!("http://127.0.0.1:{port}"));
    });

    fx.script(vec![fal_fx::Reply::SlowWithWebhook]);
    let started = Instant::now();
    let g = run(&s, json!({"prompt": "a harbour", "model": FLUX_DEV}));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert!(started.elapsed() < Duration::from_secs(15), "the verified webhook woke the job: {:?}", started.elapsed());
    let id = g["id"].as_str().unwrap();
    assert_eq!(fx.webhook_urls(), vec![format!("http://127.0.0.1:{port}/v1/callbacks/fal/{id}")]);
    assert_eq!(fx.webhook_deliveries(), vec![202]);

    // A webhook signed with a key fal does not publish is refused, and changes nothing.
    fx.script(vec![fal_fx::Reply::Forever]);
    let created = s.create(json!({"prompt": "forever", "model": FLUX_DEV}));
    let id = created["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fx.webhook_urls().len() < 2 {
        assert!(Instant::now() < deadline, "the second job was never submitted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = fx.webhook_urls().pop().unwrap();
    assert_eq!(fx.forge_webhook(&url), 401);
    assert_eq!(s.get(&format!("/v1/generations/{id}")).json()["status"], "running");
    assert_eq!(s.post_json(&format!("/v1/generations/{id}/cancel"), &json!({})).status, 200);

    // Callbacks for what is not running here, or for a plugin that takes none, are 404.
    let r = s.post_json(&format!("/v1/callbacks/fal/{id}"), &json!({"request_id": "x"}));
    r.problem(404, "not_found");
    let r = s.post_json("/v1/callbacks/gemini/gen_01aaaaaaaaaaaaaaaaaaaaaaaa", &json!({}));
    r.problem(404, "not_found");
}

/// A loopback HTTP server answering `GET path` with the raw answer listed for it (404 for
/// others); its origin and how many connections it served.
fn loopback_host(routes: Vec<(&'static str, Vec<u8>)>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = request.split(' ').nth(1).unwrap_or("/");
            let answer = routes.iter().find(|(p, _)| *p == path).map(|(_, a)| a.clone()).unwrap_or_else(|| {
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
            });
            let _ = stream.write_all(&answer);
        }
    });
    (origin, hits)
}

/// `200 OK` with a PNG body.
fn png_answer(png: &[u8]) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        png.len()
    );
    [head.into_bytes(), png.to_vec()].concat()
}

/// A PNG of noise (it does not compress): about 4 bytes a pixel.
fn noise_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let img = image::RgbaImage::from_fn(width, height, |_, _| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let [a, b, c, _] = state.to_le_bytes();
        image::Rgba([a, b, c, 255])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Input image URLs on internal hosts are refused unless the operator lists their exact
/// origin (`[inputs] allowed_private_origins`), and a listed origin cannot redirect the
/// fetch to another private address.
#[test]
fn input_urls_on_internal_hosts_need_the_operators_allowlist() {
    use base64::Engine as _;
    captured_logs();
    let fx = openai_fx::OpenAiFixture::start();
    let png = base64::engine::general_purpose::STANDARD.decode(png_base64(64, 64, [200, 40, 40, 255])).unwrap();
    let (elsewhere, elsewhere_hits) = loopback_host(vec![("/other.png", png_answer(&png))]);
    let moved = format!("HTTP/1.1 302 Found\r\nlocation: {elsewhere}/other.png\r\ncontent-length: 0\r\n\r\n");
    let (assets, _) = loopback_host(vec![("/a.png", png_answer(&png)), ("/moved.png", moved.into_bytes())]);
    let body = |url: String| json!({"prompt": "recolour", "model": GPT_IMAGE, "input_image": {"url": url}});

    let closed =
        TestServer::start(|c| point_at(c, "openai", &fx.base_url, "OPENAI_API_KEY", Some(openai_fx::DEFAULT_KEY)));
    let r = closed.post_json("/v1/generations", &body(format!("{assets}/a.png")));
    let problem = r.problem(422, "validation_error");
    assert_eq!(problem["errors"][0]["field"], "input_image.url", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("127.0.0.1"), "{problem}");
    drop(closed);

    let open = TestServer::start(|c| {
        point_at(c, "openai", &fx.base_url, "OPENAI_API_KEY", Some(openai_fx::DEFAULT_KEY));
        c.inputs.allowed_private_origins = vec![assets.clone()];
    });
    let g = open.create(body(format!("{assets}/a.png")));
    let g = open.poll(g["id"].as_str().unwrap());
    assert_eq!(g["status"], "succeeded", "{g}");
    let sent = fx.requests().pop().unwrap();
    let uploaded = image::load_from_memory(&sent.part("image").unwrap().data).unwrap();
    assert_eq!((uploaded.width(), uploaded.height()), (64, 64), "the fetched image reached the provider");

    // The listed origin redirects to another loopback port: refused, never fetched.
    let r = open.post_json("/v1/generations", &body(format!("{assets}/moved.png")));
    let problem = r.problem(422, "validation_error");
    assert_eq!(problem["errors"][0]["field"], "input_image.url", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("private"), "{problem}");
    assert_eq!(elsewhere_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Another port of the same host is not the listed origin.
    let r = open.post_json("/v1/generations", &body(format!("{elsewhere}/other.png")));
    assert_eq!(r.problem(422, "validation_error")["errors"][0]["field"], "input_image.url");
    assert_eq!(elsewhere_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// One uploaded image may not exceed `limits.max_upload_bytes`, in any form: base64 `data`
/// (image or mask) or a fetched `url`. The 413 names the field.
#[test]
fn single_uploads_are_capped_per_field() {
    use base64::Engine as _;
    captured_logs();
    let fx = openai_fx::OpenAiFixture::start();
    let big = noise_png(64, 64);
    assert!(big.len() > 8192, "{}", big.len());
    let (assets, _) = loopback_host(vec![("/big.png", png_answer(&big))]);
    let s = TestServer::start(|c| {
        point_at(c, "openai", &fx.base_url, "OPENAI_API_KEY", Some(openai_fx::DEFAULT_KEY));
        c.inputs.allowed_private_origins = vec![assets.clone()];
        c.limits.max_upload_bytes = 8192;
    });
    let small = png_base64(64, 64, [10, 10, 80, 255]);
    let big64 = base64::engine::general_purpose::STANDARD.encode(&big);
    for (input_image, mask, field) in [
        (json!({"data": big64}), None, "input_image.data"),
        (json!({"data": format!("data:image/png;base64,{big64}")}), None, "input_image.data"),
        (json!({"data": small}), Some(json!({"data": big64})), "mask.data"),
        (json!({"url": format!("{assets}/big.png")}), None, "input_image.url"),
    ] {
        let mut body = json!({"prompt": "x", "model": GPT_IMAGE, "input_image": input_image});
        if let Some(mask) = mask {
            body["mask"] = mask;
        }
        let r = s.post_json("/v1/generations", &body);
        let problem = r.problem(413, "payload_too_large");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.starts_with(field) && detail.contains("8192"), "{field}: {problem}");
    }
    // Within the limit, the same request goes through.
    let g = s.create(json!({"prompt": "x", "model": GPT_IMAGE, "input_image": {"data": small}}));
    assert_eq!(s.poll(g["id"].as_str().unwrap())["status"], "succeeded");
}
