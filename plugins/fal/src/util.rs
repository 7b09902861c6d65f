//! Small pure helpers of the fal plugin: query encoding and endpoint id checks. The helpers
//! every provider needs (origins, data URIs, text) are in the SDK.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(
            percent_encode("http://127.0.0.1:8080/v1/callbacks/fal/gen_01H?x=1&y=é"),
            "http%3A%2F%2F127.0.0.1%3A8080%2Fv1%2Fcallbacks%2Ffal%2Fgen_01H%3Fx%3D1%26y%3D%C3%A9"
        );
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
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
