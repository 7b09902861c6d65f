//! End-to-end generation latency through the HTTP API: `POST /v1/generations` with
//! `Prefer: wait=60` for a 1024×1024 `local/procedural` image (validation, queue, worker claim,
//! wasm render, PNG encode, blob write, DB commit, response), against an in-process server on
//! loopback with a fresh SQLite database.
//!
//! Run: `cargo bench -p easel-e2e --bench api`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use easel::config::{Config, Overrides};

fn generate_1024(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::load(None, &Overrides::default()).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = tmp.path().to_path_buf();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let running = rt.block_on(easel::server::start(config)).unwrap();
    let url = format!("http://{}/v1/generations", running.addr);
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let mut seed = 0u32;
    let mut group = c.benchmark_group("api");
    group.sample_size(30).measurement_time(Duration::from_secs(15));
    group.bench_function("generate_1024x1024_local_wait", |b| {
        b.iter(|| {
            seed += 1;
            let r = client
                .post(&url)
                .header("Prefer", "wait=60")
                .json(&serde_json::json!({ "prompt": "a sunset over the ocean", "width": 1024, "height": 1024, "seed": seed }))
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let g: serde_json::Value = r.json().unwrap();
            assert_eq!(g["status"], "succeeded");
        })
    });
    group.finish();
    rt.block_on(running.stop());
}

criterion_group!(benches, generate_1024);
criterion_main!(benches);
