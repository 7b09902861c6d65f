//! Misbehaving plugins are contained: the job fails with `plugin_error`, the server serves on.

use std::time::Duration;

use serde_json::json;

use crate::{TestServer, install_fixture};

#[test]
fn loop_hog_and_trap_fail_their_jobs_not_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    install_fixture(&tmp.path().join("plugins"), "misbehave", "fixture_misbehave.wasm");
    // A broken plugin folder beside it is reported, not fatal.
    let broken = tmp.path().join("plugins/broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("plugin.toml"), "id = \"Broken!\"\n").unwrap();
    let server = TestServer::start_in(tmp.path(), |_| {});

    let models = server.get("/v1/models").json();
    assert!(models["items"].as_array().unwrap().iter().any(|m| m["id"] == "misbehave/ok"));

    let cases = [("misbehave/loop", "time limit"), ("misbehave/hog", "memory limit"), ("misbehave/trap", "crashed")];
    let ids: Vec<_> = cases
        .iter()
        .map(|(model, _)| {
            server.create(json!({ "prompt": "x", "model": model, "width": 64, "height": 64 }))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for ((model, words), id) in cases.iter().zip(&ids) {
        let g = server.poll(id);
        assert_eq!(g["status"], "failed", "{model}: {g}");
        assert_eq!(g["error"]["code"], "plugin_error", "{model}: {g}");
        let message = g["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{model}: {message:?} should mention {words:?}");
        assert!(g["images"].as_array().unwrap().is_empty());
    }
    // Each failure is counted by plugin, export and kind of error (never by message).
    let metrics = String::from_utf8(server.get("/metrics").bytes).unwrap();
    for error in ["time_limit", "memory_limit", "trap"] {
        let needle =
            format!("easel_plugin_call_errors_total{{error=\"{error}\",export=\"generate\",plugin=\"misbehave\"}}");
        assert!(metrics.contains(&needle), "{needle} missing from:\n{metrics}");
    }
    assert!(!metrics.contains("fixture trap"), "no message in a label");
    // Still serving, and the same plugin still works for a well-behaved call.
    assert_eq!(server.get("/health").status, 200);
    let ok = server.generate(json!({ "prompt": "x", "model": "misbehave/ok", "width": 64, "height": 64 }));
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let local = server.generate(json!({ "prompt": "x", "width": 64, "height": 64 }));
    assert_eq!(local["status"], "succeeded");
}

#[test]
fn cancel_stops_queued_and_running_jobs_and_keeps_them_canceled() {
    let tmp = tempfile::tempdir().unwrap();
    install_fixture(&tmp.path().join("plugins"), "misbehave", "fixture_misbehave.wasm");
    // Give the looping model 20 s, so the cancel surely lands while it runs.
    let manifest = tmp.path().join("plugins/misbehave/plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace("timeout_ms = 1500", "timeout_ms = 20000");
    std::fs::write(&manifest, text).unwrap();
    // One worker: a job that loops holds it while another waits.
    let server = TestServer::start_in(tmp.path(), |c| c.jobs.workers = 1);
    let running = server.create(json!({ "prompt": "x", "model": "misbehave/loop", "width": 64, "height": 64 }));
    let running = running["id"].as_str().unwrap().to_string();
    let queued = server.create(json!({ "prompt": "never drawn", "width": 64, "height": 64 }));
    let queued = queued["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.get(&format!("/v1/generations/{running}")).json()["status"] != "running" {
        assert!(std::time::Instant::now() < deadline, "the loop job starts");
        std::thread::sleep(Duration::from_millis(20));
    }

    let r = server.post_json(&format!("/v1/generations/{queued}/cancel"), &json!({}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["status"], "canceled");
    let r = server.post_json(&format!("/v1/generations/{running}/cancel"), &json!({}));
    assert_eq!(r.json()["status"], "canceled");

    // The loop is stopped at once (not after its 20 s limit): the one worker runs a new job.
    let started = std::time::Instant::now();
    let next = server.generate(json!({ "prompt": "after the cancel", "width": 64, "height": 64 }));
    assert_eq!(next["status"], "succeeded");
    assert!(started.elapsed() < Duration::from_secs(15), "the abandoned plugin call was stopped");
    for id in [&running, &queued] {
        let g = server.get(&format!("/v1/generations/{id}")).json();
        assert_eq!(g["status"], "canceled", "stays canceled: {g}");
        assert_eq!(g["images"], json!([]));
    }
    assert_eq!(server.get(&format!("/v1/generations/{queued}")).json()["attempts"], 0, "never started");
    let events = String::from_utf8(server.get(&format!("/v1/generations/{running}/events")).bytes).unwrap();
    assert!(events.contains("event: canceled"), "{events}");
    // Finished generations cannot be canceled; unknown ones are 404.
    server.post_json(&format!("/v1/generations/{running}/cancel"), &json!({})).problem(409, "invalid_state");
    server
        .post_json(&format!("/v1/generations/{}/cancel", next["id"].as_str().unwrap()), &json!({}))
        .problem(409, "invalid_state");
    server.post_json("/v1/generations/gen_missing/cancel", &json!({})).problem(404, "not_found");
}
