//! Hot-reload latency: from writing a changed plugin into the watched directory to the new
//! version serving (debounce, validation, compilation, linking, describe, swap).
//!
//! Run: `cargo bench -p easel --bench reload`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use easel::config::PluginsConfig;
use easel::plugins::Registry;
use easel::plugins::runtime::Runtime;

fn reload(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("native");
    std::fs::create_dir_all(&folder).unwrap();
    let wasm =
        std::fs::read(std::path::Path::new(easel::plugins::bundled::BUILD_DIR).join("fixture_native_sizes.wasm"))
            .unwrap();
    std::fs::write(folder.join("fixture_native_sizes.wasm"), &wasm).unwrap();
    let manifest = |v: u32| {
        format!(
            "id = \"native\"\nname = \"n\"\nversion = \"0.1.{v}\"\nkind = \"provider\"\napi_version = \"0.1.0\"\nwasm = \"fixture_native_sizes.wasm\"\n"
        )
    };
    std::fs::write(folder.join("plugin.toml"), manifest(0)).unwrap();
    let registry = rt.block_on(async {
        let runtime = Runtime::new(None).unwrap();
        let config = PluginsConfig { bundled: false, ..PluginsConfig::default() };
        let registry = Registry::load(Arc::clone(&runtime), config, dir.path().to_path_buf());
        registry.watch().unwrap();
        registry
    });
    let mut version = 0;
    let mut group = c.benchmark_group("reload");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("file_change_to_serving", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                version += 1;
                let want = format!("0.1.{version}");
                let started = Instant::now();
                std::fs::write(folder.join("plugin.toml"), manifest(version)).unwrap();
                while registry.catalog().plugins.get("native").map(|p| p.manifest.version.clone()) != Some(want.clone())
                {
                    assert!(started.elapsed() < Duration::from_secs(10), "reload did not happen");
                    std::thread::sleep(Duration::from_millis(2));
                }
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, reload);
criterion_main!(benches);
