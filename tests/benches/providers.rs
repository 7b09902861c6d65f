//! What Easel adds around a remote provider: `POST /v1/generations` with `Prefer: wait=60` for
//! a remote model whose API is a loopback fixture answering at once (so the numbers are the
//! server's own work: validation, queue, worker claim, the plugin's sandbox and its
//! host-mediated HTTPS-less call, base64 or URL download, decode, crop/resize to 1024×1024,
//! PNG encode, blob write, DB commit).
//!
//! - `gemini_inline_1024`: Gemini answers inline base64 (a 64×64 PNG, scaled up to 1024×1024).
//! - `openai_url_1024`: OpenAI answers a URL the host downloads under the plugin's rules.
//!
//! Run: `cargo bench -p easel-e2e --bench providers`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use easel::config::{Config, Overrides, Secret};

#[path = "../support/providers/gemini.rs"]
mod gemini_fx;
#[path = "../support/providers/openai.rs"]
mod openai_fx;

fn grant(config: &mut Config, plugin: &str, base_url: &str, secret: &str, key: &str) {
    let g = config.plugins.grants.entry(plugin.to_string()).or_default();
    g.allowed_outbound_hosts = vec![base_url.to_string()];
    g.allow_private_ips = true;
    g.config.insert("base_url".into(), base_url.to_string());
    g.secrets.insert(secret.to_string(), Secret::new(key));
}

fn remote_round_trips(c: &mut Criterion) {
    let gemini = gemini_fx::GeminiFixture::start();
    let openai = openai_fx::OpenAiFixture::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::load(None, &Overrides::default()).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = tmp.path().to_path_buf();
    grant(&mut config, "gemini", &gemini.base_url, "GEMINI_API_KEY", &gemini.key);
    grant(&mut config, "openai", &openai.base_url, "OPENAI_API_KEY", &openai.key);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let running = rt.block_on(easel::server::start(config)).unwrap();
    let url = format!("http://{}/v1/generations", running.addr);
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let mut group = c.benchmark_group("providers");
    group.sample_size(20).measurement_time(Duration::from_secs(15));
    let mut run = |name: &str, body: serde_json::Value, before: &dyn Fn()| {
        group.bench_function(name, |b| {
            b.iter(|| {
                before();
                let r = client.post(&url).header("Prefer", "wait=60").json(&body).send().unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let g: serde_json::Value = r.json().unwrap();
                assert_eq!(g["status"], "succeeded", "{g}");
            })
        });
    };
    run(
        "gemini_inline_1024",
        serde_json::json!({"prompt": "a lighthouse", "model": "gemini/gemini-2.5-flash-image", "aspect_ratio": "1:1"}),
        &|| {},
    );
    run(
        "openai_url_1024",
        serde_json::json!({"prompt": "a lighthouse", "model": "openai/gpt-image-1", "size": "1024x1024"}),
        &|| openai.script(vec![openai_fx::Reply::Url]),
    );
    group.finish();
    rt.block_on(running.stop());
}

criterion_group!(benches, remote_round_trips);
criterion_main!(benches);
