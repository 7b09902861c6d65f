//! Sustained generations per second with the bundled `local` provider, at 1 and 2 replicas
//! sharing one database and one blob directory, on SQLite and (with
//! `BENCH_DATABASE_URL=postgres://…`, a server it may create databases on) PostgreSQL.
//!
//! Run: `cargo bench -p easel --bench throughput` (add `BENCH_DATABASE_URL=…` for PostgreSQL).
//!
//! The replicas are full servers (`easel::server::start`) in this process, each with 2
//! workers, fed over loopback HTTP by 16 concurrent clients that submit 240 generations of
//! 512×512 PNGs round-robin; the clock runs from the first submit to the last success.
//! On a 2-core machine two replicas share the same two cores, so this measures the overhead
//! of coordination rather than added capacity.

#[path = "../../tests/support/backends.rs"]
mod backends;

use std::time::{Duration, Instant};

use easel::config::{Config, Overrides, Secret};

const JOBS: usize = 240;

fn replica_config(shared: &std::path::Path, own: &std::path::Path, database_url: &str) -> Config {
    let mut c = Config::load(None, &Overrides::default()).unwrap();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.data_dir = own.to_path_buf();
    c.database_url = Some(Secret::new(database_url));
    c.blobs.url = Some(format!("file://{}", shared.join("blobs").display()));
    c.jobs.workers = 2;
    c.jobs.poll_interval_ms = 200;
    c.plugins.watch = false;
    c
}

async fn run(replicas: usize, database_url: &str) -> f64 {
    let shared = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..replicas).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = Vec::new();
    for dir in &dirs {
        servers.push(easel::server::start(replica_config(shared.path(), dir.path(), database_url)).await.unwrap());
    }
    let bases: Vec<String> = servers.iter().map(|s| format!("http://{}", s.addr)).collect();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let submitters: Vec<_> = (0..16)
        .map(|t| {
            let (client, bases) = (client.clone(), bases.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in (t..JOBS).step_by(16) {
                    let body = serde_json::json!({ "prompt": format!("throughput {i}"), "width": 512, "height": 512, "seed": i });
                    let r = client.post(format!("{}/v1/generations", bases[i % bases.len()])).json(&body).send().await.unwrap();
                    assert_eq!(r.status().as_u16(), 202);
                    ids.push(r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string());
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for s in submitters {
        ids.extend(s.await.unwrap());
    }
    let app = &servers[0].app;
    for id in &ids {
        let view =
            app.wait_for_generation(&easel::auth::Principal::system(), id, Duration::from_secs(600)).await.unwrap();
        assert_eq!(view.row.status, "succeeded");
    }
    let secs = started.elapsed().as_secs_f64();
    for s in servers {
        s.stop().await;
    }
    JOBS as f64 / secs
}

fn main() {
    // `cargo test --benches` runs benches with `--bench`; plain `cargo test` passes nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let sqlite_dir = tempfile::tempdir().unwrap();
    let postgres = std::env::var("BENCH_DATABASE_URL").ok();
    let names: Vec<&str> = if postgres.is_some() { vec!["sqlite", "postgres"] } else { vec!["sqlite"] };
    println!("{:<10} {:>9} {:>14}", "database", "replicas", "generations/s");
    for name in names {
        for replicas in [1, 2] {
            // A fresh database for each run.
            let url = match &postgres {
                Some(admin) if name == "postgres" => {
                    let db = format!("easel_tp_{}", easel::service::new_id("x").trim_start_matches("x_"));
                    backends::postgres_database(admin, &db)
                }
                _ => format!("sqlite://{}", sqlite_dir.path().join(format!("easel-{replicas}.db")).display()),
            };
            let rate = rt.block_on(run(replicas, &url));
            println!("{name:<10} {replicas:>9} {rate:>14.1}");
        }
    }
}
