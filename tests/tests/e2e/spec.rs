//! The committed spec matches the code and what the server serves.

use crate::shared;

const REGENERATE: &str = "cargo run -q -p easel -- openapi > openapi/openapi.json";

#[test]
fn committed_spec_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = easel::api::spec_json();
    assert!(committed == generated, "openapi/openapi.json is out of date; regenerate it with:\n\n    {REGENERATE}\n");
    let served = shared().get("/openapi.json");
    assert_eq!(served.status, 200);
    assert_eq!(String::from_utf8(served.bytes).unwrap(), generated, "served spec differs from `easel openapi`");
}

#[test]
fn spec_documents_every_operation_with_errors() {
    let spec: serde_json::Value = serde_json::from_str(&easel::api::spec_json()).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert!(spec.get("servers").is_none() || spec["servers"] == serde_json::json!([]), "no host-dependent fields");
    let paths = spec["paths"].as_object().unwrap();
    for p in
        ["/v1/generations", "/v1/generations/{id}", "/v1/images/{id}", "/v1/images/{id}/file", "/v1/models", "/health"]
    {
        assert!(paths.contains_key(p), "missing {p}");
    }
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["operationId"].is_string(), "{method} {path} has no operationId");
            assert!(op["description"].is_string() || op["summary"].is_string(), "{method} {path} is undocumented");
        }
    }
    let create = &paths["/v1/generations"]["post"];
    assert!(create["responses"]["default"]["content"]["application/problem+json"].is_object(), "{create}");
}
