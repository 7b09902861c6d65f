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
    // Far more than fits in the sockets' buffers: the client still reads the answer.
    let r = server.post_raw("/v1/generations", "application/json", &vec![b' '; 600_000]);
    let problem = r.problem(413, "payload_too_large");
    assert!(problem["detail"].as_str().unwrap().contains("1024 bytes"), "{problem}");
    assert_eq!(r.header("connection"), Some("close"));
}

/// An answer read off a raw socket: status, lower-cased headers, body.
struct RawAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn problem(&self) -> serde_json::Value {
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Send `head` (request line and headers, without the blank line), then `body` in pieces,
/// then optionally half-close; read the answer until the server closes the connection.
fn raw_request(base: &str, head: &str, body: &[&[u8]], half_close: bool) -> RawAnswer {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    stream.set_write_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    write!(stream, "{head}\r\nhost: {addr}\r\n\r\n").unwrap();
    for piece in body {
        stream.write_all(piece).expect("the server reads the whole body (no reset)");
    }
    if half_close {
        stream.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("the answer arrives whole, then the server closes");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete answer head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    RawAnswer { status, headers, body: raw[split + 4..].to_vec() }
}

/// A client streaming an oversized body gets the 413 problem, whether it declared the size
/// or sends it chunked, and whether or not it finishes sending: never a reset connection.
#[test]
fn streamed_oversized_bodies_get_the_413_not_a_reset() {
    let server = TestServer::start(|c| c.limits.max_body_bytes = 4096);
    let post = "POST /v1/generations HTTP/1.1\r\ncontent-type: application/json";
    let piece = vec![b' '; 16 * 1024];
    let pieces: Vec<&[u8]> = std::iter::repeat_n(piece.as_slice(), 32).collect();

    // Declared: 512 KiB over a 4 KiB limit, sent in full.
    let r = raw_request(&server.base, &format!("{post}\r\ncontent-length: {}", 32 * piece.len()), &pieces, false);
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    let problem = r.problem();
    assert_eq!(problem["code"], "payload_too_large");
    assert!(problem["detail"].as_str().unwrap().contains("4096 bytes"), "{problem}");

    // Chunked, no Content-Length: 512 KiB in 16 KiB chunks.
    let chunk = [format!("{:x}\r\n", piece.len()).into_bytes(), piece.clone(), b"\r\n".to_vec()].concat();
    let mut chunks: Vec<&[u8]> = std::iter::repeat_n(chunk.as_slice(), 32).collect();
    chunks.push(b"0\r\n\r\n");
    let r = raw_request(&server.base, &format!("{post}\r\ntransfer-encoding: chunked"), &chunks, false);
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.problem()["code"], "payload_too_large");

    // A Content-Length that promises 1 MiB from a client that sends 20 KiB and stops.
    let r = raw_request(&server.base, &format!("{post}\r\ncontent-length: 1048576"), &pieces[..1], true);
    assert_eq!(r.status, 413);
    assert_eq!(r.problem()["code"], "payload_too_large");

    // A chunked body within the limit is read and handled as usual.
    let body = json!({ "prompt": "chunked but small", "width": 64, "height": 64 }).to_string();
    let small = [format!("{:x}\r\n", body.len()).into_bytes(), body.into_bytes(), b"\r\n0\r\n\r\n".to_vec()].concat();
    let r = raw_request(
        &server.base,
        &format!("{post}\r\ntransfer-encoding: chunked\r\nconnection: close"),
        &[small.as_slice()],
        false,
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
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
