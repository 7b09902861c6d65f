//! Small pure helpers: URL origins, data URIs, short stage labels, model id parsing.

use base64::Engine as _;
use easel_plugin_sdk::provider::{Image, PluginError};

/// `scheme://host[:port]` of an absolute http(s) URL, lowercased; `None` for anything else
/// (relative URLs, other schemes, user-info in the authority).
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

/// Accept `url` only on the same origin as `base`: the host would refuse to send the key
/// anywhere else, and a queue URL on another origin means a confused or hostile upstream.
pub fn same_origin(url: &str, base: &str, what: &str) -> Result<(), PluginError> {
    match (origin(url), origin(base)) {
        (Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(PluginError::Http(format!(
            "Replicate returned a {what} outside the configured base_url origin ({}); refusing to follow it",
            origin(url).unwrap_or_else(|| "not an http(s) URL".into())
        ))),
    }
}

/// A PNG as a `data:` URI (Replicate accepts data URIs for file inputs).
pub fn png_data_uri(image: &Image) -> Result<String, PluginError> {
    let png = easel_plugin_sdk::image::encode_png(image).map_err(PluginError::InvalidInput)?;
    Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png)))
}

/// Decode a `data:<mime>;base64,<data>` URI; `None` if it is not one.
pub fn decode_data_uri(uri: &str) -> Option<Vec<u8>> {
    let rest = uri.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    if !meta.ends_with(";base64") {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(data.trim()).ok()
}

/// At most `max` characters of `text` on one line, with an ellipsis when cut.
pub fn short(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// The prompt with a negative prompt folded in, for endpoints without `negative_prompt`.
pub fn prompt_with_avoid(prompt: &str, negative: Option<&str>) -> String {
    match negative.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{}\n\nAvoid: {n}", prompt.trim_end()),
        None => prompt.to_string(),
    }
}

/// A Replicate model id: `owner/name`, optionally pinned to a version (`owner/name:version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelId {
    /// `owner/name`.
    pub model: String,
    /// The pinned version id, if any.
    pub version: Option<String>,
}

/// Parse `owner/name[:version]`: names of `[A-Za-z0-9._-]` (not `.`/`..`), versions of
/// `[A-Za-z0-9]`; `None` for anything else (so an id can never change the request path).
pub fn parse_model_id(id: &str) -> Option<ModelId> {
    let (model, version) = match id.split_once(':') {
        Some((m, v)) => (m, Some(v)),
        None => (id, None),
    };
    let name_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let (owner, name) = model.split_once('/')?;
    if !name_ok(owner) || !name_ok(name) {
        return None;
    }
    if let Some(v) = version
        && (v.is_empty() || v.len() > 128 || !v.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return None;
    }
    Some(ModelId { model: model.to_string(), version: version.map(str::to_string) })
}

/// Greatest common divisor, for turning a pixel size into an aspect ratio.
pub fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(origin("https://api.replicate.com/v1/predictions/x").as_deref(), Some("https://api.replicate.com"));
        assert_eq!(origin("HTTPS://API.Replicate.com:443/x").as_deref(), Some("https://api.replicate.com"));
        assert_eq!(origin("http://127.0.0.1:8080?x").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin("http://user@evil/x"), None);
        assert_eq!(origin("file:///etc/passwd"), None);
        assert_eq!(origin("/relative"), None);
        assert!(same_origin("http://127.0.0.1:1/a", "http://127.0.0.1:1", "urls.get").is_ok());
        assert!(same_origin("http://127.0.0.2:1/a", "http://127.0.0.1:1", "urls.get").is_err());
    }

    #[test]
    fn data_uris_round_trip() {
        let img = Image { width: 1, height: 1, pixels: vec![1, 2, 3, 255] };
        let uri = png_data_uri(&img).unwrap();
        assert!(uri.starts_with("data:image/png;base64,"));
        let png = decode_data_uri(&uri).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(decode_data_uri("https://x"), None);
    }

    #[test]
    fn shorten_and_avoid() {
        assert_eq!(short("a  b\nc", 10), "a b c");
        assert_eq!(short("abcdefghij", 5), "abcd…");
        assert_eq!(prompt_with_avoid("cat", Some(" dogs ")), "cat\n\nAvoid: dogs");
        assert_eq!(prompt_with_avoid("cat", Some(" ")), "cat");
    }

    #[test]
    fn model_ids() {
        let m = parse_model_id("black-forest-labs/flux-dev").unwrap();
        assert_eq!((m.model.as_str(), m.version), ("black-forest-labs/flux-dev", None));
        let m = parse_model_id("a/b:5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa").unwrap();
        assert_eq!(m.version.unwrap().len(), 64);
        for bad in ["flux", "a/b/c", "a/../b", "../x", "a/b:", "a/b:x?y", "a/b c", "/b"] {
            assert_eq!(parse_model_id(bad), None, "{bad}");
        }
    }
}
