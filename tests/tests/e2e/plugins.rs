//! Misbehaving plugins are contained: the job fails with `plugin_error`, the server serves on.

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
    // Still serving, and the same plugin still works for a well-behaved call.
    assert_eq!(server.get("/health").status, 200);
    let ok = server.generate(json!({ "prompt": "x", "model": "misbehave/ok", "width": 64, "height": 64 }));
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let local = server.generate(json!({ "prompt": "x", "width": 64, "height": 64 }));
    assert_eq!(local["status"], "succeeded");
}
