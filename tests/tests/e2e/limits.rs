//! Per-minute and per-hour windows (GCRA, shared by replicas through the database): requests
//! refused with the refusing window's headers and let through again after `Retry-After`,
//! generation creations refused without leaving a job or a reservation behind, two servers on
//! one database sharing the windows, and the database statement itself on both backends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use easel::auth::gcra::{Rate, RateState, RateWindows};
use easel::config::{Config, TierConfig};
use easel::service::now_ms;

use super::accounts::{accounts_server as server, register as register_user};
use super::{TestServer, block_on, small};

/// Register `email`; its session token.
fn register(s: &TestServer, email: &str) -> String {
    register_user(s, email).1
}

fn header_i64(r: &super::Resp, name: &str) -> i64 {
    r.header(name).unwrap_or_else(|| panic!("no {name} header")).parse().unwrap()
}

/// Assert a 429 `rate_limited` naming `window`, with `Retry-After` in `1..=max_retry` and the
/// window's headers; returns `Retry-After`.
#[track_caller]
fn assert_refused(r: &super::Resp, window: &str, limit: u64, max_retry: u64) -> u64 {
    let body = r.problem(429, "rate_limited");
    assert!(body["detail"].as_str().unwrap().contains(window), "{body}");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=max_retry).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.header("x-ratelimit-limit"), Some(limit.to_string().as_str()));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let reset = header_i64(r, "x-ratelimit-reset");
    let now = now_ms() / 1000;
    assert!(now <= reset && reset <= now + 61, "reset {reset} is within the minute (now {now})");
    retry
}

#[test]
fn requests_per_minute_refuse_with_the_minute_window_and_let_through_again() {
    let s = server(|c| {
        let free = c.tiers.get_mut("free").unwrap();
        free.requests_per_minute = Some(30);
        free.requests_per_hour = Some(1000);
        c.tiers.insert(
            "tiny".into(),
            TierConfig { inherits: Some("free".into()), requests_per_minute: Some(3), ..TierConfig::default() },
        );
    });

    // Three a minute: the fourth request is refused by the minute window, for ≤ 20 s.
    // (The tier is set below the API before the token is first used, so no cache holds it.)
    let (id, tiny) = register_user(&s, "tiny@example.com");
    let db = s.db();
    block_on(async move { db.admin_set(&id, Some("tiny"), None, now_ms()).await.unwrap() });
    for remaining in ["2", "1", "0"] {
        let r = s.send("GET", "/v1/me", Some(&tiny), None);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(remaining));
    }
    let refused = s.send("GET", "/v1/me", Some(&tiny), None);
    assert_refused(&refused, "the tiny tier allows 3 requests per minute", 3, 20);

    // Thirty a minute (one every 2 s), beside a roomier hourly window: the burst is the
    // minute's thirty (plus one per 2 s the burst took), the headers are the minute window's
    // (the tightest), and after Retry-After one more passes.
    let token = register(&s, "burst@example.com");
    let started = Instant::now();
    let mut passed = 0;
    let refused = loop {
        let r = s.send("GET", "/v1/me", Some(&token), None);
        if r.status != 200 {
            break r;
        }
        assert_eq!(r.header("x-ratelimit-limit"), Some("30"), "the minute window is the tightest");
        if passed == 0 {
            assert_eq!(r.header("x-ratelimit-remaining"), Some("29"));
        }
        passed += 1;
        assert!(passed <= 100, "the minute window never refused");
    };
    let refills = started.elapsed().as_millis() as u64 / 2000 + 1;
    assert!((30..=30 + refills).contains(&passed), "{passed} passed in {:?}", started.elapsed());
    let retry = assert_refused(&refused, "the free tier allows 30 requests per minute", 30, 2);
    std::thread::sleep(Duration::from_secs(retry));
    let again = s.send("GET", "/v1/me", Some(&token), None);
    assert_eq!(again.status, 200, "{}", String::from_utf8_lossy(&again.bytes));

    // The usage report shows the windows and what they let through now (one more request
    // came back 2 s later, and the report's own request took it).
    std::thread::sleep(Duration::from_secs(2));
    let usage = s.send("GET", "/v1/usage?period=day", Some(&token), None);
    assert_eq!(usage.status, 200, "{}", String::from_utf8_lossy(&usage.bytes));
    let usage = usage.json();
    let quota = &usage["quota"];
    assert_eq!(quota["requests_per_minute"], 30);
    assert!(quota["requests_remaining_this_minute"].as_u64().unwrap() <= 1, "{quota}");
    assert_eq!(quota["requests_per_hour"], 1000);
    assert!((900..1000).contains(&quota["requests_remaining_this_hour"].as_u64().unwrap()), "{quota}");
    assert_eq!(quota["generations_per_minute"], 10);
    assert_eq!(quota["generations_remaining_this_minute"], 10);
    // Requests that passed are counted for usage, refused ones are not.
    let requests = usage["requests"].as_u64().unwrap();
    assert_eq!(requests, passed + 2, "{usage}");
}

#[test]
fn generations_per_minute_refuse_the_extra_creation_and_store_nothing() {
    let s = server(|c| c.tiers.get_mut("free").unwrap().generations_per_minute = Some(2));
    let token = register(&s, "maker@example.com");
    let key = [("Idempotency-Key", "gen-rate-1")];
    let first = s.send_with("POST", "/v1/generations", Some(&token), &key, Some(&small("one")));
    assert_eq!(first.status, 202, "{}", String::from_utf8_lossy(&first.bytes));
    let second = s.send("POST", "/v1/generations", Some(&token), Some(&small("two")));
    assert_eq!(second.status, 202, "{}", String::from_utf8_lossy(&second.bytes));
    // The generations window is now the tightest: its headers are the creation's.
    assert_eq!(second.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(second.header("x-ratelimit-remaining"), Some("0"));

    // A replay of an accepted creation takes nothing and is not refused.
    let replay = s.send_with("POST", "/v1/generations", Some(&token), &key, Some(&small("one")));
    assert_eq!(replay.status, 202, "{}", String::from_utf8_lossy(&replay.bytes));
    assert_eq!(replay.json()["id"], first.json()["id"]);

    let over = s.send("POST", "/v1/generations", Some(&token), Some(&small("three")));
    assert_refused(&over, "the free tier allows 2 generations per minute", 2, 30);
    // Other requests still pass (the request windows have room).
    let list = s.send("GET", "/v1/generations?limit=100", Some(&token), None);
    assert_eq!(list.status, 200);
    assert_eq!(list.header("x-ratelimit-limit"), Some("60"), "the request window of the free tier");
    let items = list.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "the refused creation left no job: {items:?}");
    assert!(items.iter().all(|g| g["prompt"] != "three"));

    let usage = s.send("GET", "/v1/usage?period=day", Some(&token), None).json();
    assert_eq!(usage["generations"], 2, "{usage}");
    assert_eq!(usage["quota"]["images_used_today"], 2, "nothing reserved for the refused one: {usage}");
    assert_eq!(usage["quota"]["generations_per_minute"], 2);
    assert_eq!(usage["quota"]["generations_remaining_this_minute"], 0);
}

#[test]
fn two_servers_on_one_database_share_the_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let configure = |c: &mut Config| {
        c.auth.ip_allowlist = Vec::new();
        let free = c.tiers.get_mut("free").unwrap();
        free.requests_per_minute = Some(4);
        free.generations_per_minute = Some(1);
    };
    let a = TestServer::start_in(tmp.path(), configure);
    let b = TestServer::start_in(tmp.path(), configure);
    let token = register(&a, "replicated@example.com");
    // Four a minute, whichever server is asked.
    for (i, s) in [&a, &b, &a, &b].into_iter().enumerate() {
        let r = s.send("GET", "/v1/me", Some(&token), None);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        assert_eq!(r.header("x-ratelimit-remaining"), Some((3 - i).to_string().as_str()));
    }
    assert_refused(&a.send("GET", "/v1/me", Some(&token), None), "4 requests per minute", 4, 15);
    assert_refused(&b.send("GET", "/v1/me", Some(&token), None), "4 requests per minute", 4, 15);

    // One generation a minute: made on one server, refused on the other.
    let other = register(&b, "creator@example.com");
    let made = a.send("POST", "/v1/generations", Some(&other), Some(&small("first")));
    assert_eq!(made.status, 202, "{}", String::from_utf8_lossy(&made.bytes));
    assert_refused(
        &b.send("POST", "/v1/generations", Some(&other), Some(&small("second"))),
        "the free tier allows 1 generation per minute",
        1,
        60,
    );
}

/// The statement on the real database (SQLite or PostgreSQL) agrees with the arithmetic,
/// takes every window or none, is seen alike by two connection pools, and holds exactly
/// under concurrent takes.
#[test]
fn the_database_takes_windows_atomically_and_shares_them() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let (db, tmp) = super::scale::fresh_db(&rt);
    let mut config = Config::load(None, &easel::config::Overrides::default()).unwrap();
    config.data_dir = tmp.path().to_path_buf();
    super::backends::configure(&mut config, tmp.path());
    let other = rt.block_on(easel::db::connect(&config)).unwrap();
    rt.block_on(async move {
        let now = 1_800_000_000_000_i64;
        let windows = RateWindows { minute: Some(Rate::per_minute(5)), hour: Some(Rate::per_hour(3)) };
        let mut expected = RateState::default();
        for i in 0..3 {
            // Alternate the two pools: each sees what the other took.
            let pool = if i % 2 == 0 { &db } else { &other };
            let taken = pool.take_rate("req usr_db", windows, now).await.unwrap();
            expected = windows.take(expected, now).unwrap();
            assert!(taken.allowed);
            assert_eq!(taken.state, expected);
        }
        // The hour is used up; the minute window is not charged for the refusal.
        let refused = other.take_rate("req usr_db", windows, now + 1).await.unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.state, expected);
        assert_eq!(db.rate_state("req usr_db").await.unwrap(), expected);
        // Requests taken are counted for usage (by the same statement); refused ones are not.
        let hour = now - now % 3_600_000;
        assert_eq!(db.counted("req usr_db", hour).await.unwrap(), 3);
        // A window without a limit never refuses; a minute later the minute window has room.
        let minute_only = RateWindows { minute: Some(Rate::per_minute(5)), hour: None };
        let later = db.take_rate("req usr_db", minute_only, now + 60_000).await.unwrap();
        assert!(later.allowed);
        assert_eq!(later.state, minute_only.take(expected, now + 60_000).unwrap());
        // Generation windows are not requests: not counted.
        db.take_rate("gen usr_db", minute_only, now).await.unwrap();
        assert_eq!(db.counted("gen usr_db", hour).await.unwrap(), 0);

        // States wholly in the past are swept; current ones stay.
        let sweep_at = now + 2 * 3_600_000;
        let current = db.take_rate("req usr_current", minute_only, sweep_at).await.unwrap().state;
        db.sweep_rate_limits(sweep_at).await.unwrap();
        assert_eq!(db.rate_state("req usr_db").await.unwrap(), RateState::default());
        assert_eq!(db.rate_state("gen usr_db").await.unwrap(), RateState::default());
        assert_eq!(db.rate_state("req usr_current").await.unwrap(), current);

        // Twenty concurrent takes through both pools against 7 a minute: exactly 7 pass.
        let now = now_ms();
        let seven = RateWindows { minute: Some(Rate::per_minute(7)), hour: None };
        let mut tasks = Vec::new();
        for i in 0..20 {
            let pool: Arc<dyn easel::db::Database> = if i % 2 == 0 { db.clone() } else { other.clone() };
            tasks.push(tokio::spawn(async move { pool.take_rate("req usr_race", seven, now).await.unwrap().allowed }));
        }
        let mut passed = 0;
        for t in tasks {
            passed += usize::from(t.await.unwrap());
        }
        assert_eq!(passed, 7);
    });
    drop(tmp);
}
