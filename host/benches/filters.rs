//! A `filters-core` filter on a 1024×1024 RGBA image: the wasm component through the host
//! (fresh sandbox, pixels copied in and out) against the same Rust code compiled natively
//! (on a copy of the pixels, so both sides pay for one buffer copy).
//!
//! Run: `cargo bench -p easel --bench filters`

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use easel::config::PluginsConfig;
use easel::plugins::Registry;
use easel::plugins::runtime::{Runtime, types};

const SIDE: u32 = 1024;

fn image() -> Vec<u8> {
    (0..SIDE * SIDE * 4).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
}

fn filters(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let registry = rt.block_on(async {
        let runtime = Runtime::new(None).unwrap();
        Registry::load(Arc::clone(&runtime), PluginsConfig::default(), empty.path().to_path_buf())
    });
    let catalog = registry.catalog();
    let pixels = image();
    let mut group = c.benchmark_group("filter_1024");
    group.sample_size(20);
    for (id, params) in [("grayscale", "{}"), ("sepia", "{}"), ("blur", r#"{"radius":8}"#), ("sharpen", "{}")] {
        group.bench_function(format!("{id}/native"), |b| {
            b.iter(|| {
                let mut copy = pixels.clone();
                filters_core::ops::apply_filter(id, &mut copy, SIDE, SIDE, 1.0, params).unwrap();
                copy
            })
        });
        let (plugin, _) = catalog.filter(id).expect("bundled filter");
        group.bench_function(format!("{id}/wasm"), |b| {
            b.iter(|| {
                let img = types::Image { width: SIDE, height: SIDE, pixels: pixels.clone() };
                rt.block_on(plugin.apply_filter(id.to_string(), img, 1.0, params.to_string())).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, filters);
criterion_main!(benches);
