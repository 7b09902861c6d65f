//! Job claim latency with 1 000 and 100 000 queued jobs, on SQLite and (when
//! `BENCH_DATABASE_URL=postgres://…` names a server it may create databases on) PostgreSQL.
//!
//! Run: `cargo bench -p easel --bench claim` (add `BENCH_DATABASE_URL=…` for PostgreSQL).
//!
//! Each measured iteration is one claim (`ClaimRequest` through the `GenerationDb` trait,
//! exactly what a worker does); after it, untimed, the job is finished and a new one queued, so
//! the queue keeps its size while finished jobs pile up behind it.

#[path = "../../tests/support/backends.rs"]
mod backends;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use easel::config::{Config, Overrides, Secret};
use easel::db::{ClaimRequest, GenerationDb};

async fn filled(config: &Config, queued: usize) -> Arc<dyn GenerationDb> {
    let db = easel::db::connect(config).await.unwrap();
    let now = easel::service::now_ms();
    // Some history first: up to 1 000 jobs that are claimed and finished below, so exactly
    // `queued` stay queued.
    let history = (queued / 10).min(1000);
    let per_task = (queued + history) / 10; // exact for both sizes
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                for _ in 0..per_task {
                    db.insert_generation(&backends::queued_row(easel::service::new_id("gen"), None, now))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    for _ in 0..history {
        let now = easel::service::now_ms();
        let claim =
            ClaimRequest { worker: "wrk_hist", replica: "rep_b", now, lease_until: now + 1, replicas_seen_after: 0 };
        let job = db.claim(&claim).await.unwrap().unwrap();
        let done = easel::db::Outcome::Failed { code: "x".into(), message: "x".into() };
        db.finish(&job.id, "wrk_hist", &done, "{}", now).await.unwrap();
    }
    db
}

fn claim(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("claim");
    group.sample_size(30).measurement_time(Duration::from_secs(5));
    let postgres = std::env::var("BENCH_DATABASE_URL").ok();
    let backends: Vec<&str> = if postgres.is_some() { vec!["sqlite", "postgres"] } else { vec!["sqlite"] };
    for backend in backends {
        for queued in [1_000usize, 100_000] {
            let tmp = tempfile::tempdir().unwrap();
            let mut config = Config::load(None, &Overrides::default()).unwrap();
            config.data_dir = tmp.path().to_path_buf();
            if backend == "postgres" {
                let name = format!("easel_bench_{}", easel::service::new_id("x").trim_start_matches("x_"));
                let url = backends::postgres_database(postgres.as_deref().unwrap(), &name);
                config.database_url = Some(Secret::new(url));
            }
            let db = rt.block_on(filled(&config, queued));
            if backend == "postgres" {
                // Planner statistics, as autovacuum keeps them in a running system (a freshly
                // filled small table has none, and the claim is then planned blind).
                use sqlx::Connection;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&config.database_url()).await.unwrap();
                    sqlx::query("ANALYZE generations").execute(&mut conn).await.unwrap();
                });
            }
            group.bench_function(format!("{backend}/{queued}_queued"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            let now = easel::service::now_ms();
                            let claim = ClaimRequest {
                                worker: "wrk_bench",
                                replica: "rep_bench",
                                now,
                                lease_until: now + 60_000,
                                replicas_seen_after: now - 60_000,
                            };
                            let t = Instant::now();
                            let job = db.claim(&claim).await.unwrap().expect("a queued job");
                            spent += t.elapsed();
                            // Untimed: the job ends and a new one arrives, so the queue keeps
                            // its size while the table's history grows, as in production.
                            let done = easel::db::Outcome::Failed { code: "x".into(), message: "x".into() };
                            assert!(db.finish(&job.id, "wrk_bench", &done, "{}", now).await.unwrap());
                            let fresh = backends::queued_row(easel::service::new_id("gen"), None, now);
                            db.insert_generation(&fresh).await.unwrap();
                        }
                        spent
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, claim);
criterion_main!(benches);
