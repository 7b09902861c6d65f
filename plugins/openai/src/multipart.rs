//! A minimal `multipart/form-data` writer (RFC 7578) for the image edits endpoint.
//!
//! Why not a crate: the small builder on crates.io (`form-data-builder` 1.0) builds for
//! wasm32-wasip2 but pulls in `rand` 0.8 with `getrandom` 0.2 and an old `base64` just to draw a
//! random boundary, and has not been updated since 2021; the others are async or parsers. This
//! writer needs no randomness: it picks a boundary and makes sure no part contains it, which is
//! all RFC 2046 §5.1.1 asks of a boundary.

/// One form field.
enum Content {
    Text(String),
    File { filename: String, content_type: String, data: Vec<u8> },
}

/// A form being built: fields in order, each a text value or a file.
#[derive(Default)]
pub struct Form {
    parts: Vec<(String, Content)>,
}

impl Form {
    /// An empty form.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a text field.
    pub fn text(mut self, name: &str, value: impl Into<String>) -> Self {
        self.parts.push((name.to_string(), Content::Text(value.into())));
        self
    }

    /// Add a file field.
    pub fn file(mut self, name: &str, filename: &str, content_type: &str, data: Vec<u8>) -> Self {
        self.parts.push((
            name.to_string(),
            Content::File { filename: filename.to_string(), content_type: content_type.to_string(), data },
        ));
        self
    }

    /// The names of the fields, in order.
    pub fn names(&self) -> Vec<&str> {
        self.parts.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// Encode the form: the `content-type` header value (with its boundary) and the body.
    pub fn encode(&self) -> (String, Vec<u8>) {
        let boundary = self.boundary();
        let mut body = Vec::new();
        for (name, content) in &self.parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match content {
                Content::Text(value) => {
                    body.extend_from_slice(
                        format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", quote(name)).as_bytes(),
                    );
                    body.extend_from_slice(value.as_bytes());
                }
                Content::File { filename, content_type, data } => {
                    body.extend_from_slice(
                        format!(
                            "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                            quote(name),
                            quote(filename),
                            content_type.replace(['\r', '\n'], "")
                        )
                        .as_bytes(),
                    );
                    body.extend_from_slice(data);
                }
            }
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    }

    /// A boundary that occurs in no part (nor in any field name or file name).
    fn boundary(&self) -> String {
        (0u64..)
            .map(|attempt| format!("----EaselFormBoundary{:016x}", fnv1a(&self.parts, attempt)))
            .find(|candidate| {
                let needle = candidate.as_bytes();
                self.parts.iter().all(|(name, content)| {
                    let data: &[u8] = match content {
                        Content::Text(v) => v.as_bytes(),
                        Content::File { data, filename, .. } => {
                            if contains(filename.as_bytes(), needle) {
                                return false;
                            }
                            data
                        }
                    };
                    !contains(name.as_bytes(), needle) && !contains(data, needle)
                })
            })
            .expect("some boundary is free")
    }
}

/// A hash of the field lengths and names plus `attempt`, so boundaries differ between forms.
fn fnv1a(parts: &[(String, Content)], attempt: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ attempt;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= b as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (name, content) in parts {
        eat(name.as_bytes());
        let len = match content {
            Content::Text(v) => v.len(),
            Content::File { data, .. } => data.len(),
        };
        eat(&(len as u64).to_le_bytes());
    }
    hash
}

/// Does `haystack` contain `needle`?
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A field or file name inside a quoted-string, escaped as browsers do (RFC 7578 §4.2 leaves
/// the escaping to the HTML form rules): `"` → `%22`, CR → `%0D`, LF → `%0A`.
fn quote(name: &str) -> String {
    name.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_text_and_file_parts() {
        let form = Form::new().text("prompt", "a red hat").text("n", "2").file(
            "image",
            "image.png",
            "image/png",
            b"PNG\r\n-bytes".to_vec(),
        );
        assert_eq!(form.names(), ["prompt", "n", "image"]);
        let (content_type, body) = form.encode();
        let boundary = content_type.strip_prefix("multipart/form-data; boundary=").expect("boundary parameter");
        assert!(boundary.len() <= 70 && boundary.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na red hat\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n2\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"image.png\"\r\n\
             Content-Type: image/png\r\n\r\nPNG\r\n-bytes\r\n\
             --{b}--\r\n",
            b = boundary
        );
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }

    #[test]
    fn the_boundary_never_occurs_in_the_content() {
        // A part that contains the boundary the form would otherwise pick.
        let form = Form::new().text("a", "x").file("f", "f.bin", "application/octet-stream", Vec::new());
        let natural = form.encode().0.strip_prefix("multipart/form-data; boundary=").unwrap().to_string();
        let tricky = Form::new().text("a", "x").file(
            "f",
            "f.bin",
            "application/octet-stream",
            format!("..{natural}..").into_bytes(),
        );
        let (content_type, body) = tricky.encode();
        let chosen = content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
        assert_ne!(chosen, natural.as_str());
        let delimiter = format!("--{chosen}");
        let count = body.windows(delimiter.len()).filter(|w| *w == delimiter.as_bytes()).count();
        assert_eq!(count, 3, "two parts and the closing delimiter");
    }

    #[test]
    fn names_are_escaped() {
        let (_, body) = Form::new().text("a\"b\r\nc", "v").encode();
        assert!(String::from_utf8(body).unwrap().contains("name=\"a%22b%0D%0Ac\""));
    }
}
