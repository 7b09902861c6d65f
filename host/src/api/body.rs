//! Request bodies: the whole-body cap ([`limit_body`]) and `JsonBody<T>`, a JSON request body
//! documented by `T`'s OpenAPI schema but parsed with serde, so a wrong type, a missing field or
//! an unknown field is reported with the field's path (`n: invalid type: string "four", expected
//! i64`), not just the type's name.

use std::ops::Deref;
use std::time::Duration;

use futures_util::StreamExt;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, FromRequest, IntoResponse, Request, RequestBody, Response};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

/// A JSON body of type `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T> Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// An unparsable body, with the field it concerns (`body` when no field applies).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BodyError {
    /// 400 for syntax, 422 for a well-formed body with a wrong field.
    pub status: StatusCode,
    /// Path of the offending field, e.g. `metadata.tag` or `body`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl poem::error::ResponseError for BodyError {
    fn status(&self) -> StatusCode {
        self.status
    }
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.type_() == "application"
            && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        if data.iter().all(u8::is_ascii_whitespace) {
            return Err(BodyError {
                status: StatusCode::BAD_REQUEST,
                field: "body".into(),
                message: "a JSON object is required".into(),
            }
            .into());
        }
        let mut de = serde_json::Deserializer::from_slice(&data);
        let parsed = serde_path_to_error::deserialize::<_, T>(&mut de);
        if parsed.is_ok()
            && let Err(e) = de.end()
        {
            return Err(
                BodyError { status: StatusCode::BAD_REQUEST, field: "body".into(), message: e.to_string() }.into()
            );
        }
        match parsed {
            Ok(value) => Ok(Self(value)),
            Err(err) => {
                let path = err.path().to_string();
                let inner = err.into_inner();
                let syntax = inner.is_syntax() || inner.is_eof();
                let field = if path.is_empty() || path == "." || syntax { "body".to_string() } else { path };
                // serde's messages for a missing field carry the name: lift it out.
                let message = inner.to_string();
                let field = match message.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
                    Some(name) if field == "body" => name.to_string(),
                    _ => field,
                };
                let status = if syntax { StatusCode::BAD_REQUEST } else { StatusCode::UNPROCESSABLE_ENTITY };
                let message = strip_position(&message);
                Err(BodyError { status, field, message }.into())
            }
        }
    }
}

/// serde appends " at line L column C"; keep it for syntax errors only, where it helps.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if !message.starts_with("expected") && !message.contains("EOF") && !message.starts_with("key must") => {
            message[..i].to_string()
        }
        _ => message.to_string(),
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned + Send);

/// Longest time an oversized body is read (and thrown away) before the 413 is sent.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Refuse bodies over `max` bytes (`limits.max_body_bytes`) with 413 `payload_too_large`:
/// by `Content-Length` when given, else by reading a chunked body up to the limit.
///
/// A client still sending when the answer is ready would see its connection reset instead of
/// the answer (the server closes a socket with unread data in it). So the rest of an
/// oversized body is read and discarded first — at most as many bytes again as the limit
/// (1 MiB at least, 64 MiB at most) and for at most [`DRAIN_TIME`] — and the 413 carries
/// `Connection: close`. A client that sent `Expect: 100-continue` has sent no body yet and
/// is answered at once.
pub(crate) async fn limit_body<E: Endpoint>(next: E, mut req: Request, max: usize) -> poem::Result<Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let drain_bytes = max.clamp(1 << 20, 64 << 20);
    match declared {
        Some(len) if len > max as u64 => {
            let waits_for_continue =
                req.headers().get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            if !waits_for_continue {
                drain(Box::pin(req.take_body().into_bytes_stream()), drain_bytes).await;
            }
            return Ok(too_large(max));
        }
        Some(_) => {}
        // HTTP/1.x without either header has no body; HTTP/2 (cleartext h2 is served too) may
        // stream one with neither, so it is read through the cap as well.
        None if req.headers().contains_key(header::TRANSFER_ENCODING)
            || req.version() >= poem::http::Version::HTTP_2 =>
        {
            let mut stream = Box::pin(req.take_body().into_bytes_stream());
            let mut data = bytes::BytesMut::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| BodyError {
                    status: StatusCode::BAD_REQUEST,
                    field: "body".into(),
                    message: format!("the body could not be read: {e}"),
                })?;
                if data.len() + chunk.len() > max {
                    drain(stream, drain_bytes).await;
                    return Ok(too_large(max));
                }
                data.extend_from_slice(&chunk);
            }
            req.set_body(data.freeze());
        }
        None => {}
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// The 413 of an oversized body, closing the connection (the rest of the body is not read).
fn too_large(max: usize) -> Response {
    let mut response = super::problem::ApiError::new(
        crate::error::ErrorCode::PayloadTooLarge,
        format!("the body exceeds the limit of {max} bytes (limits.max_body_bytes)"),
    )
    .into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Read and discard up to `budget` bytes of what is left of a body, for at most [`DRAIN_TIME`].
async fn drain<S, B, E>(mut stream: S, budget: usize)
where
    S: futures_util::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut left = budget;
        while let Some(Ok(chunk)) = stream.next().await {
            match left.checked_sub(chunk.as_ref().len()) {
                Some(rest) => left = rest,
                None => return,
            }
        }
    })
    .await;
}
