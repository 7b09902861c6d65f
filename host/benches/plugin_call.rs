//! Plugin call overhead: a fresh sandboxed `Store`, instantiation from the cached
//! `InstancePre`, and a trivial `describe` call of the bundled `local` provider.
//!
//! Run: `cargo bench -p easel --bench plugin_call`

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use easel::config::PluginsConfig;
use easel::plugins::Registry;
use easel::plugins::runtime::Runtime;

fn describe(c: &mut Criterion) {
    let runtime = Runtime::new(None).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let registry = Registry::load(Arc::clone(&runtime), PluginsConfig::default(), empty.path().to_path_buf());
    let local = registry.catalog().plugins.get("local").cloned().expect("bundled local provider");
    let label = if runtime.pooling { "describe_local_pooling" } else { "describe_local_on_demand" };
    c.bench_function(label, |b| b.iter(|| local.describe_now().unwrap()));
}

criterion_group!(benches, describe);
criterion_main!(benches);
