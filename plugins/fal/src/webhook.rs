//! fal's webhooks (`?fal_webhook=URL` on submit): verifying that a callback really comes from
//! fal, as fal documents it (<https://docs.fal.ai/model-endpoints/webhooks>, "Verifying your
//! webhook"):
//!
//! - headers `x-fal-webhook-request-id`, `x-fal-webhook-user-id`, `x-fal-webhook-timestamp`
//!   (unix seconds) and `x-fal-webhook-signature` (hex);
//! - the timestamp at most [`TOLERANCE_SECS`] from now (either way), against replays;
//! - the signed message `request_id \n user_id \n timestamp \n hex(sha256(raw body))`;
//! - an ED25519 signature by any key of fal's JWKS (`keys[].x`, base64url, OKP/Ed25519),
//!   published at [`crate::settings::DEFAULT_JWKS_URL`].
//!
//! The body's `request_id` must also be the header's. Nothing in the body is used beyond
//! that: an authentic callback only wakes the generation's wait, and the plugin then reads
//! the job's status and result from the queue API as usual.
//!
//! [`precheck`] and [`check_signature`] are pure (the clock and the JWKS are inputs), so the
//! whole check runs in native unit tests; [`handle`] adds the JWKS fetch.

use base64::Engine as _;
use easel_plugin_sdk::http::{HttpError, Request, Response, fetch_error, status_error};
use easel_plugin_sdk::provider::PluginError;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Largest accepted difference between the callback's timestamp and now, in seconds.
pub const TOLERANCE_SECS: u64 = 300;

/// Header names (lower case, as the host passes them).
pub const REQUEST_ID: &str = "x-fal-webhook-request-id";
/// See [`REQUEST_ID`].
pub const USER_ID: &str = "x-fal-webhook-user-id";
/// See [`REQUEST_ID`].
pub const TIMESTAMP: &str = "x-fal-webhook-timestamp";
/// See [`REQUEST_ID`].
pub const SIGNATURE: &str = "x-fal-webhook-signature";

/// Why a callback was refused: a short text for the log that never quotes the body or the
/// signature.
pub type Refusal = String;

/// A callback whose headers, timestamp and body passed [`precheck`]: what remains is the
/// signature.
#[derive(Clone, Debug, PartialEq)]
pub struct Signed {
    /// fal's request id (header and body agree).
    pub request_id: String,
    /// The message fal signed.
    pub message: Vec<u8>,
    /// The ED25519 signature from the header.
    pub signature: [u8; 64],
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Result<&'a str, Refusal> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("missing header {name}"))
}

/// Everything but the signature: the four headers are present, the timestamp is within
/// [`TOLERANCE_SECS`] of `now_secs`, the signature is 64 bytes of hex, and the body is JSON
/// whose `request_id` is the header's.
pub fn precheck(headers: &[(String, String)], body: &[u8], now_secs: u64) -> Result<Signed, Refusal> {
    let request_id = header(headers, REQUEST_ID)?;
    let user_id = header(headers, USER_ID)?;
    let timestamp = header(headers, TIMESTAMP)?;
    let signature_hex = header(headers, SIGNATURE)?;

    let sent: u64 = timestamp.trim().parse().map_err(|_| format!("{TIMESTAMP} is not unix seconds"))?;
    let skew = sent.abs_diff(now_secs);
    if skew > TOLERANCE_SECS {
        return Err(format!("timestamp is {skew} s away from now (at most {TOLERANCE_SECS} s)"));
    }

    let mut signature = [0u8; 64];
    hex::decode_to_slice(signature_hex.trim(), &mut signature)
        .map_err(|_| format!("{SIGNATURE} is not 64 bytes of hex"))?;

    let json: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    match json.get("request_id").and_then(Value::as_str) {
        Some(id) if id == request_id => {}
        Some(_) => return Err(format!("the body's request_id is not the one in {REQUEST_ID}")),
        None => return Err("the body has no request_id".to_string()),
    }

    let body_hash = hex::encode(Sha256::digest(body));
    let message = format!("{request_id}\n{user_id}\n{timestamp}\n{body_hash}").into_bytes();
    Ok(Signed { request_id: request_id.to_string(), message, signature })
}

/// The Ed25519 public keys of a JWKS document (`{"keys":[{"kty":"OKP","crv":"Ed25519","x":…}]}`);
/// keys of other types, and unreadable ones, are skipped.
pub fn jwks_keys(jwks: &[u8]) -> Result<Vec<VerifyingKey>, Refusal> {
    let json: Value = serde_json::from_slice(jwks).map_err(|_| "the JWKS is not JSON".to_string())?;
    let keys = json.get("keys").and_then(Value::as_array).ok_or_else(|| "the JWKS has no keys array".to_string())?;
    let is = |key: &Value, field: &str, want: &str| key.get(field).and_then(Value::as_str).is_none_or(|v| v == want);
    Ok(keys
        .iter()
        .filter(|k| is(k, "kty", "OKP") && is(k, "crv", "Ed25519"))
        .filter_map(|k| k.get("x").and_then(Value::as_str))
        .filter_map(|x| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(x.trim().trim_end_matches('=')).ok())
        .filter_map(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .filter_map(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .collect())
}

/// The signature is valid for the message under one of the JWKS's keys (strict ED25519
/// verification: no small-order keys or non-canonical signatures).
pub fn check_signature(signed: &Signed, jwks: &[u8]) -> Result<(), Refusal> {
    let keys = jwks_keys(jwks)?;
    if keys.is_empty() {
        return Err("the JWKS has no usable Ed25519 key".to_string());
    }
    let signature = Signature::from_bytes(&signed.signature);
    if keys.iter().any(|key| key.verify_strict(&signed.message, &signature).is_ok()) {
        Ok(())
    } else {
        Err(format!("the signature does not verify under any of the JWKS's {} key(s)", keys.len()))
    }
}

/// The whole check: [`precheck`] then [`check_signature`].
pub fn verify(headers: &[(String, String)], body: &[u8], now_secs: u64, jwks: &[u8]) -> Result<(), Refusal> {
    check_signature(&precheck(headers, body, now_secs)?, jwks)
}

/// Verify a callback, fetching the JWKS from `jwks_url` through `fetch` only when the cheap
/// checks pass. `Ok(Err(reason))` is a refusal; `Err` means the keys could not be fetched.
///
/// `user_id`, when the operator set `webhook_user_id`, must be the signed user id: fal signs
/// every customer's webhooks with the same keys, so this binds them to the operator's account.
pub fn handle(
    headers: &[(String, String)],
    body: &[u8],
    now_secs: u64,
    jwks_url: &str,
    user_id: Option<&str>,
    timeout_ms: u32,
    fetch: impl FnOnce(&Request) -> Result<Response, HttpError>,
) -> Result<Result<(), Refusal>, PluginError> {
    let signed = match precheck(headers, body, now_secs) {
        Ok(signed) => signed,
        Err(reason) => return Ok(Err(reason)),
    };
    if let Some(expected) = user_id
        && header(headers, USER_ID).map(str::trim) != Ok(expected)
    {
        return Ok(Err(format!("{USER_ID} is not the configured webhook_user_id")));
    }
    let request = Request {
        method: "GET".into(),
        url: jwks_url.into(),
        headers: vec![("accept".into(), "application/json".into())],
        body: None,
        timeout_ms: Some(timeout_ms),
    };
    let answer = fetch(&request).map_err(fetch_error)?;
    if !answer.is_success() {
        return Err(status_error(&answer, "fetching fal's webhook keys (jwks_url)"));
    }
    Ok(check_signature(&signed, &answer.body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    const NOW: u64 = 1_767_225_600;
    const BODY: &str =
        r#"{"request_id":"req-1","gateway_request_id":"req-1","status":"OK","payload":{"images":[]},"error":null}"#;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn jwks(keys: &[&SigningKey]) -> Vec<u8> {
        let keys: Vec<Value> = keys
            .iter()
            .map(|k| {
                let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k.verifying_key().to_bytes());
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "test", "use": "sig", "alg": "EdDSA"})
            })
            .collect();
        serde_json::json!({ "keys": keys }).to_string().into_bytes()
    }

    /// The headers fal would send for `body`, signed by `signer` at `timestamp`.
    fn signed_headers(signer: &SigningKey, request_id: &str, timestamp: u64, body: &str) -> Vec<(String, String)> {
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        let message = format!("{request_id}\nuser-42\n{timestamp}\n{hash}");
        let signature = hex::encode(signer.sign(message.as_bytes()).to_bytes());
        vec![
            (REQUEST_ID.into(), request_id.into()),
            (USER_ID.into(), "user-42".into()),
            (TIMESTAMP.into(), timestamp.to_string()),
            (SIGNATURE.into(), signature),
            ("content-type".into(), "application/json".into()),
        ]
    }

    #[test]
    fn accepts_a_signed_callback() {
        let fal = key(7);
        let headers = signed_headers(&fal, "req-1", NOW - 20, BODY);
        assert_eq!(verify(&headers, BODY.as_bytes(), NOW, &jwks(&[&fal])), Ok(()));
        // Any key of the set will do (key rotation), and a little clock skew either way.
        assert_eq!(verify(&headers, BODY.as_bytes(), NOW, &jwks(&[&key(1), &fal])), Ok(()));
        let headers = signed_headers(&fal, "req-1", NOW + 250, BODY);
        assert_eq!(verify(&headers, BODY.as_bytes(), NOW, &jwks(&[&fal])), Ok(()));
    }

    #[test]
    fn accepts_a_signature_made_elsewhere() {
        // Signed with Python's `cryptography` (seed 32 × 0x2a) over fal's message layout, so the
        // check does not merely agree with itself.
        let jwks = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"GX9rI-FshTLGq8g4-s1ep4m-DHaykgM0A5v6iz02jWE"}]}"#;
        let headers = vec![
            (REQUEST_ID.into(), "req-1".into()),
            (USER_ID.into(), "user-42".into()),
            (TIMESTAMP.into(), (NOW - 10).to_string()),
            (SIGNATURE.into(), "f727a28e216da34f9735ea571fcd531ee404819c61d19b9e12e804f3a2a4c57ab22d707d5fd15eeb749fdac5449c169957afeb9b0678dea465d233bf26659d03".into()),
        ];
        assert_eq!(verify(&headers, BODY.as_bytes(), NOW, jwks), Ok(()));
        assert_eq!(key(0x2a).verifying_key().to_bytes().to_vec(), jwks_keys(jwks).unwrap()[0].to_bytes().to_vec());
    }

    #[test]
    fn refuses_a_changed_body() {
        let fal = key(7);
        let headers = signed_headers(&fal, "req-1", NOW, BODY);
        let changed = BODY.replace("\"OK\"", "\"ERROR\"");
        let err = verify(&headers, changed.as_bytes(), NOW, &jwks(&[&fal])).unwrap_err();
        assert!(err.contains("does not verify"), "{err}");
        assert!(!err.contains("ERROR"), "the reason must not quote the body: {err}");
    }

    #[test]
    fn refuses_a_wrong_key() {
        let headers = signed_headers(&key(9), "req-1", NOW, BODY);
        let err = verify(&headers, BODY.as_bytes(), NOW, &jwks(&[&key(7)])).unwrap_err();
        assert!(err.contains("does not verify under any of the JWKS's 1 key"), "{err}");
        // A JWKS without an Ed25519 key verifies nothing.
        let rsa = br#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
        let err = verify(&signed_headers(&key(7), "req-1", NOW, BODY), BODY.as_bytes(), NOW, rsa).unwrap_err();
        assert!(err.contains("no usable Ed25519 key"), "{err}");
        assert!(verify(&headers, BODY.as_bytes(), NOW, b"<html>").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn refuses_old_and_future_timestamps() {
        let fal = key(7);
        for ts in [NOW - 301, NOW + 301, 0] {
            let headers = signed_headers(&fal, "req-1", ts, BODY);
            let err = verify(&headers, BODY.as_bytes(), NOW, &jwks(&[&fal])).unwrap_err();
            assert!(err.contains("away from now"), "{err}");
        }
        let mut headers = signed_headers(&fal, "req-1", NOW, BODY);
        headers[2].1 = "2026-01-01T00:00:00Z".into();
        assert!(verify(&headers, BODY.as_bytes(), NOW, &jwks(&[&fal])).unwrap_err().contains("unix seconds"));
    }

    #[test]
    fn refuses_a_mismatched_request_id() {
        let fal = key(7);
        // Validly signed, but the body is about another request.
        let headers = signed_headers(&fal, "req-2", NOW, BODY);
        let err = verify(&headers, BODY.as_bytes(), NOW, &jwks(&[&fal])).unwrap_err();
        assert!(err.contains("request_id"), "{err}");
        let no_id = r#"{"status":"OK"}"#;
        let headers = signed_headers(&fal, "req-1", NOW, no_id);
        assert!(verify(&headers, no_id.as_bytes(), NOW, &jwks(&[&fal])).unwrap_err().contains("no request_id"));
    }

    #[test]
    fn refuses_missing_or_malformed_headers() {
        let fal = key(7);
        let full = signed_headers(&fal, "req-1", NOW, BODY);
        for name in [REQUEST_ID, USER_ID, TIMESTAMP, SIGNATURE] {
            let headers: Vec<_> = full.iter().filter(|(k, _)| k != name).cloned().collect();
            let err = verify(&headers, BODY.as_bytes(), NOW, &jwks(&[&fal])).unwrap_err();
            assert_eq!(err, format!("missing header {name}"));
            let mut empty = full.clone();
            empty.iter_mut().find(|(k, _)| k == name).unwrap().1.clear();
            assert!(verify(&empty, BODY.as_bytes(), NOW, &jwks(&[&fal])).is_err());
        }
        let mut short = full.clone();
        short[3].1.truncate(100);
        assert!(verify(&short, BODY.as_bytes(), NOW, &jwks(&[&fal])).unwrap_err().contains("64 bytes of hex"));
        // Header names are matched without regard to case.
        let upper: Vec<_> = full.iter().map(|(k, v)| (k.to_ascii_uppercase(), v.clone())).collect();
        assert_eq!(verify(&upper, BODY.as_bytes(), NOW, &jwks(&[&fal])), Ok(()));
    }

    #[test]
    fn handle_fetches_the_keys_only_after_the_cheap_checks() {
        let fal = key(7);
        let url = "https://rest.alpha.fal.ai/.well-known/jwks.json";
        let answer = |status: u16, body: Vec<u8>| Ok(Response { status, headers: vec![], body });

        let headers = signed_headers(&fal, "req-1", NOW, BODY);
        let mut asked = None;
        let verdict = handle(&headers, BODY.as_bytes(), NOW, url, None, 5000, |r| {
            asked = Some(r.clone());
            answer(200, jwks(&[&fal]))
        });
        assert_eq!(verdict.unwrap(), Ok(()));
        let asked = asked.unwrap();
        assert_eq!((asked.method.as_str(), asked.url.as_str(), asked.timeout_ms), ("GET", url, Some(5000)));
        assert!(asked.headers.iter().all(|(k, _)| k != "authorization"), "no key goes to the JWKS");

        let old = signed_headers(&fal, "req-1", NOW - 3600, BODY);
        let verdict = handle(&old, BODY.as_bytes(), NOW, url, None, 5000, |_| panic!("no fetch for a stale callback"));
        assert!(verdict.unwrap().is_err());

        let verdict = handle(&headers, BODY.as_bytes(), NOW, url, None, 5000, |_| answer(503, vec![]));
        assert!(matches!(verdict, Err(PluginError::Retryable(_))), "{verdict:?}");
        let verdict =
            handle(&headers, BODY.as_bytes(), NOW, url, None, 5000, |_| Err(HttpError::Denied("not allowed".into())));
        assert!(matches!(verdict, Err(PluginError::Denied(_))), "{verdict:?}");

        // Bound to the operator's account: another user id is refused before any fetch.
        let user = header(&headers, USER_ID).unwrap().to_string();
        let verdict = handle(&headers, BODY.as_bytes(), NOW, url, Some("someone-else"), 5000, |_| panic!("no fetch"));
        assert!(verdict.unwrap().is_err());
        let verdict = handle(&headers, BODY.as_bytes(), NOW, url, Some(&user), 5000, |_| answer(200, jwks(&[&fal])));
        assert_eq!(verdict.unwrap(), Ok(()));
    }
}
