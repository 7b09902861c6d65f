//! Generating, polling, downloading, determinism, exact ratios, listing, restart.

use serde_json::json;

use crate::{TestServer, shared, small};

#[test]
fn wait_returns_a_finished_generation_with_a_real_png() {
    let s = shared();
    let g = s.generate(json!({ "prompt": "a sunset over the ocean", "seed": 42 }));
    assert_eq!(g["status"], "succeeded", "{g}");
    assert!(g["id"].as_str().unwrap().starts_with("gen_"));
    assert_eq!(g["model"], "local/procedural");
    assert_eq!((g["width"].as_u64(), g["height"].as_u64()), (Some(1024), Some(1024)));
    assert_eq!(g["progress"], 100.0);
    assert_eq!(g["attempts"], 1);
    assert!(g["timings"]["provider_ms"].is_u64(), "{g}");
    let images = g["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    let image = &images[0];
    assert!(image["id"].as_str().unwrap().starts_with("img_"));
    assert_eq!(image["seed"], 42);
    assert_eq!(image["format"], "png");
    let (resp, img) = s.download(image);
    assert_eq!(resp.header("content-type"), Some("image/png"));
    assert_eq!(&resp.bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(resp.bytes.len() as u64, image["bytes"].as_u64().unwrap());
    assert_eq!((img.width(), img.height()), (1024, 1024));
    // Not a flat colour: a procedural picture has many distinct pixels.
    let rgba = img.to_rgba8();
    let distinct: std::collections::HashSet<_> = rgba.pixels().step_by(97).map(|p| p.0).collect();
    assert!(distinct.len() > 50, "only {} distinct colours", distinct.len());
    // The image record is readable on its own.
    let rec = s.get(&format!("/v1/images/{}", image["id"].as_str().unwrap()));
    assert_eq!(rec.status, 200);
    assert_eq!(rec.json()["generation_id"], g["id"]);
}

#[test]
fn async_create_then_poll() {
    let s = shared();
    let r = s.post_json("/v1/generations", &small("forest at night"));
    assert_eq!(r.status, 202);
    let g = r.json();
    assert!(["queued", "running", "succeeded"].contains(&g["status"].as_str().unwrap()), "{g}");
    let id = g["id"].as_str().unwrap();
    assert_eq!(r.header("location"), Some(format!("/v1/generations/{id}").as_str()));
    let done = s.poll(id);
    assert_eq!(done["status"], "succeeded", "{done}");
    let (_, img) = s.download(&done["images"][0]);
    assert_eq!((img.width(), img.height()), (128, 128));
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let s = shared();
    let body = |seed: u32| json!({ "prompt": "neon city", "negative_prompt": "blur", "width": 256, "height": 192, "seed": seed });
    let a = s.generate(body(1234));
    let b = s.generate(body(1234));
    let c = s.generate(body(1235));
    let bytes = |g: &serde_json::Value| s.download(&g["images"][0]).0.bytes;
    assert_eq!(bytes(&a), bytes(&b), "same seed and request must give the same file");
    assert_ne!(bytes(&a), bytes(&c), "another seed must give another image");
}

#[test]
fn custom_ratios_are_exact() {
    let s = shared();
    for (ratio, w, h) in [("2:7", 2u64, 7u64), ("11:18", 11, 18), ("21:9", 7, 3), ("9:7", 9, 7)] {
        let g = s.generate(json!({ "prompt": "mountains", "aspect_ratio": ratio, "seed": 1 }));
        assert_eq!(g["status"], "succeeded", "{g}");
        let (gw, gh) = (g["width"].as_u64().unwrap(), g["height"].as_u64().unwrap());
        assert_eq!(gw * h, gh * w, "{ratio}: {gw}x{gh}");
        assert!((700_000..1_400_000).contains(&(gw * gh)), "{ratio}: about one megapixel, got {gw}x{gh}");
        let (_, img) = s.download(&g["images"][0]);
        assert_eq!((u64::from(img.width()), u64::from(img.height())), (gw, gh));
    }
}

#[test]
fn sizes_presets_and_explicit() {
    let s = shared();
    let g = s.generate(json!({ "prompt": "x", "size": "landscape_16_9" }));
    assert_eq!(
        (g["width"].as_u64(), g["height"].as_u64(), g["aspect_ratio"].as_str()),
        (Some(1024), Some(576), Some("16:9"))
    );
    let g = s.generate(json!({ "prompt": "x", "size": "300x200" }));
    assert_eq!((g["width"].as_u64(), g["height"].as_u64()), (Some(300), Some(200)));
    let g = s.generate(json!({ "prompt": "x", "width": 4096, "height": 64 }));
    let (_, img) = s.download(&g["images"][0]);
    assert_eq!((img.width(), img.height()), (4096, 64));
}

#[test]
fn several_images_get_consecutive_seeds() {
    let s = shared();
    let g = s.generate(json!({ "prompt": "abstract", "n": 3, "seed": 4294967295u64, "width": 96, "height": 96 }));
    let seeds: Vec<_> = g["images"].as_array().unwrap().iter().map(|i| i["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, vec![4294967295, 0, 1]);
    let files: std::collections::HashSet<_> =
        g["images"].as_array().unwrap().iter().map(|i| s.download(i).0.bytes).collect();
    assert_eq!(files.len(), 3, "each image differs");
}

#[test]
fn converts_to_jpeg_and_webp_on_the_fly() {
    let s = shared();
    let g = s.generate(small("desert"));
    let url = g["images"][0]["url"].as_str().unwrap();
    for (format, mime) in [("jpeg", "image/jpeg"), ("webp", "image/webp"), ("png", "image/png")] {
        let r = s.get(&format!("{url}?format={format}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(mime));
        let img = image::load_from_memory(&r.bytes).unwrap();
        assert_eq!((img.width(), img.height()), (128, 128));
    }
    let g = s.generate(json!({ "prompt": "desert", "width": 64, "height": 64, "output_format": "webp" }));
    assert_eq!(g["images"][0]["format"], "webp");
    let (r, _) = s.download(&g["images"][0]);
    assert_eq!(r.header("content-type"), Some("image/webp"));
}

#[test]
fn metadata_and_request_id_are_echoed() {
    let s = shared();
    let g = s.generate(json!({ "prompt": "x", "width": 64, "height": 64, "metadata": { "order": 17, "tag": "a" } }));
    assert_eq!(g["metadata"], json!({ "order": 17, "tag": "a" }));
    let r = s.get(&format!("/v1/generations/{}", g["id"].as_str().unwrap()));
    assert_eq!(r.json()["metadata"]["order"], 17);
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
    let client = reqwest::blocking::Client::new();
    let echoed = client.get(format!("{}/health", s.base)).header("x-request-id", "my-trace-1").send().unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "my-trace-1");
    let replaced =
        client.get(format!("{}/health", s.base)).header("x-request-id", "bad id with spaces").send().unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "bad id with spaces");
}

#[test]
fn listing_pages_newest_first_with_a_stable_cursor() {
    let s = shared();
    let mine: Vec<String> = (0..5)
        .map(|i| {
            s.create(json!({ "prompt": format!("page {i}"), "width": 64, "height": 64 }))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/generations?limit=2&cursor={c}"),
            None => "/v1/generations?limit=2".to_string(),
        };
        let page = s.get(&path).json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|g| g["id"].as_str().unwrap().to_string()));
        // Inserts while paging must not disturb what is left to read.
        if seen.len() == 2 {
            s.create(json!({ "prompt": "inserted while paging", "width": 64, "height": 64 }));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "strictly newest first, no duplicates");
    for id in &mine {
        assert!(seen.contains(id), "{id} missing from the listing");
    }
    for id in &mine {
        s.poll(id);
    }
    let done = s.get("/v1/generations?status=succeeded&limit=100").json();
    assert!(done["items"].as_array().unwrap().iter().all(|g| g["status"] == "succeeded"));
}

#[test]
fn restart_keeps_generations_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut first = TestServer::start_in(tmp.path(), |_| {});
    let g = first.generate(small("lighthouse"));
    let before = first.download(&g["images"][0]).0.bytes;
    first.stop();
    // Compiled plugins are cached on disk (wasmtime's cache: keyed by component hash and engine).
    let compiled = crate::backends::walk(&tmp.path().join("cache/plugins"))
        .into_iter()
        .filter(|p| p.extension().is_none() && !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    assert!(compiled.count() >= 4, "one cached compilation per bundled plugin");
    let second = TestServer::start_in(tmp.path(), |_| {});
    let again = second.get(&format!("/v1/generations/{}", g["id"].as_str().unwrap()));
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["images"], g["images"]);
    assert_eq!(second.download(&g["images"][0]).0.bytes, before);
}

#[test]
fn a_job_whose_worker_died_is_taken_up_again_after_its_lease() {
    let tmp = tempfile::tempdir().unwrap();
    // A server that made one generation gives us a valid stored request to replay.
    let mut first = TestServer::start_in(tmp.path(), |_| {});
    let template = first.generate(small("recovered"));
    first.stop();

    // Simulate a worker that claimed a job and died: the row is `running` with a lapsed lease.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let id = rt.block_on(async {
        let db = easel::db::connect(&first.config).await.unwrap();
        let mut row = db.get_generation(template["id"].as_str().unwrap()).await.unwrap().unwrap();
        row.id = easel::service::new_id("gen");
        row.status = "queued".into();
        row.attempts = 0;
        db.insert_generation(&row).await.unwrap();
        let now = easel::service::now_ms();
        let claim = easel::db::ClaimRequest {
            worker: "wrk_dead",
            replica: "rep_dead",
            now,
            lease_until: now - 1,
            replicas_seen_after: now,
        };
        let claimed = db.claim(&claim).await.unwrap().unwrap();
        assert_eq!(claimed.id, row.id);
        assert!(!db.heartbeat(&row.id, "wrk_other", now + 1000).await.unwrap(), "only the owner may renew");
        row.id
    });

    let second = TestServer::start_in(tmp.path(), |_| {});
    let g = second.poll(&id);
    assert_eq!(g["status"], "succeeded", "{g}");
    assert_eq!(g["attempts"], 2, "the dead worker's claim counts as an attempt");
    assert_eq!(g["images"].as_array().unwrap().len(), 1, "stored once");
    assert_eq!(second.download(&g["images"][0]).0.bytes, second.download(&template["images"][0]).0.bytes);
}

fn post_with_key(s: &TestServer, path: &str, key: &str, body: &serde_json::Value) -> crate::Resp {
    s.post_json_with(path, &[("Idempotency-Key", key)], body)
}

#[test]
fn an_idempotency_key_makes_retries_safe() {
    let s = shared();
    let key = easel::service::new_id("idem");
    let body = small("idempotent harbour");
    let first = post_with_key(s, "/v1/generations", &key, &body);
    assert_eq!(first.status, 202);
    let id = first.json()["id"].as_str().unwrap().to_string();
    // Retries, even concurrent ones, get the same generation.
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    post_with_key(s, "/v1/generations", &key, &body).json()["id"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|i| *i == id), "{ids:?} vs {id}");
    // Another body with the same key is refused, naming the header; nothing is stored.
    let other = post_with_key(s, "/v1/generations", &key, &small("something else"));
    let problem = other.problem(422, "validation_error");
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key", "{problem}");
    // A fresh key under concurrency: exactly one generation among racing first requests.
    let racing = easel::service::new_id("idem");
    let body = small("racing lighthouse");
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    post_with_key(s, "/v1/generations", &racing, &body).json()["id"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let listed = s.get("/v1/generations?limit=100").json();
    let n = listed["items"].as_array().unwrap().iter().filter(|g| g["prompt"] == "racing lighthouse").count();
    assert_eq!(n, 1, "one generation stored");
    // Keys are checked.
    post_with_key(s, "/v1/generations", &"k".repeat(256), &small("x")).problem(422, "validation_error");
    assert_eq!(s.poll(&id)["status"], "succeeded");
}

#[test]
fn an_idempotency_key_makes_edit_retries_safe() {
    let s = shared();
    let g = s.generate(small("edit me once"));
    let path = format!("/v1/images/{}/edits", g["images"][0]["id"].as_str().unwrap());
    let key = easel::service::new_id("idem");
    let body = serde_json::json!({ "operations": [{ "type": "flip", "direction": "horizontal" }] });
    let first = post_with_key(s, &path, &key, &body);
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.bytes));
    let again = post_with_key(s, &path, &key, &body);
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert_eq!(s.get(&path).json()["items"].as_array().unwrap().len(), 1, "one edit stored");
    let other = serde_json::json!({ "operations": [{ "type": "flip", "direction": "vertical" }] });
    post_with_key(s, &path, &key, &other).problem(422, "validation_error");
}
