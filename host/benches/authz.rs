//! Authorization cost per request with a warm cache: what the middleware does before a
//! handler runs — resolve the route template, check the bearer credential (API key or session
//! token), and ask the casbin policy (tier × route × method).
//!
//! Run: `cargo bench -p easel --bench authz`. Besides criterion's estimates, it prints p50 and
//! p99 of 100 000 single timed calls of each kind.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use easel::config::{Config, Overrides};

fn authz(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::load(None, &Overrides::default()).unwrap();
    config.data_dir = tmp.path().to_path_buf();
    let db = rt.block_on(easel::db::connect(&config)).unwrap();
    let auth = rt.block_on(easel::auth::Auth::new(&config, db.as_ref())).unwrap();
    let now = easel::service::now_ms();
    let user = easel::db::accounts::UserRow::new("bench@example.com", "free", now);
    rt.block_on(db.create_user(&user)).unwrap();
    let secret = easel::auth::new_key_secret();
    let key = easel::db::accounts::KeyRow::new(&user.id, "bench", &secret, None, now);
    rt.block_on(db.create_key(&key)).unwrap();
    let (session, _) = auth.issue_session(&user).unwrap();
    let ip: IpAddr = "192.0.2.10".parse().unwrap();
    let path = "/v1/generations/gen_01kaxyz0000000000000000000/cancel";

    let check = |token: &str| {
        let template = auth.routes.template(path).unwrap();
        let principal = rt.block_on(auth.authenticate(db.as_ref(), Some(token), ip)).unwrap();
        assert!(auth.policies.current().allows(&principal.tier, &template, "POST"));
    };
    // Warm: the credential cache and the policy memo.
    check(&secret);
    check(&session);

    let mut group = c.benchmark_group("authz");
    group.sample_size(50).measurement_time(Duration::from_secs(3));
    group.bench_function("api_key+policy", |b| b.iter(|| check(&secret)));
    group.bench_function("session_jwt+policy", |b| b.iter(|| check(&session)));
    group.bench_function("policy_only", |b| {
        let policy = auth.policies.current();
        b.iter(|| policy.allows("free", "/v1/generations/{id}/cancel", "POST"))
    });
    group.finish();

    for (name, token) in [("api_key+policy", secret.as_str()), ("session_jwt+policy", session.as_str())] {
        let mut times: Vec<Duration> = Vec::with_capacity(100_000);
        for _ in 0..100_000 {
            let started = Instant::now();
            check(token);
            times.push(started.elapsed());
        }
        times.sort();
        println!("authz/{name}: p50 {:?}, p99 {:?} over 100000 calls", times[50_000], times[99_000]);
    }
}

criterion_group!(benches, authz);
criterion_main!(benches);
