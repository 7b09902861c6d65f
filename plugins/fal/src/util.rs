//! Small pure helpers: URL origins, data URIs, short stage labels, endpoint id checks.

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
            "fal returned a {what} outside the configured base_url origin ({}); refusing to follow it",
            origin(url).unwrap_or_else(|| "not an http(s) URL".into())
        ))),
    }
}

/// `text` percent-encoded for a query parameter value: everything but RFC 3986's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A PNG as a `data:` URI (fal accepts data URIs for every file input).
pub fn png_data_uri(image: &Image) -> Result<String, PluginError> {
    let png = easel_plugin_sdk::image::encode_png(image).map_err(PluginError::InvalidInput)?;
    Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png)))
}

/// Decode a `data:<mime>;base64,<data>` URI (fal's `sync_mode` answers); `None` if it is not one.
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

/// fal endpoint ids are `owner/app[/path…]` of `[A-Za-z0-9._-]` segments (no `..`, no query).
pub fn valid_endpoint_id(id: &str) -> bool {
    let segments: Vec<&str> = id.split('/').collect();
    segments.len() >= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && *s != "."
                && *s != ".."
                && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
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
        assert_eq!(origin("https://queue.fal.run/fal-ai/flux/requests/x").as_deref(), Some("https://queue.fal.run"));
        assert_eq!(origin("HTTPS://Queue.Fal.Run:443/x").as_deref(), Some("https://queue.fal.run"));
        assert_eq!(origin("http://127.0.0.1:8080?x").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin("http://user@evil/x"), None);
        assert_eq!(origin("file:///etc/passwd"), None);
        assert_eq!(origin("/relative"), None);
        assert!(same_origin("http://127.0.0.1:1/a", "http://127.0.0.1:1", "status_url").is_ok());
        assert!(same_origin("http://127.0.0.2:1/a", "http://127.0.0.1:1", "status_url").is_err());
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(
            percent_encode("http://127.0.0.1:8080/v1/callbacks/fal/gen_01H?x=1&y=é"),
            "http%3A%2F%2F127.0.0.1%3A8080%2Fv1%2Fcallbacks%2Ffal%2Fgen_01H%3Fx%3D1%26y%3D%C3%A9"
        );
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
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
    fn endpoint_ids() {
        assert!(valid_endpoint_id("fal-ai/flux/dev"));
        assert!(valid_endpoint_id("fal-ai/flux-lora"));
        assert!(!valid_endpoint_id("flux"));
        assert!(!valid_endpoint_id("fal-ai/../x"));
        assert!(!valid_endpoint_id("fal-ai/flux?x=1"));
        assert!(!valid_endpoint_id("fal-ai//flux"));
    }
}
