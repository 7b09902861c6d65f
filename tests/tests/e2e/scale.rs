//! The pieces replicas rely on, on whichever backends the suite runs: job claims that never
//! hand one job to two workers, jobs pinned to the replica holding a caller's key, progress
//! streams, and blobs in a real S3-protocol server.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use easel::blobs::BlobStore;
use easel::config::{BlobsConfig, Config, Overrides, Secret};
use easel::db::ClaimRequest;
use serde_json::json;

use crate::backends::{self, S3_SECRET_KEY, queued_row as queued};
use crate::{TestServer, shared, small};

/// A database of its own on the suite's backend (SQLite file or PostgreSQL database).
pub(crate) fn fresh_db(rt: &tokio::runtime::Runtime) -> (Arc<dyn easel::db::Database>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::load(None, &Overrides::default()).unwrap();
    config.data_dir = tmp.path().to_path_buf();
    backends::configure(&mut config, tmp.path());
    (rt.block_on(easel::db::connect(&config)).unwrap(), tmp)
}

#[test]
fn concurrent_claims_never_hand_one_job_to_two_workers() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let (db, _tmp) = fresh_db(&rt);
    let now = easel::service::now_ms();
    let mut ids = HashSet::new();
    rt.block_on(async {
        for _ in 0..60 {
            let id = easel::service::new_id("gen");
            db.insert_generation(&queued(id.clone(), None, now)).await.unwrap();
            ids.insert(id);
        }
    });
    let claimed: Vec<String> = rt.block_on(async {
        let tasks: Vec<_> = (0..12)
            .map(|w| {
                let db = Arc::clone(&db);
                tokio::spawn(async move {
                    let worker = format!("wrk_t_{w}");
                    let mut mine = Vec::new();
                    loop {
                        let now = easel::service::now_ms();
                        let claim = ClaimRequest {
                            worker: &worker,
                            replica: "rep_t",
                            now,
                            lease_until: now + 60_000,
                            replicas_seen_after: now - 60_000,
                        };
                        match db.claim(&claim).await.unwrap() {
                            Some(job) => mine.push(job.id),
                            None => return mine,
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    assert_eq!(claimed.len(), 60, "every job claimed exactly once");
    assert_eq!(claimed.iter().cloned().collect::<HashSet<_>>(), ids);
}

#[test]
fn a_pinned_job_waits_for_its_live_replica_and_goes_to_others_when_it_is_gone() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (db, _tmp) = fresh_db(&rt);
    rt.block_on(async {
        let now = easel::service::now_ms();
        db.replica_seen("rep_a", now).await.unwrap();
        let id = easel::service::new_id("gen");
        db.insert_generation(&queued(id.clone(), Some("rep_a"), now - 3_600_000)).await.unwrap();
        let claim = |worker: &'static str, replica: &'static str, replicas_seen_after: i64| ClaimRequest {
            worker,
            replica,
            now,
            lease_until: now + 60_000,
            replicas_seen_after,
        };
        // However old the job, it waits for rep_a while rep_a is alive…
        assert!(db.claim(&claim("wrk_b", "rep_b", now - 1)).await.unwrap().is_none(), "rep_a is alive");
        // …and goes to rep_a itself at once.
        let job = db.claim(&claim("wrk_a", "rep_a", now - 1)).await.unwrap();
        assert_eq!(job.map(|j| j.id), Some(id));

        // Once rep_a has not been seen for long enough, or signed off, anyone may take its jobs.
        let id2 = easel::service::new_id("gen");
        db.insert_generation(&queued(id2.clone(), Some("rep_a"), now)).await.unwrap();
        assert!(db.claim(&claim("wrk_b", "rep_b", now - 1)).await.unwrap().is_none());
        let job = db.claim(&claim("wrk_b", "rep_b", now + 1)).await.unwrap();
        assert_eq!(job.map(|j| j.id), Some(id2), "rep_a not seen since");
        let id3 = easel::service::new_id("gen");
        db.insert_generation(&queued(id3.clone(), Some("rep_a"), now)).await.unwrap();
        db.replica_gone("rep_a").await.unwrap();
        let job = db.claim(&claim("wrk_b", "rep_b", now - 1)).await.unwrap();
        assert_eq!(job.map(|j| j.id), Some(id3), "rep_a signed off");
    });
}

/// Parse a whole `text/event-stream` body into (event name, data) pairs.
fn sse_events(body: &str) -> Vec<(String, serde_json::Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = "message".to_string();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            (!data.is_empty()).then(|| (name, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

#[test]
fn progress_streams_as_server_sent_events_until_the_end() {
    let s = shared();
    let g = s.create(json!({ "prompt": "a stream of light", "width": 512, "height": 512, "seed": 5 }));
    let id = g["id"].as_str().unwrap();
    let r = s.get(&format!("/v1/generations/{id}/events"));
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/event-stream"));
    let events = sse_events(&String::from_utf8(r.bytes).unwrap());
    let (last_name, last) = events.last().expect("at least the final event");
    assert_eq!(last_name, "succeeded", "{events:?}");
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["generation"]["images"][0]["width"], 512);
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|(n, e)| n == "progress" && e["id"] == id && e.get("generation").is_none())
    );
    let progress: Vec<f64> = events.iter().map(|(_, e)| e["progress"].as_f64().unwrap()).collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {progress:?}");

    // A finished generation streams just its final event; an unknown one is a 404.
    let again = sse_events(&String::from_utf8(s.get(&format!("/v1/generations/{id}/events")).bytes).unwrap());
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0, "succeeded");
    s.get("/v1/generations/gen_missing/events").problem(404, "not_found");
}

#[test]
fn blobs_round_trip_through_a_real_s3_server() {
    let s3 = backends::s3_server();
    let config =
        |secret: &str| BlobsConfig { s3_secret_access_key: Some(Secret::new(secret)), ..backends::s3_blobs_config("") };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = BlobStore::s3(&config(S3_SECRET_KEY), &s3.bucket, "round-trip").unwrap();
        store.ping().await.unwrap();
        store.put("images/gen_1/0.png", Bytes::from_static(b"\x89PNG...")).await.unwrap();
        assert_eq!(store.get("images/gen_1/0.png").await.unwrap(), Bytes::from_static(b"\x89PNG..."));
        assert!(s3.root.join(&s3.bucket).join("round-trip/images/gen_1/0.png").is_file(), "under the prefix");
        let missing = store.get("images/none.png").await.unwrap_err();
        assert_eq!(missing.code(), easel::error::ErrorCode::NotFound);

        let wrong = BlobStore::s3(&config("not-the-secret"), &s3.bucket, "").unwrap();
        assert!(wrong.ping().await.is_err(), "a bad signature is refused, and /ready would say so");
        assert!(wrong.get("round-trip/images/gen_1/0.png").await.is_err());
    });
}

#[test]
fn a_whole_generation_on_s3_blobs_and_the_suites_database() {
    // Whatever backends the suite runs on, this server stores its images in S3.
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |c| c.blobs = backends::s3_blobs_config("whole"));
    let g = server.generate(small("a bucket of paint"));
    let (file, _) = server.download(&g["images"][0]);
    let stored = backends::stored_blobs(&server.config);
    assert!(stored.iter().any(|p| std::fs::read(p).unwrap() == file.bytes), "the served file is the stored object");
    let ready = server.get("/ready");
    assert_eq!(ready.status, 200, "{}", String::from_utf8_lossy(&ready.bytes));
}

#[test]
fn replicas_hear_each_other_where_the_database_can_carry_it() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (db, _tmp) = fresh_db(&rt);
    let (other, _tmp2) = fresh_db(&rt);
    rt.block_on(async {
        match db.listen().await.unwrap() {
            // SQLite: nothing to listen to; other processes poll (and signalling is a no-op).
            None => {
                assert_eq!(db.kind(), easel::config::DatabaseKind::Sqlite);
                other.signal("ignored").await.unwrap();
            }
            // PostgreSQL: NOTIFY from any connection reaches every listener of the database.
            Some(mut rx) => {
                db.signal(r#"{"id":"gen_x"}"#).await.unwrap();
                let got = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap();
                assert_eq!(got.as_deref(), Some(r#"{"id":"gen_x"}"#));
            }
        }
    });
}

#[test]
fn a_websocket_follows_several_generations_to_their_end() {
    use tungstenite::Message;
    let s = shared();
    let a = s.create(json!({ "prompt": "first socket", "width": 256, "height": 256, "seed": 1 }))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = s.create(json!({ "prompt": "second socket", "width": 256, "height": 256, "seed": 2 }))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/v1/ws", s.base.replace("http://", "ws://"));
    let (mut socket, response) = tungstenite::connect(url).unwrap();
    assert_eq!(response.status().as_u16(), 101);
    for id in [&a, &b] {
        socket.send(Message::text(json!({ "action": "subscribe", "generation_id": id }).to_string())).unwrap();
    }
    socket.send(Message::text(json!({ "action": "subscribe", "generation_id": "gen_missing" }).to_string())).unwrap();
    socket.send(Message::text("not json")).unwrap();

    let mut finals = HashSet::new();
    let mut errors = Vec::new();
    while finals.len() < 2 || errors.len() < 2 {
        let msg = socket.read().unwrap();
        let Message::Text(text) = msg else { continue };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        match v["type"].as_str().unwrap() {
            "progress" => assert!(v["id"] == a.as_str() || v["id"] == b.as_str(), "{v}"),
            "succeeded" => {
                assert_eq!(v["generation"]["images"][0]["width"], 256, "{v}");
                finals.insert(v["id"].as_str().unwrap().to_string());
            }
            "error" => errors.push(v),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(finals, HashSet::from([a, b]));
    assert!(errors.iter().any(|e| e["code"] == "not_found" && e["generation_id"] == "gen_missing"), "{errors:?}");
    assert!(errors.iter().any(|e| e["code"] == "validation_error"), "{errors:?}");
    socket.close(None).unwrap();
}
