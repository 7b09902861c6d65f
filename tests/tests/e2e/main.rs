//! End-to-end tests: a real Easel server (real database, real blob store, real wasm plugins
//! built from `plugins/`) driven over HTTP on loopback. The backends are SQLite and a local
//! directory unless `TEST_DATABASE_URL` / `TEST_BLOBS=s3` say otherwise ([`backends`]).
//!
//! One shared server serves most tests ([`shared`]); tests that need their own configuration
//! or a restart start their own ([`TestServer::start`]).

mod accounts;
#[path = "../../support/backends.rs"]
pub mod backends;
mod catalog;
mod errors;
mod generations;
mod limits;
mod platform;
mod plugins;
mod providers;
mod requests;
mod scaffold;
mod scale;
mod spec;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use easel::config::{Config, Overrides};
use serde_json::{Value, json};

/// A server running on its own thread and runtime, with its own data directory.
pub struct TestServer {
    pub base: String,
    pub data_dir: PathBuf,
    /// The configuration it was started with.
    pub config: Config,
    client: reqwest::blocking::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

/// A response, read whole.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Assert a problem+json error with this status and code; returns the body.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "body: {}", String::from_utf8_lossy(&self.bytes));
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status);
        assert!(body["request_id"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
        assert_eq!(Some(body["request_id"].as_str().unwrap()), self.header("x-request-id"));
        body
    }
}

/// The folder where the plugin build put every component (fixtures included).
pub fn wasm_build_dir() -> PathBuf {
    PathBuf::from(easel::plugins::bundled::BUILD_DIR)
}

/// Copy a fixture plugin (its plugin.toml + wasm) into `plugins_dir/<name>`.
pub fn install_fixture(plugins_dir: &Path, fixture: &str, wasm: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/fixtures").join(fixture);
    let dst = plugins_dir.join(fixture);
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::copy(src.join("plugin.toml"), dst.join("plugin.toml")).unwrap();
    std::fs::copy(wasm_build_dir().join(wasm), dst.join(wasm)).unwrap();
}

impl TestServer {
    /// A fresh data directory and a server on a free loopback port.
    pub fn start(configure: impl FnOnce(&mut Config)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut server = Self::start_in(tmp.path(), configure);
        server._tmp = Some(tmp);
        server
    }

    /// A server on an existing data directory (for restarts).
    pub fn start_in(data_dir: &Path, configure: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::load(None, &Overrides::default()).unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data_dir.to_path_buf();
        config.jobs.workers = 2;
        config.jobs.poll_interval_ms = 100;
        backends::configure(&mut config, data_dir);
        configure(&mut config);
        let kept = config.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let running = match easel::server::start(config).await {
                    Ok(r) => r,
                    Err(e) => {
                        addr_tx.send(Err(format!("{e:#}"))).unwrap();
                        return;
                    }
                };
                addr_tx.send(Ok(running.addr)).unwrap();
                let _ = stop_rx.await;
                running.stop().await;
            });
        });
        let addr = addr_rx.recv().unwrap().unwrap_or_else(|e| panic!("server failed to start: {e}"));
        Self {
            base: format!("http://{addr}"),
            data_dir: data_dir.to_path_buf(),
            config: kept,
            client: reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap(),
            stop: Some(stop_tx),
            thread: Some(thread),
            _tmp: None,
        }
    }

    /// Keep a temporary directory alive as long as the server.
    pub fn keep(&mut self, tmp: tempfile::TempDir) {
        self._tmp = Some(tmp);
    }

    /// Stop the server and wait for it.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn read(r: reqwest::blocking::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().unwrap().to_vec();
        Resp { status, headers, bytes }
    }

    pub fn get(&self, path: &str) -> Resp {
        Self::read(self.client.get(format!("{}{path}", self.base)).send().unwrap())
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        Self::read(self.client.post(format!("{}{path}", self.base)).json(body).send().unwrap())
    }

    /// `POST` a JSON body with extra headers (e.g. `Idempotency-Key`).
    pub fn post_json_with(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::read(request.send().unwrap())
    }

    /// Any request, with a bearer `token` (None: none) and an optional JSON body.
    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
        self.send_with(method, path, token, &[], body)
    }

    /// [`TestServer::send`] with extra headers.
    pub fn send_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::read(request.send().unwrap())
    }

    /// The server's database, opened beside it (for set-up the API does not offer, such as
    /// making the first admin, and for checks below the API).
    pub fn db(&self) -> std::sync::Arc<dyn easel::db::Database> {
        let config = self.config.clone();
        block_on(async move { easel::db::connect(&config).await.unwrap() })
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Resp {
        Self::read(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", content_type)
                .body(body.to_vec())
                .send()
                .unwrap(),
        )
    }

    /// `POST /v1/generations` with `Prefer: wait=60`; asserts 200 and returns the generation.
    #[track_caller]
    pub fn generate(&self, body: Value) -> Value {
        let r = Self::read(
            self.client
                .post(format!("{}/v1/generations", self.base))
                .header("Prefer", "wait=60")
                .json(&body)
                .send()
                .unwrap(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        r.json()
    }

    /// Create without waiting; returns the 202 body.
    #[track_caller]
    pub fn create(&self, body: Value) -> Value {
        let r = self.post_json("/v1/generations", &body);
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
        r.json()
    }

    /// Poll until the generation is final.
    pub fn poll(&self, id: &str) -> Value {
        for _ in 0..600 {
            let g = self.get(&format!("/v1/generations/{id}")).json();
            if ["succeeded", "failed", "canceled"].contains(&g["status"].as_str().unwrap()) {
                return g;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("generation {id} did not finish in 60 s");
    }

    /// Download an image file and decode it.
    pub fn download(&self, image: &Value) -> (Resp, image::DynamicImage) {
        let r = self.get(image["url"].as_str().unwrap());
        assert_eq!(r.status, 200);
        let img = image::load_from_memory(&r.bytes).expect("a decodable image");
        (r, img)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Run a future to completion on a runtime of its own.
pub fn block_on<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f))
        .join()
        .unwrap()
}

/// The server most tests share (started once per test binary).
pub fn shared() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let tmp = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        TestServer::start_in(tmp.path(), |c| c.jobs.workers = 2)
    })
}

/// Install (once) the server's JSON log format (`log_format = "json"`), keeping everything
/// the server logs at debug level and above, so tests can check what reaches the log (no key,
/// the request and generation ids on every line of a generation). Returns the buffer.
pub fn captured_logs() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&buffer);
        let writer = move || LogWriter(std::sync::Arc::clone(&sink));
        let filter = tracing_subscriber::EnvFilter::new("easel=debug");
        let _ = easel::telemetry::try_init_with(easel::config::LogFormat::Json, filter, writer, false);
        buffer
    })
    .clone()
}

/// Appends log lines to the shared buffer.
struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A small, quick generation request.
pub fn small(prompt: &str) -> Value {
    json!({ "prompt": prompt, "width": 128, "height": 128, "seed": 7 })
}
