//! `JsonBody<T>`: a JSON request body documented by `T`'s OpenAPI schema but parsed with serde,
//! so a wrong type, a missing field or an unknown field is reported with the field's path
//! (`n: invalid type: string "four", expected i64`), not just the type's name.

use std::ops::Deref;

use poem::http::StatusCode;
use poem::{FromRequest, Request, RequestBody};
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
