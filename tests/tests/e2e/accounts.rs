//! Accounts, keys, tiers and policy: every principal (anonymous, free, pro, admin, a second
//! user, an allowlisted network) against the routes, quotas at their exact limits, IP
//! allowlists with trusted proxies, and policy edits taking effect without a restart.

use std::time::Duration;

use easel::config::{Config, IpRule, TierConfig};
use easel::db::accounts::{Admission, Reservation};
use serde_json::{Value, json};

use super::{TestServer, block_on, small};

/// A server where loopback gets no tier: callers are who their credentials say.
pub(crate) fn accounts_server(configure: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start(|c| {
        c.auth.ip_allowlist = Vec::new();
        configure(c);
    })
}

/// A registered user: id, session token.
pub(crate) fn register(s: &TestServer, email: &str) -> (String, String) {
    let r = s.send("POST", "/v1/auth/register", None, Some(&json!({"email": email, "password": "correct horse 1"})));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    (body["user"]["id"].as_str().unwrap().to_string(), body["token"].as_str().unwrap().to_string())
}

/// Put a user in a tier below the API (the first admin of a server is made this way or with
/// `easel user set-tier`).
fn set_tier(s: &TestServer, user_id: &str, tier: &str) {
    let db = s.db();
    let (id, tier) = (user_id.to_string(), tier.to_string());
    block_on(async move { db.admin_set(&id, Some(&tier), None, easel::service::now_ms()).await.unwrap() });
}

/// A user in `tier` with a session token, whose token was never used before the tier change.
fn user_in(s: &TestServer, email: &str, tier: &str) -> (String, String) {
    let (id, token) = register(s, email);
    set_tier(s, &id, tier);
    (id, token)
}

fn generate_as(s: &TestServer, token: &str, body: &Value) -> Value {
    let r = s.send_with("POST", "/v1/generations", Some(token), &[("Prefer", "wait=60")], Some(body));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let g = r.json();
    assert_eq!(g["status"], "succeeded", "{g}");
    g
}

#[test]
fn register_sign_in_profile_keys_and_revocation() {
    let s = accounts_server(|_| {});
    let (id, token) = register(&s, "Ada@Example.com");
    assert!(id.starts_with("usr_"));
    let me = s.send("GET", "/v1/me", Some(&token), None);
    assert_eq!(me.status, 200);
    let me = me.json();
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["tier"], "free");
    assert!(!me.to_string().contains("argon2"), "{me}");

    // The same address again, bad fields.
    s.send("POST", "/v1/auth/register", None, Some(&json!({"email": "ada@example.com", "password": "another one 1"})))
        .problem(409, "conflict");
    let bad = s.send("POST", "/v1/auth/register", None, Some(&json!({"email": "nobody", "password": "short"})));
    let body = bad.problem(422, "validation_error");
    assert_eq!(body["errors"][0]["field"], "email");

    // A wrong password and an unknown address get the same answer.
    let wrong = s.send(
        "POST",
        "/v1/auth/login",
        None,
        Some(&json!({"email": "ada@example.com", "password": "wrong password"})),
    );
    let unknown = s.send(
        "POST",
        "/v1/auth/login",
        None,
        Some(&json!({"email": "eve@example.com", "password": "wrong password"})),
    );
    assert_eq!(wrong.problem(401, "unauthorized")["detail"], unknown.problem(401, "unauthorized")["detail"]);
    let login = s.send(
        "POST",
        "/v1/auth/login",
        None,
        Some(&json!({"email": "ADA@example.com", "password": "correct horse 1"})),
    );
    assert_eq!(login.status, 200);
    let session = login.json()["token"].as_str().unwrap().to_string();

    // Settings fill what a request leaves out.
    let patched = s.send(
        "PATCH",
        "/v1/me",
        Some(&session),
        Some(&json!({"name": "Ada", "settings": {"default_aspect_ratio": "16:9"}})),
    );
    assert_eq!(patched.status, 200, "{}", String::from_utf8_lossy(&patched.bytes));
    assert_eq!(patched.json()["settings"]["default_aspect_ratio"], "16:9");
    let g = generate_as(&s, &session, &json!({"prompt": "a wide view", "seed": 1}));
    assert_eq!(g["aspect_ratio"], "16:9", "{g}");
    s.send("PATCH", "/v1/me", Some(&session), Some(&json!({"settings": {"colour": "red"}})))
        .problem(422, "validation_error");

    // API keys: the secret once, then only its prefix.
    let created = s.send("POST", "/v1/keys", Some(&session), Some(&json!({"name": "laptop"})));
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.bytes));
    let created = created.json();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("esk_") && secret.len() == 44);
    assert_eq!(created["prefix"], &secret[..12]);
    let listed = s.send("GET", "/v1/keys", Some(&secret), None);
    assert_eq!(listed.status, 200);
    let listed_text = String::from_utf8_lossy(&listed.bytes).to_string();
    assert!(!listed_text.contains(&secret), "{listed_text}");
    assert!(!listed_text.contains(&secret[12..]), "{listed_text}");
    let keys = listed.json();
    assert_eq!(keys["items"][0]["name"], "laptop");
    assert!(keys["items"][0]["last_used_at"].is_string(), "{keys}");
    assert_eq!(s.send("GET", "/v1/me", Some(&secret), None).json()["id"], id);

    // A password change ends sessions (not keys).
    s.send("PATCH", "/v1/me", Some(&session), Some(&json!({"password": "a new password", "current_password": "nope"})))
        .problem(422, "validation_error");
    let changed = s.send(
        "PATCH",
        "/v1/me",
        Some(&session),
        Some(&json!({"password": "a new password", "current_password": "correct horse 1"})),
    );
    assert_eq!(changed.status, 200);
    s.send("GET", "/v1/me", Some(&session), None).problem(401, "unauthorized");
    s.send("GET", "/v1/me", Some(&token), None).problem(401, "unauthorized");
    assert_eq!(s.send("GET", "/v1/me", Some(&secret), None).status, 200);

    // A deleted key stops working at once.
    let key_id = created["id"].as_str().unwrap();
    assert_eq!(s.send("DELETE", &format!("/v1/keys/{key_id}"), Some(&secret), None).status, 204);
    s.send("GET", "/v1/me", Some(&secret), None).problem(401, "unauthorized");
    s.send("GET", "/v1/me", Some("esk_not_a_key"), None).problem(401, "unauthorized");
    s.send("GET", "/v1/me", Some("not.a.jwt"), None).problem(401, "unauthorized");
    s.send_with("GET", "/v1/models", None, &[("Authorization", "Basic YTpi")], None).problem(401, "unauthorized");
}

#[test]
fn anonymous_callers_read_the_catalogue_only() {
    let s = accounts_server(|_| {});
    assert_eq!(s.get("/v1/models").status, 200);
    assert_eq!(s.get("/health").status, 200);
    s.post_json("/v1/generations", &small("x")).problem(401, "unauthorized");
    s.get("/v1/generations").problem(401, "unauthorized");
    s.get("/v1/me").problem(401, "unauthorized");
    s.get("/v1/admin/users").problem(401, "unauthorized");
    s.post_json("/v1/plugins/reload", &json!({})).problem(401, "unauthorized");
    // Unknown routes are still 404s, not 401s.
    s.get("/v1/nothing-here").problem(404, "not_found");
}

/// A second user can neither see nor touch the first user's resources (404, never 403);
/// an admin can; a free user cannot use admin routes or models outside their tier.
#[test]
fn ownership_sweep_over_every_resource() {
    let s = accounts_server(|_| {});
    let (a_id, a) = user_in(&s, "a@example.com", "free");
    let (_, b) = user_in(&s, "b@example.com", "free");
    let (_, admin) = user_in(&s, "root@example.com", "admin");
    let (_, pro) = user_in(&s, "pro@example.com", "pro");

    let g = generate_as(&s, &a, &small("mine"));
    let gen_id = g["id"].as_str().unwrap().to_string();
    let img_id = g["images"][0]["id"].as_str().unwrap().to_string();
    let edit = s.send(
        "POST",
        &format!("/v1/images/{img_id}/edits"),
        Some(&a),
        Some(&json!({"operations": [{"type": "rotate", "degrees": 90}]})),
    );
    assert_eq!(edit.status, 201, "{}", String::from_utf8_lossy(&edit.bytes));
    let edit_id = edit.json()["id"].as_str().unwrap().to_string();
    let key = s.send("POST", "/v1/keys", Some(&a), Some(&json!({"name": "k"}))).json();
    let key_id = key["id"].as_str().unwrap().to_string();

    let reads = [
        format!("/v1/generations/{gen_id}"),
        format!("/v1/generations/{gen_id}/events"),
        format!("/v1/images/{img_id}"),
        format!("/v1/images/{img_id}/file"),
        format!("/v1/images/{img_id}/edits"),
        format!("/v1/images/{edit_id}"),
        format!("/v1/images/{edit_id}/file"),
    ];
    for path in &reads {
        s.send("GET", path, Some(&b), None).problem(404, "not_found");
        assert_eq!(s.send("GET", path, Some(&a), None).status, 200, "{path}");
        assert_eq!(s.send("GET", path, Some(&admin), None).status, 200, "{path}");
        s.send("GET", path, None, None).problem(401, "unauthorized");
    }
    s.send("POST", &format!("/v1/generations/{gen_id}/cancel"), Some(&b), None).problem(404, "not_found");
    s.send(
        "POST",
        &format!("/v1/images/{img_id}/edits"),
        Some(&b),
        Some(&json!({"operations": [{"type": "rotate", "degrees": 90}]})),
    )
    .problem(404, "not_found");
    s.send("DELETE", &format!("/v1/keys/{key_id}"), Some(&b), None).problem(404, "not_found");
    assert_eq!(s.send("GET", "/v1/keys", Some(&b), None).json()["items"].as_array().unwrap().len(), 0);

    // Listings are per owner; an admin's covers everyone.
    let ids = |token: &str| -> Vec<String> {
        s.send("GET", "/v1/generations", Some(token), None).json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(ids(&a).contains(&gen_id));
    assert!(!ids(&b).contains(&gen_id));
    assert!(ids(&admin).contains(&gen_id));

    // Tiers: admin routes and models.
    s.send("GET", "/v1/admin/users", Some(&a), None).problem(403, "forbidden");
    s.send("PATCH", &format!("/v1/admin/users/{a_id}"), Some(&pro), Some(&json!({"tier": "admin"})))
        .problem(403, "forbidden");
    let users = s.send("GET", "/v1/admin/users", Some(&admin), None);
    assert_eq!(users.status, 200);
    assert_eq!(users.json()["items"].as_array().unwrap().len(), 4);
    let mut body = small("x");
    body["model"] = json!("openai/gpt-image-1");
    // (Authorization comes before validation: the model need not even be installed.)
    let denied = s.send("POST", "/v1/generations", Some(&a), Some(&body));
    let problem = denied.problem(403, "forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("openai/gpt-image-1"), "{problem}");
    // A pro user may name it (it is then an unknown model, not a forbidden one).
    s.send("POST", "/v1/generations", Some(&pro), Some(&body)).problem(422, "validation_error");

    // An admin deletes another user's key; a disabled user is refused at once.
    assert_eq!(s.send("DELETE", &format!("/v1/keys/{key_id}"), Some(&admin), None).status, 204);
    let disabled = s.send("PATCH", &format!("/v1/admin/users/{a_id}"), Some(&admin), Some(&json!({"disabled": true})));
    assert_eq!(disabled.status, 200, "{}", String::from_utf8_lossy(&disabled.bytes));
    s.send("GET", "/v1/me", Some(&a), None).problem(403, "forbidden");
    s.send("PATCH", &format!("/v1/admin/users/{a_id}"), Some(&admin), Some(&json!({"tier": "platinum"})))
        .problem(422, "validation_error");
}

/// The WebSocket refuses to stream another user's generation.
#[test]
fn websocket_subscriptions_are_owner_checked() {
    use tungstenite::Message;
    let s = accounts_server(|_| {});
    let (_, a) = user_in(&s, "a@example.com", "free");
    let (_, b) = user_in(&s, "b@example.com", "free");
    let gen_id = generate_as(&s, &a, &small("ws"))["id"].as_str().unwrap().to_string();
    let url = format!("{}/v1/ws?access_token={b}", s.base.replace("http://", "ws://"));
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    ws.send(Message::text(json!({"action": "subscribe", "generation_id": gen_id}).to_string())).unwrap();
    let reply: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(reply["code"], "not_found", "{reply}");
    // A key deleted while its socket is open stops working on that socket too.
    let key = s.send("POST", "/v1/keys", Some(&b), Some(&json!({"name": "ws"}))).json();
    let secret = key["secret"].as_str().unwrap();
    let url = format!("{}/v1/ws?access_token={secret}", s.base.replace("http://", "ws://"));
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    let key_path = format!("/v1/keys/{}", key["id"].as_str().unwrap());
    assert_eq!(s.send("DELETE", &key_path, Some(&b), None).status, 204);
    ws.send(Message::text(json!({"action": "subscribe", "generation_id": "gen_x"}).to_string())).unwrap();
    let reply: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(reply["code"], "unauthorized", "{reply}");
    // Without credentials the upgrade itself is refused.
    let anonymous = tungstenite::connect(format!("{}/v1/ws", s.base.replace("http://", "ws://")));
    assert!(anonymous.is_err());
}

#[test]
fn hourly_request_limit_with_headers() {
    let s = accounts_server(|c| c.tiers.get_mut("free").unwrap().requests_per_hour = Some(3));
    let (_, token) = register(&s, "counted@example.com");
    for remaining in ["2", "1", "0"] {
        let r = s.send("GET", "/v1/me", Some(&token), None);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(remaining));
        assert!(r.header("x-ratelimit-reset").unwrap().parse::<i64>().unwrap() > 1_700_000_000);
    }
    let limited = s.send("GET", "/v1/me", Some(&token), None);
    let body = limited.problem(429, "rate_limited");
    assert!(body["detail"].as_str().unwrap().contains("3 requests per hour"), "{body}");
    // A sliding window, not the clock hour: one more request fits 20 minutes after the burst.
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=1200).contains(&retry), "{retry}");
    assert_eq!(limited.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
}

#[test]
fn daily_image_quota_over_http() {
    let s = accounts_server(|c| c.tiers.get_mut("free").unwrap().images_per_day = Some(3));
    let (_, token) = register(&s, "quota@example.com");
    let mut two = small("two");
    two["n"] = json!(2);
    let r = s.send_with("POST", "/v1/generations", Some(&token), &[("Prefer", "wait=60")], Some(&two));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-daily-remaining"), Some("1"));
    let key = [("Idempotency-Key", "quota-retry-1")];
    let r = s.send_with("POST", "/v1/generations", Some(&token), &key, Some(&small("one")));
    assert_eq!(r.status, 202);
    assert_eq!(r.header("x-ratelimit-daily-remaining"), Some("0"));
    // A retry of an accepted request is never charged again.
    let again = s.send_with("POST", "/v1/generations", Some(&token), &key, Some(&small("one")));
    assert_eq!(again.status, 202, "{}", String::from_utf8_lossy(&again.bytes));
    let over = s.send("POST", "/v1/generations", Some(&token), Some(&small("over")));
    let body = over.problem(429, "quota_exceeded");
    assert!(body["detail"].as_str().unwrap().contains("3 images per day"), "{body}");
    let retry: i64 = over.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry));
    assert_eq!(over.header("x-ratelimit-daily-remaining"), Some("0"));

    let usage = s.send("GET", "/v1/usage?period=day", Some(&token), None);
    assert_eq!(usage.status, 200);
    let usage = usage.json();
    assert_eq!(usage["quota"]["images_per_day"], 3);
    assert_eq!(usage["quota"]["images_used_today"], 3);
    assert_eq!(usage["quota"]["images_remaining_today"], 0);
    assert_eq!(usage["top_models"][0]["name"], "local/procedural");
    assert_eq!(usage["generations"], 2);
    assert!(usage["requests"].as_i64().unwrap() >= 4, "{usage}");
    s.send("GET", "/v1/usage?period=year", Some(&token), None).problem(422, "validation_error");

    // Limits of the tier: n and pixels.
    let mut many = small("many");
    many["n"] = json!(4);
    let s2 = accounts_server(|c| {
        let free = c.tiers.get_mut("free").unwrap();
        free.max_n = Some(2);
        free.max_pixels = Some(256 * 256);
    });
    let (_, t2) = register(&s2, "limits@example.com");
    let body = s2.send("POST", "/v1/generations", Some(&t2), Some(&many)).problem(422, "validation_error");
    assert_eq!(body["errors"][0]["field"], "n");
    let big = json!({"prompt": "big", "width": 512, "height": 512});
    let body = s2.send("POST", "/v1/generations", Some(&t2), Some(&big)).problem(422, "validation_error");
    assert_eq!(body["errors"][0]["field"], "size");
}

/// Quotas below the API, on the real database: exact at the limit, given back on cancel and
/// failure, reset at the next day, and the concurrency limit held under parallel admissions.
#[test]
fn quota_admission_is_exact_and_released() {
    // A database with no server: nothing runs or finishes these jobs behind the test's back.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, _tmp) = super::scale::fresh_db(&rt);
    rt.block_on(async move {
        let day = 1_795_392_000_000_i64;
        let row = |n: i64, created_at: i64| {
            let mut r = super::backends::queued_row(easel::service::new_id("gen"), None, created_at);
            r.quota_subject = Some("usr_quota".into());
            r.images_reserved = n;
            r
        };
        let reservation = |day_start: i64, per_day: Option<i64>, concurrent: Option<i64>| Reservation {
            subject: "usr_quota".into(),
            day_start,
            images_per_day: per_day,
            max_concurrent: concurrent,
            credits: None,
            generations_per_minute: None,
        };
        let first = row(3, day + 10);
        assert_eq!(
            db.admit_generation(&first, &reservation(day, Some(4), None), None).await.unwrap(),
            Admission::Accepted { images_today: 3, generations_tat: None }
        );
        assert_eq!(
            db.admit_generation(&row(2, day + 11), &reservation(day, Some(4), None), None).await.unwrap(),
            Admission::DailyQuota { used: 3 }
        );
        let last = row(1, day + 12);
        assert_eq!(
            db.admit_generation(&last, &reservation(day, Some(4), None), None).await.unwrap(),
            Admission::Accepted { images_today: 4, generations_tat: None }
        );
        // Canceling gives the images back.
        assert!(db.cancel(&first.id, day + 13).await.unwrap());
        assert_eq!(
            db.admit_generation(&row(3, day + 14), &reservation(day, Some(4), None), None).await.unwrap(),
            Admission::Accepted { images_today: 4, generations_tat: None }
        );
        // The next day starts from zero (but the two still queued count against concurrency).
        let tomorrow = day + 86_400_000;
        assert_eq!(
            db.admit_generation(&row(4, tomorrow + 1), &reservation(tomorrow, Some(4), Some(2)), None).await.unwrap(),
            Admission::Concurrency { active: 2 }
        );
        assert_eq!(
            db.admit_generation(&row(4, tomorrow + 1), &reservation(tomorrow, Some(4), Some(3)), None).await.unwrap(),
            Admission::Accepted { images_today: 4, generations_tat: None }
        );

        // Twenty parallel admissions against a limit of 7 generations at once: exactly 7 in.
        let db2 = db.clone();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let db = db2.clone();
            tasks.push(tokio::spawn(async move {
                let mut r = super::backends::queued_row(easel::service::new_id("gen"), None, day + 100 + i);
                r.quota_subject = Some("usr_parallel".into());
                r.images_reserved = 1;
                let res = Reservation {
                    subject: "usr_parallel".into(),
                    day_start: day,
                    images_per_day: None,
                    max_concurrent: Some(7),
                    credits: None,
                    generations_per_minute: None,
                };
                db.admit_generation(&r, &res, None).await.unwrap()
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), Admission::Accepted { .. }) {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 7);
    });
}

#[test]
fn credits_are_spent_per_image_and_refilled() {
    let s = accounts_server(|c| {
        c.tiers.insert(
            "metered".into(),
            TierConfig {
                inherits: Some("free".into()),
                allowed_models: vec!["local/*".into()],
                credits_per_image: Some(2),
                credits_refill: Some(5),
                ..TierConfig::default()
            },
        );
    });
    let (id, token) = user_in(&s, "metered@example.com", "metered");
    let (_, admin) = user_in(&s, "root@example.com", "admin");
    let credits = s.send("GET", "/v1/credits", Some(&token), None);
    assert_eq!(credits.status, 200, "{}", String::from_utf8_lossy(&credits.bytes));
    let credits = credits.json();
    assert_eq!(credits["remaining"], 5);
    assert_eq!(credits["per_image"], 2);
    assert_eq!(credits["refill_period"], "month");
    let mut two = small("two");
    two["n"] = json!(2);
    generate_as(&s, &token, &two);
    assert_eq!(s.send("GET", "/v1/credits", Some(&token), None).json()["remaining"], 1);
    s.send("POST", "/v1/generations", Some(&token), Some(&small("one"))).problem(402, "insufficient_credits");
    // An operator grant.
    let granted = s.send("PATCH", &format!("/v1/admin/users/{id}"), Some(&admin), Some(&json!({"credits": 10})));
    assert_eq!(granted.status, 200);
    let r = s.send("POST", "/v1/generations", Some(&token), Some(&small("one")));
    assert_eq!(r.status, 202);
    // Canceled (or finished first): credits are given back only for what did not succeed.
    let gen_id = r.json()["id"].as_str().unwrap().to_string();
    let canceled = s.send("POST", &format!("/v1/generations/{gen_id}/cancel"), Some(&token), None).status == 200;
    let remaining = s.send("GET", "/v1/credits", Some(&token), None).json()["remaining"].as_i64().unwrap();
    assert_eq!(remaining, if canceled { 10 } else { 8 }, "canceled: {canceled}");
}

#[test]
fn invite_only_registration() {
    let s = accounts_server(|c| c.auth.registration = easel::config::Registration::Invite);
    let body = json!({"email": "new@example.com", "password": "long enough 1"});
    let r = s.send("POST", "/v1/auth/register", None, Some(&body));
    assert_eq!(r.problem(422, "validation_error")["errors"][0]["field"], "invite_code");
    // The first admin comes from the operator (here: below the API).
    let db = s.db();
    let admin = block_on(async move {
        let now = easel::service::now_ms();
        let user = easel::db::accounts::UserRow::new("root@example.com", "admin", now);
        assert!(db.create_user(&user).await.unwrap());
        let secret = easel::auth::new_key_secret();
        let key = easel::db::accounts::KeyRow::new(&user.id, "root", &secret, None, now);
        db.create_key(&key).await.unwrap();
        secret
    });
    let invite = s.send("POST", "/v1/admin/invites", Some(&admin), Some(&json!({"tier": "pro"})));
    assert_eq!(invite.status, 201, "{}", String::from_utf8_lossy(&invite.bytes));
    let code = invite.json()["code"].as_str().unwrap().to_string();
    let mut with_code = body.clone();
    with_code["invite_code"] = json!(code);
    let r = s.send("POST", "/v1/auth/register", None, Some(&with_code));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["user"]["tier"], "pro");
    with_code["email"] = json!("second@example.com");
    let again = s.send("POST", "/v1/auth/register", None, Some(&with_code));
    assert_eq!(again.problem(422, "validation_error")["errors"][0]["field"], "invite_code");

    let closed = accounts_server(|c| c.auth.registration = easel::config::Registration::Closed);
    closed.send("POST", "/v1/auth/register", None, Some(&body)).problem(403, "forbidden");
}

#[test]
fn sign_in_attempts_are_limited() {
    let s = accounts_server(|c| c.auth.login_attempts = 3);
    register(&s, "target@example.com");
    let wrong = json!({"email": "target@example.com", "password": "guess guess"});
    for _ in 0..3 {
        s.send("POST", "/v1/auth/login", None, Some(&wrong)).problem(401, "unauthorized");
    }
    let limited = s.send("POST", "/v1/auth/login", None, Some(&wrong));
    limited.problem(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    // Even the right password waits out the window.
    let right = json!({"email": "target@example.com", "password": "correct horse 1"});
    s.send("POST", "/v1/auth/login", None, Some(&right)).problem(429, "rate_limited");
}

#[test]
fn ip_allowlists_with_trusted_proxies_ipv4_and_ipv6() {
    let rules = |c: &mut Config| {
        c.auth.ip_allowlist = vec![
            IpRule { cidr: "203.0.113.0/24".into(), tier: "pro".into() },
            IpRule { cidr: "2001:db8::/32".into(), tier: "free".into() },
        ];
    };
    let behind_proxy = TestServer::start(|c| {
        rules(c);
        c.auth.trusted_proxies = vec!["127.0.0.1/32".into(), "::1/128".into(), "10.0.0.0/8".into()];
    });
    let from = |ip: &str| behind_proxy.send_with("GET", "/v1/generations", None, &[("X-Forwarded-For", ip)], None);
    assert_eq!(from("203.0.113.9").status, 200);
    // The right-most address that is not a trusted proxy is the client.
    assert_eq!(from("198.51.100.1, 203.0.113.9, 10.1.2.3").status, 200);
    from("203.0.113.9, 198.51.100.1").problem(401, "unauthorized");
    // Unreadable entries make the client unknown, never the proxy (which is trusted, not listed).
    from("203.0.113.9, not-an-address").problem(401, "unauthorized");
    // A header the client sent and one the proxy appended are read together, in order.
    behind_proxy
        .send_with(
            "GET",
            "/v1/generations",
            None,
            &[("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "198.51.100.1")],
            None,
        )
        .problem(401, "unauthorized");
    assert_eq!(from("2001:db8::5").status, 200);
    from("2001:db9::5").problem(401, "unauthorized");
    behind_proxy.send("GET", "/v1/generations", None, None).problem(401, "unauthorized");
    // A network principal owns what it creates, as one owner for the whole network.
    let g = behind_proxy.send_with(
        "POST",
        "/v1/generations",
        None,
        &[("X-Forwarded-For", "203.0.113.20")],
        Some(&small("net")),
    );
    assert_eq!(g.status, 202, "{}", String::from_utf8_lossy(&g.bytes));
    let id = g.json()["id"].as_str().unwrap().to_string();
    let seen = behind_proxy.send_with(
        "GET",
        &format!("/v1/generations/{id}"),
        None,
        &[("X-Forwarded-For", "203.0.113.21")],
        None,
    );
    assert_eq!(seen.status, 200);
    behind_proxy
        .send_with("GET", &format!("/v1/generations/{id}"), None, &[("X-Forwarded-For", "2001:db8::9")], None)
        .problem(404, "not_found");

    // Without trusted proxies the header is ignored.
    let direct = TestServer::start(rules);
    direct
        .send_with("GET", "/v1/generations", None, &[("X-Forwarded-For", "203.0.113.9")], None)
        .problem(401, "unauthorized");

    // A rebinding name pointed at this server gets no address-based tier.
    let local = TestServer::start(|_| {});
    assert_eq!(local.send_with("GET", "/v1/generations", None, &[("Host", "localhost")], None).status, 200);
    local
        .send_with("GET", "/v1/generations", None, &[("Host", "evil.example:8080")], None)
        .problem(401, "unauthorized");

    // IPv6 loopback, listed by default as `local`.
    let v6 = TestServer::start(|c| c.listen = "[::1]:0".parse().unwrap());
    assert!(v6.base.contains("[::1]"), "{}", v6.base);
    assert_eq!(v6.get("/v1/generations").status, 200);

    // Admin routes only from the admin allowlist.
    let guarded = accounts_server(|c| c.auth.admin_allowlist = vec!["10.0.0.0/8".into()]);
    let (_, admin) = user_in(&guarded, "root@example.com", "admin");
    guarded.send("GET", "/v1/admin/users", Some(&admin), None).problem(403, "forbidden");
    assert_eq!(guarded.send("GET", "/v1/me", Some(&admin), None).status, 200);
}

#[test]
fn policy_file_edits_apply_without_restart() {
    let s = accounts_server(|_| {});
    s.get("/v1/generations").problem(401, "unauthorized");
    let dir = s.data_dir.join("policy");
    std::fs::create_dir_all(&dir).unwrap();
    let policy = format!("{}\np, anonymous, /v1/generations, GET\n", easel::auth::policy::DEFAULT_POLICY);
    std::fs::write(dir.join("policy.csv"), policy).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while s.get("/v1/generations").status != 200 {
        assert!(std::time::Instant::now() < deadline, "the edited policy was not applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A broken policy leaves the previous one in force.
    std::fs::write(dir.join("model.conf"), "this is not a casbin model").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(s.get("/v1/generations").status, 200);
    std::fs::remove_file(dir.join("model.conf")).unwrap();
    std::fs::remove_file(dir.join("policy.csv")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while s.get("/v1/generations").status != 401 {
        assert!(std::time::Instant::now() < deadline, "removing the policy did not restore the default");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every operation of the spec, for an anonymous caller and users of the free, pro and admin
/// tiers: never a server error; anonymous callers get 401 wherever an account is needed;
/// admin routes refuse everyone but admins; another user's generation and image are 404 to
/// free and pro users and visible to admins.
#[test]
fn every_operation_for_every_principal() {
    let s = accounts_server(|_| {});
    let (owner_id, owner) = user_in(&s, "owner@example.com", "free");
    let g = generate_as(&s, &owner, &small("swept"));
    let gen_id = g["id"].as_str().unwrap().to_string();
    let img_id = g["images"][0]["id"].as_str().unwrap().to_string();
    let principals: Vec<(&str, Option<String>)> = vec![
        ("anonymous", None),
        ("free", Some(user_in(&s, "free@example.com", "free").1)),
        ("pro", Some(user_in(&s, "pro@example.com", "pro").1)),
        ("admin", Some(user_in(&s, "admin@example.com", "admin").1)),
    ];
    let public = |path: &str| {
        ["/health", "/ready", "/v1/archetypes", "/v1/filters", "/v1/auth/register", "/v1/auth/login"].contains(&path)
            || path.starts_with("/v1/models")
            || path.starts_with("/v1/styles")
            // Providers call back without credentials; the plugin verifies each callback.
            || path.starts_with("/v1/callbacks")
    };
    let spec = s.get("/openapi.json").json();
    let mut checked = 0;
    for (path, operations) in spec["paths"].as_object().unwrap() {
        let id = if path.starts_with("/v1/generations") {
            gen_id.as_str()
        } else if path.starts_with("/v1/images") {
            img_id.as_str()
        } else if path.starts_with("/v1/admin/users") {
            owner_id.as_str()
        } else {
            "x"
        };
        let concrete = path.replace("{id}", id);
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let body = (method == "POST" || method == "PATCH").then(|| json!({}));
            for (tier, token) in &principals {
                let r = s.send(&method, &concrete, token.as_deref(), body.as_ref());
                let what = format!("{tier} {method} {concrete}: {} {}", r.status, String::from_utf8_lossy(&r.bytes));
                assert!(r.status < 500, "{what}");
                let admin_route = path.starts_with("/v1/admin");
                if *tier == "anonymous" && !public(path) {
                    assert_eq!(r.status, 401, "{what}");
                } else if admin_route && *tier != "admin" {
                    assert_eq!(r.status, 403, "{what}");
                } else if admin_route || public(path) {
                    assert!(r.status != 401 && r.status != 403, "{what}");
                }
                let owned = path.contains("{id}") && (id == gen_id || id == img_id);
                if owned && method == "GET" && (*tier == "free" || *tier == "pro") {
                    assert_eq!(r.status, 404, "{what}");
                }
                if owned && method == "GET" && *tier == "admin" {
                    assert_eq!(r.status, 200, "{what}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 4 * 25, "{checked} requests");
}
