//! Outbound HTTP for providers, performed by the host (see `wit/http.wit` for the rules).
//!
//! Put `{{secret:NAME}}` in a header value to have the host insert a secret the operator (or
//! the caller, through `X-Provider-Key`) configured; the plugin never sees the key.

use crate::bindings::provider::easel::plugin::http as wit;

pub use wit::{HttpError, Request, Response};

/// Perform `request` through the host.
pub fn fetch(request: &Request) -> Result<Response, HttpError> {
    wit::fetch(request)
}

/// `POST url` with a JSON body (already serialized) and extra headers; returns the response.
pub fn post_json(url: &str, headers: &[(&str, &str)], json: &str) -> Result<Response, HttpError> {
    let mut all: Vec<(String, String)> = vec![("content-type".into(), "application/json".into())];
    all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    fetch(&Request {
        method: "POST".into(),
        url: url.into(),
        headers: all,
        body: Some(json.as_bytes().to_vec()),
        timeout_ms: None,
    })
}

/// `GET url` with extra headers.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
    fetch(&Request {
        method: "GET".into(),
        url: url.into(),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: None,
        timeout_ms: None,
    })
}

impl Response {
    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}
