//! The catalogue and operational endpoints.

use crate::shared;

#[test]
fn models_list_the_bundled_local_provider_honestly() {
    let s = shared();
    let r = s.get("/v1/models");
    assert_eq!(r.status, 200);
    let models = r.json()["items"].as_array().unwrap().clone();
    let local = models.iter().find(|m| m["id"] == "local/procedural").expect("local/procedural is bundled");
    assert_eq!(local["provider"], "local");
    assert_eq!(local["deterministic"], true);
    assert_eq!(local["any_size"], true);
    assert_eq!(local["max_n"], 4);
    assert_eq!(local["kinds"], serde_json::json!(["text_to_image"]));
    let text = format!("{} {}", local["description"], local["info"]["what_is"]).to_lowercase();
    assert!(text.contains("not an ai model"), "{text}");
    assert!(!models.iter().any(|m| m["provider"] == "misbehave"), "fixtures are never bundled");
}

#[test]
fn health_ready_and_docs() {
    let s = shared();
    let h = s.get("/health").json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    let ts = h["timestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') || ts.ends_with("+00:00"), "RFC 3339 UTC: {ts}");
    let r = s.get("/ready");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["database"], true);
    let docs = s.get("/docs");
    assert_eq!(docs.status, 200);
    let html = String::from_utf8_lossy(&docs.bytes).to_lowercase();
    assert!(html.contains("<html") && html.contains("swagger"), "docs are served offline as HTML");
    assert!(!html.contains("cdn."), "no CDN: the docs must work offline");
}

#[test]
fn one_model_by_its_encoded_id() {
    let s = shared();
    let m = s.get("/v1/models/local%2Fprocedural");
    assert_eq!(m.status, 200, "{}", String::from_utf8_lossy(&m.bytes));
    assert_eq!(m.json()["id"], "local/procedural");
    assert!(!m.json()["info"]["use_cases"].as_array().unwrap().is_empty());
    s.get("/v1/models/local%2Fnothing").problem(404, "not_found");
}

#[test]
fn metrics_are_prometheus_text_with_bounded_labels() {
    let s = shared();
    let g = s.generate(crate::small("counted"));
    s.get("/v1/made-up-path-9f2c");
    s.get(&format!("/v1/generations/{}", g["id"].as_str().unwrap()));
    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(r.bytes).unwrap();
    for needle in [
        "easel_http_requests_total{method=\"GET\",operation=\"get_generation\",status=\"200\"}",
        "easel_http_requests_total{method=\"GET\",operation=\"other\",status=\"404\"}",
        "easel_http_request_duration_seconds_bucket",
        "easel_generations_created_total{model=\"local/procedural\"}",
        "easel_generations_finished_total{model=\"local/procedural\",status=\"succeeded\"}",
        "easel_generation_duration_seconds_count{status=\"succeeded\"}",
        "easel_jobs{status=\"queued\"}",
        // The provider call behind the generation, counted and timed by plugin and export.
        "easel_plugin_calls_total{export=\"generate\",plugin=\"local\"}",
        "easel_plugin_call_duration_seconds_bucket{export=\"generate\",plugin=\"local\",le=\"0.1\"}",
        "easel_plugin_call_duration_seconds_count{export=\"generate\",plugin=\"local\"}",
        // Build and process series.
        &format!(
            "easel_build_info{{abi=\"{}\",version=\"{}\"}} 1",
            easel::plugins::manifest::API_VERSION,
            env!("CARGO_PKG_VERSION")
        ),
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let value = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} missing"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("easel_plugin_calls_total{export=\"generate\",plugin=\"local\"}") >= 1.0);
    assert!(value("process_resident_memory_bytes") > 1e6, "a real resident size");
    assert!(value("process_open_fds") >= 3.0 && value("process_max_fds") >= value("process_open_fds"));
    assert!(!text.contains("made-up-path") && !text.contains("gen_"), "no client-made label values");
}
