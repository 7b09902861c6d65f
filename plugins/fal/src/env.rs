//! What the queue flow needs from the outside world, behind one trait so the whole flow
//! (submit, poll, cancel registration, errors) runs in native unit tests against a script.

use easel_plugin_sdk::http::{self, HttpError, Request, Response};

/// The host services a generation uses.
pub trait Env {
    /// Perform one HTTP request through the host.
    fn fetch(&mut self, request: &Request) -> Result<Response, HttpError>;
    /// Register (or clear) the request that cancels the upstream job.
    fn set_cancel(&mut self, request: Option<&Request>);
    /// Report progress to the API client.
    fn progress(&mut self, fraction: f32, stage: &str);
    /// Wait between two status polls.
    fn sleep_ms(&mut self, ms: u32);
    /// The URL fal should call back when the job is done (`fal_webhook`), when the operator
    /// enabled callbacks for this plugin.
    fn callback_url(&mut self) -> Option<String>;
}

/// The real host: `http.fetch`, `http.set-cancel`, `progress.report`, and waits between polls
/// through `http.await-callback` (the host ends them early on a cancel or a verified callback).
pub struct HostEnv;

impl Env for HostEnv {
    fn fetch(&mut self, request: &Request) -> Result<Response, HttpError> {
        http::fetch(request)
    }

    fn set_cancel(&mut self, request: Option<&Request>) {
        http::set_cancel(request);
    }

    fn progress(&mut self, fraction: f32, stage: &str) {
        easel_plugin_sdk::host::progress(fraction, stage);
    }

    fn sleep_ms(&mut self, ms: u32) {
        // Waiting in the host (not a WASI sleep) lets a canceled generation stop within 20 ms
        // and a verified provider callback end the wait at once.
        let _ = http::await_callback(ms);
    }

    fn callback_url(&mut self) -> Option<String> {
        http::callback_url()
    }
}
