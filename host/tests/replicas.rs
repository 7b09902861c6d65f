//! Two `easel serve` processes share one database and one blob store: on SQLite + a local
//! directory by default, on PostgreSQL + S3 when the suite runs with `TEST_DATABASE_URL` and
//! `TEST_BLOBS=s3` (see `tests/support/backends.rs`).
//!
//! 200 generations are spread over both replicas; one replica is killed with SIGKILL while it
//! holds claimed jobs. Every generation must finish exactly once, the dead replica's jobs must
//! be finished by the other after their lease expires, and a generation made on one replica
//! must be readable, downloadable and streamable on the other.
//!
//! Accounts: users and keys made with the operator CLI (`easel user create`, `easel key
//! create`, `easel user set-tier`) work on both replicas, a daily image quota holds across
//! them under concurrent requests, and no password or key secret reaches a log.

#[path = "../../tests/support/backends.rs"]
mod backends;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use easel::config::{Config, Overrides};
use serde_json::{Value, json};

struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `easel` configured like [`spawn`]'s replicas (database, blobs), with `args`.
fn easel(config: &Config, data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_easel"));
    cmd.args(args)
        .env("EASEL_DATA_DIR", data_dir)
        .env("EASEL_DATABASE_URL", config.database_url())
        .env("EASEL_JOBS__WORKERS", "3")
        .env("EASEL_JOBS__LEASE_SECONDS", "10")
        .env("EASEL_JOBS__POLL_INTERVAL_MS", "100")
        .env("EASEL_PLUGINS__WATCH", "false")
        .env("EASEL_LOG_FORMAT", "json");
    if let Some(url) = &config.blobs.url {
        cmd.env("EASEL_BLOBS__URL", url);
    }
    if let Some(endpoint) = &config.blobs.s3_endpoint {
        cmd.env("EASEL_BLOBS__S3_ENDPOINT", endpoint)
            .env("EASEL_BLOBS__S3_PATH_STYLE", config.blobs.s3_path_style.to_string())
            .env("EASEL_BLOBS__S3_ACCESS_KEY_ID", backends::S3_ACCESS_KEY)
            .env("EASEL_BLOBS__S3_SECRET_ACCESS_KEY", backends::S3_SECRET_KEY);
    }
    cmd
}

/// Start `easel serve` configured through the environment, as an operator would.
fn spawn(config: &Config, data_dir: &Path, log: &Path) -> Replica {
    spawn_with(config, data_dir, log, &[])
}

/// [`spawn`] with extra environment variables.
fn spawn_with(config: &Config, data_dir: &Path, log: &Path, env: &[(&str, &str)]) -> Replica {
    let mut cmd = easel(config, data_dir, &["serve"]);
    cmd.env("EASEL_LISTEN", "127.0.0.1:0").stdout(Stdio::null()).stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start easel serve");
    // In JSON mode the address is in the log (`address`), and standard output stays empty.
    let deadline = Instant::now() + Duration::from_secs(120);
    let addr = loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let listening = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|l| l["address"].as_str().map(str::to_string));
        if let Some(addr) = listening {
            break addr;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("easel serve exited ({status}) before listening; log: {text}");
        }
        assert!(Instant::now() < deadline, "easel serve did not start in 120 s; log: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    Replica { child, base: format!("http://{addr}") }
}

/// The JSON lines of a replica's log; panics on a line that is not a JSON object (a final
/// line cut short by SIGKILL excepted).
fn json_lines(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) if v.is_object() => v,
            _ => panic!("not a JSON line in {}: {l:?}", log.display()),
        })
        .collect()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

fn get_json(base: &str, path: &str) -> Value {
    let r = client().get(format!("{base}{path}")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    r.json().unwrap()
}

fn create(base: &str, prompt: &str, seed: u32, side: u32) -> String {
    let r = client()
        .post(format!("{base}/v1/generations"))
        .json(&json!({ "prompt": prompt, "width": side, "height": side, "seed": seed }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    r.json::<Value>().unwrap()["id"].as_str().unwrap().to_string()
}

fn is_final(g: &Value) -> bool {
    ["succeeded", "failed", "canceled"].contains(&g["status"].as_str().unwrap())
}

/// One database and blob store for several processes.
fn shared_config(shared: &Path) -> Config {
    let mut config = Config::load(None, &Overrides::default()).unwrap();
    config.data_dir = shared.to_path_buf();
    backends::configure(&mut config, shared);
    if config.blobs.url.is_none() {
        // SQLite: both processes use the one file and the one blob directory.
        config.database_url = Some(easel::config::Secret::new(config.database_url()));
        config.blobs.url = Some(format!("file://{}", shared.join("blobs").display()));
    }
    config
}

/// Run an operator command; its standard output, trimmed. Panics with its stderr on failure.
fn operator(config: &Config, data_dir: &Path, args: &[&str], stdin: Option<&str>) -> (String, String) {
    use std::io::Write;
    let mut cmd = easel(config, data_dir, args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).trim().to_string(), String::from_utf8_lossy(&out.stderr).to_string());
    assert!(out.status.success(), "easel {args:?} failed: {stderr}");
    (stdout, stderr)
}

#[test]
fn accounts_from_the_cli_and_quotas_that_hold_across_replicas() {
    let shared = tempfile::tempdir().unwrap();
    let config = shared_config(shared.path());
    let cli_dir = tempfile::tempdir().unwrap();
    let (root_id, _) =
        operator(&config, cli_dir.path(), &["user", "create", "--email", "root@example.com", "--tier", "admin"], None);
    assert!(root_id.starts_with("usr_"), "{root_id}");
    let (root_key, _) = operator(&config, cli_dir.path(), &["key", "create", "--user", "root@example.com"], None);
    let password = "a long and secret password 42";
    let (user_id, _) = operator(
        &config,
        cli_dir.path(),
        &["user", "create", "--email", "Quota@Example.com", "--password-stdin"],
        Some(&format!("{password}\n")),
    );
    let (user_key, key_stderr) =
        operator(&config, cli_dir.path(), &["key", "create", "--user", &user_id, "--name", "ci"], None);
    assert!(user_key.starts_with("esk_") && !key_stderr.contains(&user_key));
    let (listed, _) = operator(&config, cli_dir.path(), &["user", "list"], None);
    assert!(listed.contains("quota@example.com\tfree") && listed.contains("root@example.com\tadmin"), "{listed}");

    let env = [
        ("EASEL_AUTH__IP_ALLOWLIST", "[]"),
        ("EASEL_TIERS__FREE__IMAGES_PER_DAY", "6"),
        ("EASEL_TIERS__FREE__MAX_CONCURRENT", "100"),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (log_a, log_b) = (shared.path().join("quota-a.log"), shared.path().join("quota-b.log"));
    let a = spawn_with(&config, dir_a.path(), &log_a, &env);
    let b = spawn_with(&config, dir_b.path(), &log_b, &env);

    // Sign in on A, use the session on B (the signing key is shared through the database).
    let login = client()
        .post(format!("{}/v1/auth/login", a.base))
        .json(&json!({"email": "quota@example.com", "password": password}))
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let session = login.json::<Value>().unwrap()["token"].as_str().unwrap().to_string();
    let me = client().get(format!("{}/v1/me", b.base)).bearer_auth(&session).send().unwrap();
    assert_eq!(me.json::<Value>().unwrap()["id"], user_id.as_str());

    // 12 concurrent single-image requests, alternating replicas, against 6 images a day.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let base = if i % 2 == 0 { a.base.clone() } else { b.base.clone() };
                let key = user_key.clone();
                scope.spawn(move || {
                    client()
                        .post(format!("{base}/v1/generations"))
                        .bearer_auth(key)
                        .json(&json!({"prompt": format!("quota {i}"), "width": 64, "height": 64}))
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 6, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 6, "{statuses:?}");

    // The operator moves the user to pro; the admin key works on both replicas.
    operator(&config, cli_dir.path(), &["user", "set-tier", "quota@example.com", "pro"], None);
    for base in [&a.base, &b.base] {
        let users = client().get(format!("{base}/v1/admin/users")).bearer_auth(&root_key).send().unwrap();
        assert_eq!(users.status().as_u16(), 200);
        let users = users.json::<Value>().unwrap();
        assert!(
            users["items"].as_array().unwrap().iter().any(|u| u["id"] == user_id.as_str() && u["tier"] == "pro"),
            "{users}"
        );
    }
    // PostgreSQL relays the change to every replica at once; SQLite processes sharing a file
    // see it when their credential cache expires (5 s).
    let sqlite = config.database_kind().unwrap() == easel::config::DatabaseKind::Sqlite;
    std::thread::sleep(if sqlite { Duration::from_secs(6) } else { Duration::from_millis(300) });
    for base in [&a.base, &b.base] {
        let r = client()
            .post(format!("{base}/v1/generations"))
            .bearer_auth(&user_key)
            .json(&json!({"prompt": "pro now", "width": 64, "height": 64}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{base}");
    }

    // No password or key secret in any log.
    drop((a, b));
    for log in [&log_a, &log_b] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.contains("request"), "the log has request lines");
        for secret in [password, user_key.as_str(), root_key.as_str(), session.as_str()] {
            assert!(!text.contains(secret), "a secret reached {}", log.display());
        }
    }
}

#[test]
fn two_replicas_share_the_queue_and_survive_a_sigkill() {
    let shared = tempfile::tempdir().unwrap();
    let config = shared_config(shared.path());
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = spawn(&config, dir_a.path(), &shared.path().join("a.log"));
    let b = spawn(&config, dir_b.path(), &shared.path().join("b.log"));

    // Made on A, streamed, read and downloaded on B.
    let id = create(&a.base, "a lighthouse seen from the other replica", 11, 512);
    let stream = client().get(format!("{}/v1/generations/{id}/events", b.base)).send().unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let body = stream.text().unwrap();
    assert!(body.contains("event: succeeded"), "the stream on B ends with A's result: {body}");
    let on_b = get_json(&b.base, &format!("/v1/generations/{id}"));
    assert_eq!(on_b["status"], "succeeded");
    let url = on_b["images"][0]["url"].as_str().unwrap();
    let from_a = client().get(format!("{}{url}", a.base)).send().unwrap().bytes().unwrap();
    let from_b = client().get(format!("{}{url}", b.base)).send().unwrap().bytes().unwrap();
    assert!(from_b.starts_with(b"\x89PNG") && from_a == from_b, "the same file from either replica");

    // A retry that lands on the other replica with the same Idempotency-Key gets the same
    // generation.
    let body = json!({ "prompt": "retried through the balancer", "width": 64, "height": 64 });
    let send = |base: &str| {
        let r = client()
            .post(format!("{base}/v1/generations"))
            .header("Idempotency-Key", "retry-7")
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        r.json::<Value>().unwrap()["id"].as_str().unwrap().to_string()
    };
    let retried_id = send(&a.base);
    assert_eq!(send(&b.base), retried_id, "the key is shared by the replicas");

    // 200 generations, alternating replicas, submitted from 4 threads.
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u32)
            .map(|t| {
                let (a, b) = (a.base.clone(), b.base.clone());
                scope.spawn(move || {
                    (0..50u32)
                        .map(|i| {
                            let n = t * 50 + i;
                            create(if n % 2 == 0 { &a } else { &b }, &format!("replica load {n}"), n, 256)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 200);

    // Kill A while the queue is still busy (so its workers hold claimed jobs).
    let started = Instant::now();
    loop {
        let done = get_json(&b.base, "/v1/generations?status=succeeded&limit=100")["items"].as_array().unwrap().len();
        if done >= 40 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the replicas make progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    let queued = get_json(&b.base, "/v1/generations?status=queued&limit=1")["items"].as_array().unwrap().len();
    a.child.kill().unwrap(); // SIGKILL: no graceful shutdown, leases left behind.
    a.child.wait().unwrap();
    assert_eq!(queued, 1, "work was still queued when A died, so A's workers held jobs");

    // B finishes everything, A's claimed jobs after their 10 s lease.
    let mut results = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    for id in &ids {
        loop {
            let g = get_json(&b.base, &format!("/v1/generations/{id}"));
            if is_final(&g) {
                results.insert(id.clone(), g);
                break;
            }
            assert!(Instant::now() < deadline, "{id} never finished: {g}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let mut image_ids = HashSet::new();
    let mut retried = 0;
    for (id, g) in &results {
        assert_eq!(g["status"], "succeeded", "{id}: {g}");
        let images = g["images"].as_array().unwrap();
        assert_eq!(images.len(), 1, "{id} stored exactly one image");
        image_ids.insert(images[0]["id"].as_str().unwrap().to_string());
        let attempts = g["attempts"].as_i64().unwrap();
        assert!((1..=2).contains(&attempts), "{id} ran at most twice: {attempts}");
        retried += usize::from(attempts == 2);
    }
    assert_eq!(image_ids.len(), 200);
    assert!(
        (1..=3).contains(&retried),
        "the jobs A held when it died (3 workers) were re-run by B, and only those: {retried}"
    );
    while !is_final(&get_json(&b.base, &format!("/v1/generations/{retried_id}"))) {
        assert!(Instant::now() < deadline, "{retried_id} never finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    // One stored object per image (plus the first two generations'): none stored twice.
    let blobs = backends::stored_blobs(&config);
    assert_eq!(blobs.len(), 202, "{blobs:?}");
    let a_log = std::fs::read_to_string(shared.path().join("a.log")).unwrap();
    let b_log = std::fs::read_to_string(shared.path().join("b.log")).unwrap();
    assert!(a_log.contains("generation finished") && b_log.contains("generation finished"), "both did work");

    // Every line of both logs is JSON, and every line of a generation carries the id of the
    // request that created it, also on the replica whose worker ran it.
    let (a_lines, b_lines) = (json_lines(&shared.path().join("a.log")), json_lines(&shared.path().join("b.log")));
    let created_by: HashMap<&str, &str> = a_lines
        .iter()
        .chain(&b_lines)
        .filter(|l| l["message"] == "generation queued")
        .map(|l| (l["generation_id"].as_str().unwrap(), l["request_id"].as_str().expect("queued with a request id")))
        .collect();
    assert_eq!(created_by.len(), 202, "each generation was queued once");
    let mut across = 0;
    for (lines, other) in [(&a_lines, &b_lines), (&b_lines, &a_lines)] {
        for line in lines.iter().filter(|l| l["generation_id"].is_string()) {
            let generation = line["generation_id"].as_str().unwrap();
            assert_eq!(line["request_id"].as_str(), Some(created_by[generation]), "{line}");
            across += usize::from(
                line["message"] == "generation finished"
                    && other.iter().any(|q| q["message"] == "generation queued" && q["generation_id"] == generation),
            );
        }
    }
    assert!(across > 0, "some generations were queued on one replica and finished on the other");
}
