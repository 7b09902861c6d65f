//! The plugin platform end to end: catalogues, styles, archetypes, anchored crops, variants,
//! background removal, hot reload, and the HTTP rules for provider plugins.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{TestServer, install_fixture, shared, wasm_build_dir};

#[test]
fn catalogues_are_filled_by_the_bundled_plugins() {
    let s = shared();
    let plugins = s.get("/v1/plugins").json();
    for (id, kind) in
        [("local", "provider"), ("styles-core", "style-pack"), ("archetypes", "cropper"), ("filters-core", "filter")]
    {
        let p = plugins["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(p["kind"], kind);
        assert_eq!(p["source"], "bundled");
        assert_eq!(p["status"], "loaded");
        assert!(p["items"].as_u64().unwrap() >= 1, "{p}");
    }
    let styles = s.get("/v1/styles").json();
    let styles = styles["items"].as_array().unwrap();
    assert!(styles.len() >= 20, "{} styles", styles.len());
    for id in ["photorealistic", "cinematic", "anime", "watercolor", "pixel_art", "icon", "logo", "spot_illustration"] {
        assert!(styles.iter().any(|t| t["id"] == id), "style {id} missing");
    }
    let artistic = s.get("/v1/styles?category=artistic").json();
    assert!(artistic["items"].as_array().unwrap().iter().all(|t| t["category"] == "artistic"));
    assert_eq!(s.get("/v1/styles/watercolor").json()["id"], "watercolor");
    s.get("/v1/styles/nope").problem(404, "not_found");

    let archetypes = s.get("/v1/archetypes").json();
    let archetypes = archetypes["items"].as_array().unwrap();
    assert_eq!(archetypes.len(), 6);
    for (id, removes) in [
        ("spot_illustration", false),
        ("photorealistic", false),
        ("icon", true),
        ("logo", true),
        ("minimalist_vector_art", true),
        ("symbolic_representation", true),
    ] {
        let a = archetypes.iter().find(|a| a["id"] == id).unwrap();
        assert_eq!(a["remove_background"], removes, "{id}");
    }
    let filters = s.get("/v1/filters").json();
    for id in ["grayscale", "sepia", "vintage", "invert", "blur", "sharpen", "vignette", "posterize"] {
        assert!(filters["items"].as_array().unwrap().iter().any(|f| f["id"] == id), "filter {id} missing");
    }
}

#[test]
fn a_style_expands_the_prompt_and_unknown_ones_are_refused() {
    let s = shared();
    let g = s.generate(json!({ "prompt": "a red fox", "style": "watercolor", "width": 96, "height": 96 }));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!(g["style"], "watercolor");
    assert_eq!(g["prompt"], "a red fox", "the client's prompt is echoed as sent");
    let sent = g["provider_prompt"].as_str().unwrap();
    assert!(sent.contains("a red fox") && sent.len() > "a red fox".len(), "{sent}");
    assert_eq!(g["images"][0]["style"], "watercolor");
    let cinematic = s.generate(json!({ "prompt": "a harbour", "style": "cinematic", "seed": 3 }));
    assert_eq!(cinematic["aspect_ratio"], "7:3", "the style's default 21:9 applies when no size is given");
    let own = s.generate(json!({ "prompt": "a harbour", "style": "cinematic", "aspect_ratio": "1:1" }));
    assert_eq!(own["aspect_ratio"], "1:1", "the client's own size wins");
    let r = s.post_json("/v1/generations", &json!({ "prompt": "x", "style": "no_such_style" }));
    assert_eq!(r.problem(422, "validation_error")["errors"][0]["field"], "style");
    let r = s.post_json("/v1/generations", &json!({ "prompt": "x", "archetype": "no_such" }));
    assert_eq!(r.problem(422, "validation_error")["errors"][0]["field"], "archetype");
    let r = s.post_json("/v1/generations", &json!({ "prompt": "x", "crop_anchor": "middle" }));
    assert_eq!(r.problem(422, "validation_error")["errors"][0]["field"], "crop_anchor");
}

#[test]
fn an_icon_archetype_gets_a_transparent_variant() {
    let s = shared();
    let g = s.generate(json!({ "prompt": "a fox", "archetype": "icon", "seed": 11, "return_base64": true }));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!(g["aspect_ratio"], "1:1");
    assert_eq!(g["remove_background"], true);
    let image = &g["images"][0];
    let transparent = &image["variants"]["transparent"];
    assert_eq!(transparent["format"], "png");
    let r = s.get(transparent["url"].as_str().unwrap());
    assert_eq!(r.status, 200);
    let cutout = image::load_from_memory(&r.bytes).unwrap().to_rgba8();
    assert_eq!(cutout.get_pixel(0, 0)[3], 0, "the white background is transparent");
    let (w, h) = cutout.dimensions();
    let opaque = cutout.pixels().filter(|p| p[3] == 255).count();
    assert!(opaque > (w * h / 50) as usize, "the subject stays opaque ({opaque} opaque pixels)");
    use base64::Engine as _;
    let inline = base64::engine::general_purpose::STANDARD.decode(image["base64"].as_str().unwrap()).unwrap();
    assert_eq!(inline, s.download(image).0.bytes, "base64 is the main file");
    let plain = s.generate(crate::small("x"));
    assert!(plain["images"][0]["base64"].is_null(), "no base64 unless asked");
    assert!(plain["images"][0]["variants"]["transparent"].is_null());
}

fn native_server() -> TestServer {
    let tmp = tempfile::tempdir().unwrap();
    install_fixture(&tmp.path().join("plugins"), "native-sizes", "fixture_native_sizes.wasm");
    let mut server = TestServer::start_in(tmp.path(), |_| {});
    server.keep(tmp);
    server
}

#[test]
fn native_providers_are_cropped_exactly_with_anchors() {
    let s = native_server();
    let mut reds = Vec::new();
    for anchor in ["left", "center", "right", "smart"] {
        let g =
            s.generate(json!({ "prompt": "x", "model": "native/fixed", "aspect_ratio": "2:7", "crop_anchor": anchor }));
        assert_eq!(g["status"], "succeeded", "{g}");
        let v = &g["images"][0]["variants"];
        assert_eq!(
            (v["original"]["width"].as_u64(), v["original"]["height"].as_u64()),
            (Some(768), Some(1344)),
            "nearest native ratio"
        );
        assert_eq!(
            (v["cropped"]["width"].as_u64(), v["cropped"]["height"].as_u64()),
            (Some(384), Some(1344)),
            "exactly 2:7"
        );
        let (_, img) = s.download(&g["images"][0]);
        assert_eq!((img.width(), img.height()), (384, 1344));
        reds.push(img.to_rgba8().get_pixel(0, 0)[0]);
        let original = s.get(v["original"]["url"].as_str().unwrap());
        assert_eq!(image::load_from_memory(&original.bytes).unwrap().width(), 768);
    }
    // Red grows with x in the fixture: left < center < right.
    assert!(reds[0] < reds[1] && reds[1] < reds[2], "{reds:?}");
    let g = s.generate(json!({ "prompt": "x", "model": "native/fixed", "width": 300, "height": 100 }));
    let (_, img) = s.download(&g["images"][0]);
    assert_eq!((img.width(), img.height()), (300, 100), "an explicit size is cropped then resized");
    s.get(&format!("{}?variant=transparent", g["images"][0]["url"].as_str().unwrap())).problem(404, "not_found");
    s.get(&format!("{}?variant=sideways", g["images"][0]["url"].as_str().unwrap())).problem(422, "validation_error");
}

fn wait_for(mut check: impl FnMut() -> bool, what: &str) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        if check() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen within 2 s");
}

#[test]
fn plugins_dropped_in_appear_and_broken_ones_keep_the_old_version_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |_| {});
    let has_model = |s: &TestServer| {
        s.get("/v1/models").json()["items"].as_array().unwrap().iter().any(|m| m["id"] == "native/fixed")
    };
    assert!(!has_model(&server));
    install_fixture(&tmp.path().join("plugins"), "native-sizes", "fixture_native_sizes.wasm");
    wait_for(|| has_model(&server), "a dropped-in plugin appearing");
    let g = server.generate(json!({ "prompt": "x", "model": "native/fixed", "size": "square" }));
    assert_eq!(g["status"], "succeeded");

    // A broken new version: the old one keeps serving and the error is reported.
    std::fs::write(tmp.path().join("plugins/native-sizes/fixture_native_sizes.wasm"), b"not wasm").unwrap();
    let stale = || {
        server.get("/v1/plugins").json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "native" && p["status"] == "stale")
    };
    wait_for(stale, "the broken version being reported");
    let p = server.get("/v1/plugins").json();
    let native = p["items"].as_array().unwrap().iter().find(|p| p["id"] == "native").unwrap().clone();
    assert!(native["last_error"].as_str().unwrap().contains("not a WebAssembly"), "{native}");
    assert!(has_model(&server), "the previous version keeps serving");

    // Removing the folder removes the plugin.
    std::fs::remove_dir_all(tmp.path().join("plugins/native-sizes")).unwrap();
    wait_for(|| !has_model(&server), "a removed plugin disappearing");

    // A manual reload works too (from loopback).
    let r = server.post_json("/v1/plugins/reload", &json!({}));
    assert_eq!(r.status, 200);
}

/// A one-shot HTTP server on loopback that records the request it gets.
fn fixture_http_server(body: &'static str) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/probe", listener.local_addr().unwrap().port());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).to_string());
            let _ =
                write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        }
    });
    (url, rx)
}

fn probe_server(grant_private: bool, granted: &[&str]) -> TestServer {
    let tmp = tempfile::tempdir().unwrap();
    install_fixture(&tmp.path().join("plugins"), "http-probe", "fixture_http_probe.wasm");
    let granted: Vec<String> = granted.iter().map(|s| s.to_string()).collect();
    let mut server = TestServer::start_in(tmp.path(), |c| {
        let grant = c.plugins.grants.entry("probe".into()).or_default();
        grant.allow_private_ips = grant_private;
        grant.allowed_outbound_hosts = granted;
        grant.secrets.insert("PROBE_KEY".into(), easel::config::Secret::new("s3cret-value"));
    });
    server.keep(tmp);
    server
}

fn probe(server: &TestServer, model: &str, url: &str) -> serde_json::Value {
    server.generate(json!({ "prompt": url, "model": model, "width": 64, "height": 64 }))
}

#[test]
fn provider_http_is_host_mediated_with_secrets_substituted() {
    let (url, seen) = fixture_http_server("hello");
    let server = probe_server(true, &["http://127.0.0.1:*"]);
    let g = probe(&server, "probe/fetch", &url);
    assert_eq!(g["status"], "succeeded", "{g}");
    let request = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(request.to_lowercase().contains("authorization: bearer s3cret-value"), "the host substituted the secret");
    assert!(!g.to_string().contains("s3cret-value"), "the secret never reaches the generation");
    let plugins = server.get("/v1/plugins").json().to_string();
    assert!(plugins.contains("PROBE_KEY") && !plugins.contains("s3cret-value"), "names, never values");
    // The plugin cannot read the secret through its config.
    let g = probe(&server, "probe/read-secret", &url);
    assert_eq!(g["status"], "succeeded", "{g}");
    // A secret the manifest does not declare is refused.
    let g = probe(&server, "probe/undeclared", &url);
    assert_eq!(g["status"], "failed");
    assert!(g["error"]["message"].as_str().unwrap().contains("not declared"), "{g}");
}

#[test]
fn provider_http_refuses_loopback_forbidden_and_ungranted_hosts() {
    let (url, _seen) = fixture_http_server("x");
    // Loopback is refused unless the operator allows private addresses.
    let strict = probe_server(false, &["http://127.0.0.1:*", "http://localhost:*"]);
    let g = probe(&strict, "probe/fetch", &url);
    assert_eq!(g["status"], "failed");
    assert_eq!(g["error"]["code"], "provider_error");
    assert!(g["error"]["message"].as_str().unwrap().contains("loopback"), "{g}");
    // The same through a name: the client's resolver refuses what it resolves to.
    let by_name = url.replace("127.0.0.1", "localhost");
    let g = probe(&strict, "probe/fetch", &by_name);
    assert_eq!(g["status"], "failed");
    assert!(g["error"]["message"].as_str().unwrap().contains("localhost resolves to"), "{g}");
    // A host the manifest does not ask for.
    let g = probe(&strict, "probe/fetch", "http://169.254.169.254/latest/meta-data");
    assert!(g["error"]["message"].as_str().unwrap().contains("allowed_outbound_hosts"), "{g}");
    // A host the manifest asks for but the operator did not grant.
    let ungranted = probe_server(true, &[]);
    let g = probe(&ungranted, "probe/fetch", &url);
    assert!(g["error"]["message"].as_str().unwrap().contains("not granted"), "{g}");
    assert!(!g.to_string().contains("s3cret-value"));
}

#[test]
fn the_build_produced_every_fixture() {
    for wasm in ["fixture_misbehave.wasm", "fixture_native_sizes.wasm", "fixture_http_probe.wasm"] {
        assert!(wasm_build_dir().join(wasm).is_file(), "{wasm}");
    }
}

#[test]
fn edits_apply_filters_and_geometry_in_order() {
    let s = shared();
    let g = s.generate(json!({ "prompt": "a sunset over the ocean", "width": 160, "height": 120, "seed": 5 }));
    let id = g["images"][0]["id"].as_str().unwrap().to_string();
    let ops = json!({ "operations": [
        { "type": "filter", "name": "grayscale" },
        { "type": "crop", "x": 10, "y": 10, "width": 100, "height": 80 },
        { "type": "rotate", "degrees": 90 },
        { "type": "resize", "width": 40, "height": 50 },
        { "type": "flip", "direction": "horizontal" },
    ]});
    let r = s.post_json(&format!("/v1/images/{id}/edits"), &ops);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let edited = r.json();
    assert_eq!(edited["parent_id"], id.as_str());
    assert_eq!((edited["width"].as_u64(), edited["height"].as_u64()), (Some(40), Some(50)));
    assert_eq!(r.header("location"), Some(format!("/v1/images/{}", edited["id"].as_str().unwrap()).as_str()));
    let (_, img) = s.download(&edited);
    let rgba = img.to_rgba8();
    assert!(rgba.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "grayscale kept through the geometry");
    let history = s.get(&format!("/v1/images/{id}/edits")).json();
    assert_eq!(history["items"][0]["id"], edited["id"]);

    let sepia = s.post_json(
        &format!("/v1/images/{id}/edits"),
        &json!({ "operations": [
        { "type": "filter", "name": "sepia", "intensity": 0.5 },
        { "type": "filter", "name": "blur", "params": { "radius": 2 } },
    ], "output_format": "webp" }),
    );
    assert_eq!(sepia.status, 201, "{}", String::from_utf8_lossy(&sepia.bytes));
    assert_eq!(sepia.json()["format"], "webp");
}

#[test]
fn bad_edits_name_the_operation_and_store_nothing() {
    let s = shared();
    let g = s.generate(crate::small("edit me"));
    let id = g["images"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/images/{id}/edits");
    let cases = [
        (json!({ "operations": [{ "type": "filter", "name": "nope" }] }), "operations[0].name"),
        (
            json!({ "operations": [{ "type": "filter", "name": "grayscale" }, { "type": "filter", "name": "blur", "params": { "radius": -1 } }] }),
            "operations[1].params",
        ),
        (json!({ "operations": [{ "type": "filter", "name": "sepia", "intensity": 3 }] }), "operations[0].intensity"),
        (
            json!({ "operations": [{ "type": "crop", "x": 100, "y": 0, "width": 100, "height": 10 }] }),
            "operations[0].width",
        ),
        // Checked against the size the earlier operations leave (128x128 resized to 64x32,
        // rotated to 32x64), before any work is done.
        (
            json!({ "operations": [{ "type": "resize", "width": 64, "height": 32 }, { "type": "rotate", "degrees": 90 }, { "type": "crop", "x": 0, "y": 40, "width": 32, "height": 30 }] }),
            "operations[2].height",
        ),
        (
            json!({ "operations": [{ "type": "filter", "name": "sepia" }, { "type": "crop", "x": 128, "y": 0, "width": 1, "height": 1 }] }),
            "operations[1].x",
        ),
        (json!({ "operations": [{ "type": "resize", "width": -5, "height": 10 }] }), "operations[0].width"),
        (json!({ "operations": [{ "type": "rotate", "degrees": 45 }] }), "operations[0].degrees"),
        (json!({ "operations": [{ "type": "flip", "direction": "diagonal" }] }), "operations[0].direction"),
        (json!({ "operations": [] }), "operations"),
    ];
    for (body, field) in cases {
        let p = s.post_json(&path, &body).problem(422, "validation_error");
        assert_eq!(p["errors"].as_array().unwrap().len(), 1, "one precise error: {p}");
        let fields: Vec<_> =
            p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_string()).collect();
        assert!(fields.iter().any(|f| f == field), "expected {field}, got {p}");
    }
    let r = s.post_json(&path, &json!({ "operations": [{ "type": "sharpie" }] }));
    assert_eq!(r.status, 422, "an unknown operation type is refused");
    assert_eq!(s.get(&path).json()["items"], json!([]), "nothing was stored");
    s.post_json(
        "/v1/images/img_missing/edits",
        &json!({ "operations": [{ "type": "flip", "direction": "vertical" }] }),
    )
    .problem(404, "not_found");
}

#[test]
fn background_removal_as_an_edit() {
    let s = shared();
    let g = s.generate(json!({ "prompt": "minimalist logo of a fox", "width": 256, "height": 256, "seed": 2, "output_format": "jpeg" }));
    let id = g["images"][0]["id"].as_str().unwrap();
    let r = s.post_json(
        &format!("/v1/images/{id}/edits"),
        &json!({ "operations": [{ "type": "remove_background", "tolerance": 0.2 }] }),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let edited = r.json();
    assert_eq!(edited["format"], "png", "transparency needs PNG even from a JPEG source");
    let (_, img) = s.download(&edited);
    assert_eq!(img.to_rgba8().get_pixel(0, 0)[3], 0);
}

#[test]
fn a_callers_own_provider_key_is_used_once_and_never_stored() {
    let (url, seen) = fixture_http_server("hello");
    let server = probe_server(true, &["http://127.0.0.1:*"]);
    let client = reqwest::blocking::Client::new();
    let r = client
        .post(format!("{}/v1/generations", server.base))
        .header("Prefer", "wait=30")
        .header("X-Provider-Key", "caller-key-0042")
        .json(&json!({ "prompt": url, "model": "probe/fetch", "width": 64, "height": 64 }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let g: serde_json::Value = r.json().unwrap();
    assert_eq!(g["status"], "succeeded", "{g}");
    let request = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        request.to_lowercase().contains("authorization: bearer caller-key-0042"),
        "the caller's key replaced the operator's"
    );
    assert!(!g.to_string().contains("caller-key-0042"));
    let stored = crate::backends::stored_text(&server.config);
    let needle = b"caller-key-0042";
    assert!(!stored.is_empty() && !stored.windows(needle.len()).any(|w| w == needle), "never stored");
}

/// Every log line of a generation — the creating request's, the worker's and the plugin's own
/// `log` calls — is a JSON object carrying the creating request's `X-Request-Id` and the
/// generation's id.
#[test]
fn every_log_line_of_a_generation_carries_its_request_and_generation_ids() {
    let logs = crate::captured_logs();
    let server = probe_server(false, &[]);
    let r = server.post_json_with(
        "/v1/generations",
        &[("X-Request-Id", "trace-logs-7"), ("Prefer", "wait=60")],
        &json!({ "prompt": "no fetch", "model": "probe/read-secret", "width": 64, "height": 64 }),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.header("x-request-id"), Some("trace-logs-7"));
    let id = r.json()["id"].as_str().unwrap().to_string();
    // The worker's last line may come just after the answer.
    let text = || String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    wait_for(|| text().lines().any(|l| l.contains(&id) && l.contains("generation finished")), "the finished line");
    let lines: Vec<serde_json::Value> = text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect();
    let of_generation: Vec<&serde_json::Value> = lines.iter().filter(|l| l.to_string().contains(&id)).collect();
    for line in &of_generation {
        assert_eq!(line["request_id"], "trace-logs-7", "{line}");
        assert_eq!(line["generation_id"], id.as_str(), "{line}");
    }
    let said = |message: &str| of_generation.iter().find(|l| l["message"] == message).copied();
    assert!(said("generation queued").is_some(), "the request's line: {of_generation:?}");
    assert!(said("generation finished").is_some(), "the worker's line: {of_generation:?}");
    let plugin = said("probe: model read-secret").expect("the plugin's own log line");
    assert_eq!(plugin["plugin"], "probe");
    assert_eq!(plugin["level"], "INFO");
    let access = lines.iter().find(|l| l["request_id"] == "trace-logs-7" && l["message"] == "request");
    assert_eq!(access.expect("the access log line")["status"], 200);
}
