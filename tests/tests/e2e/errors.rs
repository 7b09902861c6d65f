//! Bad input: every case is a 4xx problem+json naming the field; nothing is half-written.

use serde_json::json;

use crate::{TestServer, shared};

#[track_caller]
fn invalid(body: serde_json::Value, field: &str) {
    let s = shared();
    let r = s.post_json("/v1/generations", &body);
    let p = r.problem(422, "validation_error");
    let fields: Vec<_> =
        p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_string()).collect();
    assert!(fields.iter().any(|f| f == field), "expected field {field}, got {p}");
    assert!(p["detail"].as_str().unwrap().contains(field), "{p}");
}

#[test]
fn prompt_is_required_and_bounded() {
    invalid(json!({ "prompt": "" }), "prompt");
    invalid(json!({ "prompt": "   " }), "prompt");
    invalid(json!({}), "prompt");
    invalid(json!({ "prompt": "x".repeat(4001) }), "prompt");
    invalid(json!({ "prompt": "x", "negative_prompt": "y".repeat(2001) }), "negative_prompt");
}

#[test]
fn aspect_ratios_must_be_w_h_within_1_to_64() {
    for bad in ["16x9", "0:1", "65:1", "a:b", "", "1:2:3", "-1:1"] {
        invalid(json!({ "prompt": "x", "aspect_ratio": bad }), "aspect_ratio");
    }
    invalid(json!({ "prompt": "x", "aspect_ratio": "1:1", "size": "square" }), "aspect_ratio");
}

#[test]
fn unknown_model_and_n_out_of_range() {
    invalid(json!({ "prompt": "x", "model": "nope/nothing" }), "model");
    invalid(json!({ "prompt": "x", "model": "local" }), "model");
    invalid(json!({ "prompt": "x", "n": 0 }), "n");
    invalid(json!({ "prompt": "x", "n": 5 }), "n");
    invalid(json!({ "prompt": "x", "seed": -1 }), "seed");
    invalid(json!({ "prompt": "x", "seed": 4294967296u64 }), "seed");
    invalid(json!({ "prompt": "x", "steps": 0 }), "steps");
    invalid(json!({ "prompt": "x", "guidance_scale": 21.5 }), "guidance_scale");
    invalid(json!({ "prompt": "x", "quality": "ultra" }), "quality");
    invalid(json!({ "prompt": "x", "output_format": "gif" }), "output_format");
    invalid(json!({ "prompt": "x", "metadata": [1, 2] }), "metadata");
}

#[test]
fn absurd_sizes() {
    invalid(json!({ "prompt": "x", "width": 100000, "height": 100 }), "width");
    invalid(json!({ "prompt": "x", "width": 512, "height": 8 }), "height");
    invalid(json!({ "prompt": "x", "width": 512 }), "height");
    invalid(json!({ "prompt": "x", "size": "99999x2" }), "size");
    invalid(json!({ "prompt": "x", "size": "enormous" }), "size");
}

#[test]
fn malformed_and_mistyped_bodies() {
    let s = shared();
    let r = s.post_raw("/v1/generations", "application/json", b"{\"prompt\": ");
    let p = r.problem(400, "validation_error");
    assert_eq!(p["errors"][0]["field"], "body");
    let r = s.post_raw("/v1/generations", "application/json", b"");
    assert_eq!(r.problem(400, "validation_error")["errors"][0]["field"], "body");
    invalid(json!({ "prompt": "x", "n": "four" }), "n");
    invalid(json!({ "prompt": 5 }), "prompt");
    invalid(json!({ "prompt": "x", "aspectRatio": "1:1" }), "aspectRatio");
    let r = s.post_raw("/v1/generations", "text/plain", b"prompt=x");
    r.problem(415, "unsupported_media_type");
}

#[test]
fn unknown_ids_and_routes_are_404_problems() {
    let s = shared();
    s.get("/v1/generations/gen_doesnotexist").problem(404, "not_found");
    s.get("/v1/images/img_doesnotexist").problem(404, "not_found");
    s.get("/v1/images/img_doesnotexist/file").problem(404, "not_found");
    s.get("/v1/nothing-here").problem(404, "not_found");
}

#[test]
fn bad_query_parameters() {
    let s = shared();
    let p = s.get("/v1/generations?limit=0").problem(422, "validation_error");
    assert_eq!(p["errors"][0]["field"], "limit");
    let p = s.get("/v1/generations?limit=lots").problem(400, "validation_error");
    assert_eq!(p["errors"][0]["field"], "limit");
    let p = s.get("/v1/generations?status=done").problem(422, "validation_error");
    assert_eq!(p["errors"][0]["field"], "status");
    let p = s.get("/v1/generations?cursor=../../etc").problem(422, "validation_error");
    assert_eq!(p["errors"][0]["field"], "cursor");
    let g = s.generate(crate::small("x"));
    let url = g["images"][0]["url"].as_str().unwrap();
    let p = s.get(&format!("{url}?format=gif")).problem(422, "validation_error");
    assert_eq!(p["errors"][0]["field"], "format");
}

#[test]
fn invalid_requests_write_nothing() {
    let server = TestServer::start(|_| {});
    let r = server.post_json("/v1/generations", &json!({ "prompt": "", "n": 9 }));
    let p = r.problem(422, "validation_error");
    assert_eq!(p["errors"].as_array().unwrap().len(), 2, "every invalid field is listed: {p}");
    assert_eq!(server.get("/v1/generations").json()["items"], json!([]));
}

#[test]
fn oversized_bodies_are_413() {
    let server = TestServer::start(|c| c.limits.max_body_bytes = 1024);
    let r = server.post_json("/v1/generations", &json!({ "prompt": "x".repeat(4000) }));
    r.problem(413, "payload_too_large");
}

#[test]
fn non_ascii_idempotency_keys_are_refused_not_ignored() {
    let server = TestServer::start(|_| {});
    for key in ["café-1", "ключ"] {
        let r = server.post_json_with("/v1/generations", &[("Idempotency-Key", key)], &json!({ "prompt": "a fox" }));
        let p = r.problem(422, "validation_error");
        assert_eq!(p["errors"][0]["field"], "Idempotency-Key", "{p}");
    }
    // Nothing was created: a client retrying with such a key cannot end up with two.
    assert_eq!(server.get("/v1/generations").json()["items"], json!([]));
    let ok = server.post_json_with("/v1/generations", &[("Idempotency-Key", "cafe-1")], &json!({ "prompt": "a fox" }));
    assert_eq!(ok.status, 202, "{}", String::from_utf8_lossy(&ok.bytes));
}
