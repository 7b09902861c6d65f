//! Replicate model ids. The helpers every provider needs (origins, data URIs, text) are in
//! the SDK.

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

#[cfg(test)]
mod tests {
    use super::*;

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
