//! Outbound HTTP for providers, performed by the host (see `wit/http.wit` for the rules).
//!
//! Put `{{secret:NAME}}` in a header value to have the host insert a secret the operator (or
//! the caller, through `X-Provider-Key`) configured; the plugin never sees the key.

use crate::bindings::provider::easel::plugin::http as wit;
use crate::bindings::provider::easel::plugin::types::{PluginError, RetryHint};

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

/// Register the request that cancels the upstream job this call started (or clear it with
/// `None`). If the generation is canceled while the call runs, the host stops the call and
/// sends this request once, with secrets substituted as for [`fetch`].
pub fn set_cancel(request: Option<&Request>) {
    wit::set_cancel(request);
}

/// The URL the provider may call back for the current generation, when the operator enabled
/// callbacks for this plugin (`[plugins.<id>] callbacks = true`).
pub fn callback_url() -> Option<String> {
    wit::callback_url()
}

/// Wait up to `timeout_ms` for an authentic callback for the current generation (true), or
/// time out (false). Use it instead of sleeping between polls.
pub fn await_callback(timeout_ms: u32) -> bool {
    wit::await_callback(timeout_ms)
}

/// `scheme://host[:port]` of an absolute http(s) URL, lowercased, without a default port;
/// `None` for anything else (relative URLs, other schemes, user-info in the authority).
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

/// Accept a URL the upstream handed back (a status, result or cancel URL, named `what`) only on
/// the origin of `base`: the host would not send the key anywhere else, and another origin
/// means a confused or hostile upstream. The refusal is final (`Denied`), never retried.
pub fn same_origin(url: &str, base: &str, what: &str) -> Result<(), PluginError> {
    match (origin(url), origin(base)) {
        (Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(PluginError::Denied(format!(
            "the provider returned a {what} outside the configured base_url origin ({}); refusing to follow it",
            origin(url).unwrap_or_else(|| "not an http(s) URL".into())
        ))),
    }
}

/// Turn a failed fetch into the plugin error the host understands: timeouts and transport
/// failures are retried by the host; refusals, oversized answers and bad requests are not.
pub fn fetch_error(e: HttpError) -> PluginError {
    match e {
        HttpError::Timeout(m) => PluginError::Timeout(m),
        HttpError::Transport(m) => PluginError::Http(m),
        HttpError::Denied(m) => PluginError::Denied(m),
        // The same request would get the same answer: not worth a retry.
        HttpError::TooLarge(m) => PluginError::Denied(format!("response too large: {m}")),
        HttpError::Invalid(m) => PluginError::Internal(m),
    }
}

/// The default mapping of an upstream error status to a plugin error, with `message`
/// (the upstream's own words, never a key):
///
/// | status | error | host behaviour |
/// |---|---|---|
/// | 401, 403 | `unauthorized` | fails at once (`unauthorized_provider`) |
/// | 408, 409, 425, 429, 5xx | `retryable` with [`Response::retry_after_ms`] | retried with backoff |
/// | other 4xx | `invalid-input` | fails at once (`provider_error`) |
///
/// Providers refine it first where the body says more (a safety refusal is `content-blocked`).
pub fn status_error(response: &Response, message: impl Into<String>) -> PluginError {
    let message = format!("{} {}", response.status, message.into());
    match response.status {
        401 | 403 => PluginError::Unauthorized(message),
        408 | 409 | 425 | 429 | 500..=599 => {
            PluginError::Retryable(RetryHint { message, retry_after_ms: response.retry_after_ms() })
        }
        _ => PluginError::InvalidInput(message),
    }
}

/// Parse a duration such as Google's `retryDelay` (`"15s"`, `"1.5s"`, `"250ms"`) into
/// milliseconds, capped at one hour.
pub fn parse_duration_ms(text: &str) -> Option<u32> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (t, 1000.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| (value * scale).min(3_600_000.0).round() as u32)
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

    /// How long the server asked us to wait, in milliseconds: `retry-after-ms` (OpenAI) or
    /// `Retry-After` in seconds (RFC 9110; the HTTP-date form is not used by these APIs and
    /// is ignored). Capped at one hour.
    pub fn retry_after_ms(&self) -> Option<u32> {
        if let Some(ms) = self.header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
            && ms.is_finite()
            && ms >= 0.0
        {
            return Some(ms.min(3_600_000.0).round() as u32);
        }
        self.header("retry-after").and_then(parse_duration_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(origin("https://queue.fal.run/fal-ai/flux/requests/x").as_deref(), Some("https://queue.fal.run"));
        assert_eq!(origin("HTTPS://Queue.Fal.Run:443/x").as_deref(), Some("https://queue.fal.run"));
        assert_eq!(origin("http://127.0.0.1:8080?x").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin("http://user@evil/x"), None);
        assert_eq!(origin("file:///etc/passwd"), None);
        assert_eq!(origin("/relative"), None);
        assert!(same_origin("http://127.0.0.1:1/a", "http://127.0.0.1:1", "status_url").is_ok());
        assert!(matches!(
            same_origin("http://127.0.0.2:1/a", "http://127.0.0.1:1", "status_url"),
            Err(PluginError::Denied(m)) if m.contains("status_url")
        ));
    }
}
