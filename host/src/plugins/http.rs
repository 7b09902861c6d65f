//! The `http` host import: outbound HTTP on a provider plugin's behalf, and the rules that make
//! it safe to hand to third-party code.
//!
//! - A URL is fetched only when its scheme, host and port match a pattern the manifest asks
//!   for (`allowed_outbound_hosts`) **and** one the operator grants (`[plugins.<id>]`).
//! - Every address the host name resolves to must be public: loopback, private, link-local
//!   (cloud metadata at 169.254.169.254 included), CGNAT, multicast and unspecified addresses
//!   are refused unless the operator sets `allow_private_ips`. The connection is pinned to the
//!   checked addresses, so DNS cannot change between the check and the connect.
//! - Redirects are followed by hand (5 at most), each hop checked again; headers carrying a
//!   secret are dropped when a redirect leaves the origin.
//! - `{{secret:NAME}}` in a header value is replaced by the secret when the manifest declares
//!   NAME and the operator configured it (or, for the first declared secret, the caller sent
//!   `X-Provider-Key`); the plugin never receives the value and it is never logged.
//! - Each fetch gets at most what is left of the call's time budget; bodies are capped at
//!   `max_response_bytes`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use super::runtime::HostState;
use super::runtime::bindings::provider::easel::plugin::http as wit;
use crate::config::Secret;

/// A plugin's HTTP request as the ABI carries it.
pub type WitRequest = wit::Request;

/// Why a fetch gave no response, as the ABI carries it.
pub type HttpFailure = wit::HttpError;

/// Time allowed for a cancel request sent on a canceled generation's behalf.
const CANCEL_BUDGET: Duration = Duration::from_secs(10);

/// Send the cancel request a plugin registered for this call, once, in the background.
pub fn send_registered_cancel(ctx: &super::runtime::CallContext) {
    let Some(request) = ctx.cancel.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
    let Some(policy) = ctx.http.clone() else { return };
    let (plugin, caller_key) = (Arc::clone(&ctx.plugin_id), ctx.caller_key.clone());
    let target = Url::parse(&request.url).map(|u| origin(&u)).unwrap_or_default();
    let handle = policy.handle.clone();
    let task = async move {
        match policy.execute(request, CANCEL_BUDGET, caller_key.as_ref()).await {
            Ok(r) => tracing::info!(%plugin, %target, status = r.status, "sent the provider's cancel request"),
            Err(e) => tracing::warn!(%plugin, %target, error = ?e, "the provider's cancel request failed"),
        }
    };
    handle.spawn(tracing::Instrument::in_current_span(task));
}

/// Most redirects followed for one fetch.
const MAX_REDIRECTS: usize = 5;

/// A `scheme://host[:port]` pattern; `*.` wildcards the host's subdomains, `*` any port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    scheme: String,
    host: String,
    wildcard: bool,
    port: Option<u16>,
    any_port: bool,
}

impl HostPattern {
    /// Parse `https://api.example.com`, `https://*.example.com`, `http://127.0.0.1:8080`, `http://localhost:*`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| format!("{s:?}: expected scheme://host[:port]"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("{s:?}: only http and https are allowed"));
        }
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(format!("{s:?}: give a host, not a path"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
            _ => (rest, None),
        };
        let (any_port, port) = match port {
            None => (false, None),
            Some("*") => (true, None),
            Some(p) => (false, Some(p.parse::<u16>().map_err(|_| format!("{s:?}: bad port"))?)),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(h) => (true, h.to_string()),
            None => (false, host),
        };
        if host.is_empty() || host.contains('*') {
            return Err(format!("{s:?}: bad host"));
        }
        Ok(Self { scheme, host, wildcard, port, any_port })
    }

    /// Does `url` match?
    pub fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let host_ok = if self.wildcard { host.ends_with(&format!(".{}", self.host)) } else { host == self.host };
        let port = url.port_or_known_default();
        let default = if self.scheme == "https" { 443 } else { 80 };
        let port_ok = self.any_port || port == Some(self.port.unwrap_or(default));
        url.scheme() == self.scheme && host_ok && port_ok
    }
}

/// What one provider plugin may do over HTTP.
pub struct HttpPolicy {
    /// Patterns from the manifest.
    pub asked: Vec<HostPattern>,
    /// Patterns the operator granted.
    pub granted: Vec<HostPattern>,
    /// Allow private and loopback addresses (local backends, fixture tests).
    pub allow_private_ips: bool,
    /// Secret names the manifest declares.
    pub declared_secrets: Vec<String>,
    /// Secret values the operator configured.
    pub secrets: BTreeMap<String, Secret>,
    /// Response body cap.
    pub max_response_bytes: u64,
    /// The runtime that runs the requests.
    pub handle: tokio::runtime::Handle,
    /// Any host may be reached (still public addresses only, unless `allow_private_ips`):
    /// for URLs users give (`input_image.url`), where no allowlist can exist.
    pub any_host: bool,
    /// Origins (`scheme://host:port`, as [`origin`] writes them) reached even though they are
    /// on private addresses or non-standard ports: the operator's
    /// `[inputs] allowed_private_origins`. Exact matches only; a redirect elsewhere is judged
    /// by the usual rules.
    pub private_origins: Vec<String>,
    /// The plugin's client, built on first use: its connections are pooled across calls, and
    /// its resolver refuses names that resolve to a non-public address (checked for every new
    /// connection, so DNS cannot change between the check and the connect).
    pub client: std::sync::OnceLock<reqwest::Client>,
    /// The client for [`HttpPolicy::private_origins`] only, whose resolver allows private
    /// addresses: only URLs of a listed origin are ever sent through it, so its pooled
    /// connections all lead to listed origins.
    pub private_client: std::sync::OnceLock<reqwest::Client>,
}

/// Resolves host names for a plugin's client and refuses private, loopback and link-local
/// answers unless the operator allows them.
struct CheckedResolver {
    allow_private_ips: bool,
}

/// A name that resolved to an address plugins may not reach.
#[derive(Debug)]
struct RefusedAddress(String);

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusedAddress {}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private_ips = self.allow_private_ips;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            if !allow_private_ips && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(Box::new(RefusedAddress(format!(
                    "{host} resolves to {}, a private, loopback or link-local address",
                    bad.ip()
                ))) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Fetch a URL a user gave (an input image) with the same defences as plugin HTTP: http(s)
/// only, no credentials in the URL, public addresses on the standard ports only (checked after
/// DNS, pinned, again on every redirect) except the exact origins in `private_origins`
/// (`[inputs] allowed_private_origins`), at most `max_bytes`, within `budget`. Returns the
/// body of a 2xx answer.
pub async fn fetch_public(
    url: &str,
    max_bytes: u64,
    budget: Duration,
    private_origins: &[String],
) -> Result<Vec<u8>, HttpFailure> {
    let policy = HttpPolicy {
        asked: Vec::new(),
        granted: Vec::new(),
        allow_private_ips: false,
        declared_secrets: Vec::new(),
        secrets: BTreeMap::new(),
        max_response_bytes: max_bytes,
        handle: tokio::runtime::Handle::current(),
        any_host: true,
        private_origins: private_origins.to_vec(),
        client: Default::default(),
        private_client: Default::default(),
    };
    let request =
        wit::Request { method: "GET".into(), url: url.to_string(), headers: Vec::new(), body: None, timeout_ms: None };
    let response = policy.execute(request, budget, None).await?;
    if !(200..300).contains(&response.status) {
        return Err(Fail::Transport(format!("the server answered HTTP {}", response.status)));
    }
    Ok(response.body)
}

/// Is this address one a plugin may reach without `allow_private_ips`? Only globally
/// reachable ones, by IANA's special-purpose registries ([`crate::net`]).
pub fn is_public(ip: IpAddr) -> bool {
    crate::net::is_global(ip)
}

type Fail = wit::HttpError;

impl HttpPolicy {
    /// The client for one request: the private one for a listed origin, else the plugin's.
    fn client(&self, listed: bool) -> Result<&reqwest::Client, Fail> {
        let (cell, allow_private_ips) =
            if listed { (&self.private_client, true) } else { (&self.client, self.allow_private_ips) };
        if let Some(c) = cell.get() {
            return Ok(c);
        }
        let built = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver { allow_private_ips }))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Fail::Transport(e.to_string()))?;
        Ok(cell.get_or_init(|| built))
    }

    /// May `url` be requested? Ok(true) when its origin is one of the operator's
    /// [`HttpPolicy::private_origins`] (private addresses and any port allowed for it).
    fn check_url(&self, url: &Url) -> Result<bool, Fail> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(Fail::Denied(format!("scheme {:?} is not allowed", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Fail::Denied("credentials in URLs are not allowed".into()));
        }
        let origin = origin(url);
        if self.private_origins.contains(&origin) {
            return Ok(true);
        }
        if !self.any_host {
            if !self.asked.iter().any(|p| p.matches(url)) {
                return Err(Fail::Denied(format!("{origin} is not in the plugin's allowed_outbound_hosts")));
            }
            if !self.granted.iter().any(|p| p.matches(url)) {
                return Err(Fail::Denied(format!(
                    "{origin} is not granted by the operator ([plugins.<id>] allowed_outbound_hosts)"
                )));
            }
        }
        // Addresses written as IP literals never reach the resolver: check them here.
        let literal =
            url.host_str().and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok());
        if let Some(ip) = literal
            && !self.allow_private_ips
            && !is_public(ip)
        {
            return Err(Fail::Denied(format!("{ip} is a private, loopback or link-local address")));
        }
        if self.any_host && !matches!(url.port_or_known_default(), Some(80 | 443)) {
            return Err(Fail::Denied(format!("{origin}: only the standard ports 80 and 443 are fetched")));
        }
        Ok(false)
    }

    /// Substitute `{{secret:NAME}}` in header values; returns the headers and the names of
    /// those that carry a secret.
    fn headers(
        &self,
        pairs: &[(String, String)],
        caller_key: Option<&Secret>,
    ) -> Result<(HeaderMap, Vec<HeaderName>), Fail> {
        let mut map = HeaderMap::new();
        let mut secret_headers = Vec::new();
        for (name, value) in pairs {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Fail::Invalid(format!("bad header name {name:?}")))?;
            // One left-to-right pass: substituted text is never searched again, so a secret (or a
            // caller's key) that itself contains `{{secret:…}}` is inserted literally.
            let mut out = String::with_capacity(value.len());
            let mut rest = value.as_str();
            let mut carries_secret = false;
            while let Some(start) = rest.find("{{secret:") {
                let end = rest[start..]
                    .find("}}")
                    .map(|e| start + e)
                    .ok_or_else(|| Fail::Invalid("unterminated {{secret:…}}".into()))?;
                let secret_name = &rest[start + 9..end];
                if !self.declared_secrets.iter().any(|d| d == secret_name) {
                    return Err(Fail::Denied(format!("secret {secret_name} is not declared in plugin.toml")));
                }
                let primary = self.declared_secrets.first().is_some_and(|d| d == secret_name);
                let secret = match caller_key {
                    Some(key) if primary => key,
                    _ => self.secrets.get(secret_name).ok_or_else(|| {
                        Fail::Denied(format!("secret {secret_name} is not configured by the operator"))
                    })?,
                };
                out.push_str(&rest[..start]);
                out.push_str(secret.expose());
                rest = &rest[end + 2..];
                carries_secret = true;
            }
            out.push_str(rest);
            let value = out;
            let mut header =
                HeaderValue::from_str(&value).map_err(|_| Fail::Invalid(format!("bad value for header {name}")))?;
            if carries_secret {
                header.set_sensitive(true);
                secret_headers.push(name.clone());
            }
            map.append(name, header);
        }
        Ok((map, secret_headers))
    }

    /// Perform one request within `budget`.
    pub async fn execute(
        &self,
        request: wit::Request,
        budget: Duration,
        caller_key: Option<&Secret>,
    ) -> Result<wit::Response, Fail> {
        let started = Instant::now();
        let mut method = Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Fail::Invalid(format!("bad method {:?}", request.method)))?;
        let mut url = Url::parse(&request.url).map_err(|e| Fail::Invalid(format!("bad URL: {e}")))?;
        if request.url.contains("{{secret:") {
            return Err(Fail::Denied("secrets may be used in header values only".into()));
        }
        let (mut headers, secret_headers) = self.headers(&request.headers, caller_key)?;
        let mut body = request.body;
        for hop in 0..=MAX_REDIRECTS {
            let listed = self.check_url(&url)?;
            let left = budget.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(Fail::Timeout("the call's time budget is used up".into()));
            }
            let client = self.client(listed)?;
            // The timeout covers name resolution, connecting, and reading the whole body.
            let mut rb = client.request(method.clone(), url.clone()).headers(headers.clone()).timeout(left);
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let response = rb.send().await.map_err(|e| describe(&e, &url))?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get("location").and_then(|v| v.to_str().ok())
            {
                if hop == MAX_REDIRECTS {
                    return Err(Fail::Denied(format!("more than {MAX_REDIRECTS} redirects")));
                }
                let next = url.join(location).map_err(|e| Fail::Transport(format!("bad redirect: {e}")))?;
                if origin(&next) != origin(&url) {
                    for name in &secret_headers {
                        headers.remove(name);
                    }
                }
                if status == reqwest::StatusCode::SEE_OTHER
                    || ((status == reqwest::StatusCode::MOVED_PERMANENTLY || status == reqwest::StatusCode::FOUND)
                        && method == Method::POST)
                {
                    method = Method::GET;
                    body = None;
                }
                url = next;
                continue;
            }
            let out_headers = response
                .headers()
                .iter()
                .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
                .collect();
            if let Some(len) = response.content_length()
                && len > self.max_response_bytes
            {
                return Err(Fail::TooLarge(format!("{len} bytes exceeds the limit of {}", self.max_response_bytes)));
            }
            let mut stream = response.bytes_stream();
            let mut data = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| describe(&e, &url))?;
                if (data.len() + chunk.len()) as u64 > self.max_response_bytes {
                    return Err(Fail::TooLarge(format!(
                        "the body exceeds the limit of {} bytes",
                        self.max_response_bytes
                    )));
                }
                data.extend_from_slice(&chunk);
            }
            return Ok(wit::Response { status: status.as_u16(), headers: out_headers, body: data });
        }
        Err(Fail::Denied(format!("more than {MAX_REDIRECTS} redirects")))
    }
}

/// `scheme://host:port` of a URL, with the scheme's default port written out.
pub fn origin(url: &Url) -> String {
    format!("{}://{}:{}", url.scheme(), url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0))
}

/// A refused or failed fetch in plain words.
pub fn describe_error(e: &Fail) -> String {
    match e {
        Fail::Denied(m) => format!("refused: {m}"),
        Fail::Timeout(m) => format!("timed out: {m}"),
        Fail::TooLarge(m) => format!("too large: {m}"),
        Fail::Transport(m) => format!("failed: {m}"),
        Fail::Invalid(m) => format!("invalid: {m}"),
    }
}

fn describe(e: &reqwest::Error, url: &Url) -> Fail {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<RefusedAddress>() {
            return Fail::Denied(refused.0.clone());
        }
        source = cause.source();
    }
    if e.is_timeout() {
        Fail::Timeout(format!("{} did not answer in time", origin(url)))
    } else {
        // reqwest's message names the URL (never a header), so it carries no secret.
        Fail::Transport(e.to_string())
    }
}

impl wit::Host for HostState {
    fn fetch(&mut self, request: wit::Request) -> Result<wit::Response, wit::HttpError> {
        let Some(policy) = self.ctx.http.clone() else {
            return Err(Fail::Denied("this plugin may not make HTTP requests".into()));
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        let budget = request.timeout_ms.map_or(left, |t| left.min(Duration::from_millis(u64::from(t))));
        let method = request.method.clone();
        let target = Url::parse(&request.url).map(|u| origin(&u)).unwrap_or_default();
        if self.ctx.abandoned() {
            return Err(Fail::Timeout("the generation was canceled".into()));
        }
        // A canceled generation stops waiting for the response within 20 ms.
        let abandon = Arc::clone(&self.ctx.abandon);
        let result = policy.handle.block_on(async {
            tokio::select! {
                r = policy.execute(request, budget, self.ctx.caller_key.as_ref()) => r,
                _ = async {
                    while !abandon.load(std::sync::atomic::Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                } => Err(Fail::Timeout("the generation was canceled".into())),
            }
        });
        match &result {
            Ok(r) => tracing::debug!(plugin = %self.ctx.plugin_id, %method, %target, status = r.status, "plugin fetch"),
            Err(e) => {
                tracing::warn!(plugin = %self.ctx.plugin_id, %method, %target, error = ?e, "plugin fetch refused or failed")
            }
        }
        result
    }

    fn callback_url(&mut self) -> Option<String> {
        self.ctx.callback.as_ref().map(|c| c.url.clone())
    }

    fn await_callback(&mut self, timeout_ms: u32) -> bool {
        // Never past the call's own deadline; a canceled call stops waiting within 20 ms.
        let left = self.deadline.saturating_duration_since(Instant::now());
        let wait = Duration::from_millis(u64::from(timeout_ms)).min(left);
        let abandon = Arc::clone(&self.ctx.abandon);
        let arrived = self.ctx.callback.as_ref().map(|c| Arc::clone(&c.arrived));
        let Some(handle) = self.ctx.http.as_ref().map(|h| h.handle.clone()) else {
            std::thread::sleep(wait);
            return false;
        };
        handle.block_on(async move {
            let signal = async {
                match arrived {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            };
            let stop = async {
                while !abandon.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::select! {
                _ = signal => true,
                _ = tokio::time::sleep(wait) => false,
                _ = stop => false,
            }
        })
    }

    fn set_cancel(&mut self, request: Option<wit::Request>) {
        if let Some(r) = &request
            && (r.url.len() > 8192 || r.body.as_ref().is_some_and(|b| b.len() > 64 << 10))
        {
            tracing::warn!(plugin = %self.ctx.plugin_id, "ignored an oversized cancel request");
            return;
        }
        *self.ctx.cancel.lock().unwrap_or_else(|e| e.into_inner()) = request;
        // Registered after the caller gave up (the drop guard already looked): send it now.
        if self.ctx.abandoned() {
            send_registered_cancel(&self.ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = HostPattern::parse("https://api.example.com").unwrap();
        assert!(p.matches(&Url::parse("https://api.example.com/v1/x").unwrap()));
        assert!(p.matches(&Url::parse("https://API.example.com:443/").unwrap()));
        assert!(!p.matches(&Url::parse("http://api.example.com/").unwrap()));
        assert!(!p.matches(&Url::parse("https://api.example.com:8443/").unwrap()));
        assert!(!p.matches(&Url::parse("https://api.example.com.evil.io/").unwrap()));
        let w = HostPattern::parse("https://*.fal.media").unwrap();
        assert!(w.matches(&Url::parse("https://v3.fal.media/files/x.jpg").unwrap()));
        assert!(!w.matches(&Url::parse("https://fal.media/").unwrap()));
        assert!(!w.matches(&Url::parse("https://evilfal.media/").unwrap()));
        let any = HostPattern::parse("http://127.0.0.1:*").unwrap();
        assert!(any.matches(&Url::parse("http://127.0.0.1:5555/").unwrap()));
        for bad in ["ftp://x", "https://", "https://a/b", "https://*", "nohost"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn secrets_are_substituted_once_and_never_re_expanded() {
        let policy = HttpPolicy {
            asked: Vec::new(),
            granted: Vec::new(),
            allow_private_ips: false,
            declared_secrets: vec!["KEY".into(), "OTHER".into()],
            secrets: BTreeMap::from([("KEY".into(), Secret::new("k1")), ("OTHER".into(), Secret::new("o2"))]),
            max_response_bytes: 1024,
            handle: tokio::runtime::Handle::current(),
            any_host: false,
            private_origins: Vec::new(),
            client: Default::default(),
            private_client: Default::default(),
        };
        let pairs = vec![("authorization".to_string(), "Bearer {{secret:KEY}}/{{secret:OTHER}}".to_string())];
        let (map, secret_headers) = policy.headers(&pairs, None).unwrap();
        assert_eq!(map["authorization"], "Bearer k1/o2");
        assert_eq!(secret_headers.len(), 1);
        // A caller's key that itself names secrets is inserted literally: no loop, no leak.
        let sneaky = Secret::new("{{secret:KEY}}{{secret:KEY}}{{secret:OTHER}}");
        let (map, _) = policy.headers(&pairs[..1], Some(&sneaky)).unwrap();
        assert_eq!(map["authorization"], "Bearer {{secret:KEY}}{{secret:KEY}}{{secret:OTHER}}/o2");
        let open = vec![("x".to_string(), "{{secret:KEY".to_string())];
        assert!(policy.headers(&open, None).is_err());
    }

    #[test]
    fn private_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "fec0::1",
            "64:ff9b:1::a00:1",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "142.250.1.1", "2002:808:808::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
