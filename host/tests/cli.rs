//! The operator's command line, run as a real process: `easel serve` from a fresh directory
//! with no flags (the README's first run: a relative default data dir), `easel config check`,
//! `easel health`, the account commands `easel user disable|enable` and `easel key
//! list|revoke` against a running server sharing the SQLite file, and a SIGKILL in the middle
//! of storing images.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `easel` with `args`, run in `dir`, with no `EASEL_*` variable of the test's environment.
fn easel(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_easel"));
    cmd.current_dir(dir).args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().to_ascii_uppercase().starts_with("EASEL_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run easel")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `easel serve` in `dir` with only a port of its own: everything else is the default.
fn serve(dir: &Path) -> Server {
    serve_with(dir, &[])
}

/// [`serve`] with extra environment variables.
fn serve_with(dir: &Path, env: &[(&str, &str)]) -> Server {
    let log = std::fs::File::options().create(true).append(true).open(dir.join("server.log")).unwrap();
    let mut cmd = easel(dir, &["serve", "--listen", "127.0.0.1:0"]);
    cmd.env("EASEL_PLUGINS__WATCH", "false").env("EASEL_SOMETHING_UNRELATED", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().expect("start easel serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let Some(addr) = line.trim().strip_prefix("listening on ") else {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        panic!("easel serve did not start: {line:?}; log:\n{log}");
    };
    Server { child, base: addr.to_string() }
}

fn get(url: &str, key: Option<&str>) -> u16 {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut request = client.get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().unwrap().status().as_u16()
}

/// Wait (at most 15 s: other processes' credential caches last 5 s) until `GET url` answers `status`.
fn eventually(url: &str, key: &str, status: u16) {
    let start = Instant::now();
    loop {
        let got = get(url, Some(key));
        if got == status {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{url} still answers {got}, not {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn serve_from_a_fresh_directory_with_the_default_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    // The relative default `./easel-data` was resolved against the working directory.
    assert!(dir.path().join("easel-data/easel.db").is_file());
    assert!(dir.path().join("easel-data/cache/plugins").is_dir());
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("EASEL_SOMETHING_UNRELATED"), "the ignored variable is reported:\n{log}");

    let ok = run(&mut easel(dir.path(), &["health", "--url", &server.base]));
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with("ok: "), "{}", text(&ok.stdout));
    let ready = run(&mut easel(dir.path(), &["health", "--ready", "--url", &server.base]));
    assert!(ready.status.success(), "{}", text(&ready.stderr));
    // `easel health` without --url asks the configured listen address.
    let port = server.base.rsplit(':').next().unwrap();
    let by_config = run(easel(dir.path(), &["health"]).env("EASEL_LISTEN", format!("0.0.0.0:{port}")));
    assert!(by_config.status.success(), "{}", text(&by_config.stderr));

    drop(server);
    let down = run(&mut easel(dir.path(), &["health", "--url", "http://127.0.0.1:9", "--timeout", "2"]));
    assert_eq!(down.status.code(), Some(1));
    assert!(text(&down.stderr).contains("127.0.0.1:9/health"), "{}", text(&down.stderr));
}

#[test]
fn config_check_prints_the_effective_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("easel.toml"),
        "[jobs]\nworkers = 2\n[plugins.gemini]\nsecrets = { GEMINI_API_KEY = \"hunter2-secret\" }\n",
    )
    .unwrap();
    let out = run(easel(dir.path(), &["config", "check", "--config", "easel.toml", "--listen", "127.0.0.1:9090"])
        .env("EASEL_JOBS__LEASE_SECONDS", "45")
        .env("EASEL_API_KEY", "esk_of_the_cli_client")
        .env("EASEL_NOT_A_KEY", "x"));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    // File, environment and flags, in that order, as `serve` loads them.
    assert!(stdout.contains("listen = \"127.0.0.1:9090\""), "{stdout}");
    assert!(stdout.contains("workers = 2"), "{stdout}");
    assert!(stdout.contains("lease_seconds = 45"), "{stdout}");
    let data_dir = dir.path().canonicalize().unwrap().join("easel-data");
    assert!(stdout.contains(&format!("data_dir = \"{}\"", data_dir.display())), "absolute data_dir:\n{stdout}");
    assert!(!stdout.contains("hunter2-secret") && stdout.contains("[redacted]"), "{stdout}");
    assert!(stderr.contains("EASEL_NOT_A_KEY") && !stderr.contains("EASEL_API_KEY"), "{stderr}");

    // Errors: exit 2 and the key named, for the file and for the environment.
    std::fs::write(dir.path().join("bad.toml"), "[jobs]\nworkres = 2\n").unwrap();
    let bad = run(&mut easel(dir.path(), &["config", "check", "--config", "bad.toml"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("workres"), "{}", text(&bad.stderr));
    let bad_env = run(easel(dir.path(), &["config", "check"]).env("EASEL_JOBS__WORKERS", "0"));
    assert_eq!(bad_env.status.code(), Some(2));
    assert!(text(&bad_env.stderr).contains("jobs.workers"), "{}", text(&bad_env.stderr));
}

#[test]
fn operators_list_and_revoke_keys_and_disable_users_of_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let cli = |args: &[&str]| {
        let out = run(easel(dir.path(), args).env("EASEL_PLUGINS__WATCH", "false"));
        assert!(out.status.success(), "easel {args:?}: {}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    cli(&["user", "create", "--email", "ops@example.com"]);
    let (first, _) = cli(&["key", "create", "--user", "ops@example.com", "--name", "laptop"]);
    let (second, _) = cli(&["key", "create", "--user", "ops@example.com", "--name", "ci"]);
    let (first, second) = (first.trim(), second.trim());
    let me = format!("{}/v1/me", server.base);
    eventually(&me, first, 200);
    eventually(&me, second, 200);

    let (listed, _) = cli(&["key", "list"]);
    let rows: Vec<&str> = listed.lines().filter(|l| l.contains("ops@example.com")).collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(!listed.contains(first) && !listed.contains(second), "secrets are never listed: {listed}");
    let laptop = rows.iter().find(|r| r.contains("\tlaptop\t")).unwrap();
    let key_id = laptop.split('\t').next().unwrap();
    assert!(key_id.starts_with("key_"), "{laptop}");
    let (only_theirs, _) = cli(&["key", "list", "--user", "ops@example.com"]);
    assert_eq!(only_theirs.lines().count(), 3, "header and two keys: {only_theirs}");

    cli(&["key", "revoke", key_id]);
    eventually(&me, first, 401);
    assert_eq!(get(&me, Some(second)), 200, "the other key still works");
    let again = run(&mut easel(dir.path(), &["key", "revoke", key_id]));
    assert!(!again.status.success(), "revoking a revoked key is an error");
    assert!(text(&again.stderr).contains(key_id), "{}", text(&again.stderr));

    cli(&["user", "disable", "ops@example.com"]);
    let (users, _) = cli(&["user", "list"]);
    assert!(users.lines().any(|l| l.contains("ops@example.com") && l.ends_with("disabled")), "{users}");
    let start = Instant::now();
    while get(&me, Some(second)) == 200 {
        assert!(start.elapsed() < Duration::from_secs(15), "a disabled user's key still works");
        std::thread::sleep(Duration::from_millis(200));
    }
    cli(&["user", "enable", "ops@example.com"]);
    eventually(&me, second, 200);
}

/// Staging files (`<key>#<n>`) under the blob directory.
fn staging_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.rsplit_once('#').is_some()) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_kill_mid_store_leaves_no_staging_file_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let lease = [("EASEL_JOBS__LEASE_SECONDS", "2")];
    let server = serve_with(dir.path(), &lease);
    // Keep the workers storing images, then SIGKILL the server in the middle of it.
    let client = reqwest::blocking::Client::new();
    for seed in 0..12 {
        let r = client
            .post(format!("{}/v1/generations", server.base))
            .json(&serde_json::json!({"prompt": "kill me", "width": 1024, "height": 1024, "n": 4, "seed": seed}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
    }
    std::thread::sleep(Duration::from_millis(1500));
    drop(server); // SIGKILL
    // And one as a kill long ago would have left it.
    let blobs = dir.path().join("easel-data/blobs");
    std::fs::create_dir_all(blobs.join("images/gen_killed")).unwrap();
    let stale = blobs.join("images/gen_killed/0.png#1");
    std::fs::write(&stale, b"half an image").unwrap();
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(600);
    std::fs::File::options().write(true).open(&stale).unwrap().set_modified(long_ago).unwrap();

    let _server = serve_with(dir.path(), &lease);
    let start = Instant::now();
    while !staging_files(&blobs).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "left behind: {:?}", staging_files(&blobs));
        std::thread::sleep(Duration::from_millis(200));
    }
}
