//! RFC 9457 problem details: the only place where errors become HTTP responses.
//!
//! Handlers return [`ApiError`]; anything poem or poem-openapi rejects before a handler runs
//! (unknown route, wrong method, unparsable parameter or body, oversized body) is turned into
//! the same shape by [`error_to_problem`], called from the request middleware.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object};

use super::request_id;
use crate::error::{AppError, ErrorCode, FieldError};

/// Media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// A URI naming the problem type: `https://easel.dev/problems/<code>`.
    #[oai(rename = "type")]
    pub type_: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// Stable snake_case code: `validation_error`, `not_found`, `plugin_error`, …
    pub code: String,
    /// The request's `X-Request-Id`, for support and logs.
    pub request_id: String,
    /// For `validation_error`: each invalid field and why.
    #[oai(skip_serializing_if_is_empty)]
    pub errors: Vec<ProblemField>,
}

/// One invalid field.
#[derive(Debug, Clone, Object)]
pub struct ProblemField {
    /// Field name as sent, e.g. `aspect_ratio` (or `body` for an unparsable body).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// An error response of the API (problem+json). Construct from [`AppError`].
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a code, its default status and a detail message.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// Add `Retry-After: seconds` to the response.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// A validation error about one field, with an explicit status (400 for syntax, 422 for values).
    pub fn field(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status,
            code: ErrorCode::ValidationError,
            detail: format!("{field}: {message}"),
            errors: vec![FieldError { field: field.into(), message }],
            retry_after: None,
        }
    }

    fn problem(&self) -> Problem {
        let title = match self.code {
            ErrorCode::ValidationError => "The request is invalid",
            ErrorCode::NotFound => "Not found",
            ErrorCode::InvalidState => "Invalid state for this operation",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::PayloadTooLarge => "Payload too large",
            ErrorCode::UnsupportedMediaType => "Unsupported media type",
            ErrorCode::ProviderError => "The model provider failed",
            ErrorCode::PluginError => "A plugin failed",
            ErrorCode::InternalError => "Internal server error",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::RateLimited => "Too many requests",
            ErrorCode::QuotaExceeded => "Quota exceeded",
            ErrorCode::InsufficientCredits => "Insufficient credits",
            ErrorCode::MethodNotAllowed => "Method not allowed",
            ErrorCode::ContentBlocked => "Blocked by the provider's content policy",
            ErrorCode::UnauthorizedProvider => "The model provider refused the API key",
        };
        Problem {
            type_: format!("https://easel.dev/problems/{}", self.code.as_str()),
            title: title.into(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.as_str().into(),
            request_id: request_id(),
            errors: self
                .errors
                .iter()
                .map(|e| ProblemField { field: e.field.clone(), message: e.message.clone() })
                .collect(),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(errors) => {
                let mut api = Self::new(ErrorCode::ValidationError, AppError::Validation(errors.clone()).to_string());
                api.errors = errors;
                api
            }
            AppError::Coded { code, message } => Self::new(code, message),
            AppError::Limited { code, message, retry_after } => Self::new(code, message).with_retry_after(retry_after),
            AppError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                Self::new(ErrorCode::InternalError, "the server failed to handle this request; its log has the details")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.problem().to_json_string();
        let mut response = Response::builder().status(self.status).content_type(PROBLEM_JSON);
        if let Some(seconds) = self.retry_after {
            response = response.header("retry-after", seconds.to_string());
        }
        response.body(body)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl std::error::Error for ApiError {}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        self.clone().into_response()
    }
}

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "An error, as RFC 9457 problem details with a stable `code` \
                              (validation_error, not_found, unauthorized, forbidden, rate_limited, \
                              quota_exceeded, insufficient_credits, plugin_error, …) and the `request_id`. \
                              429 answers carry `Retry-After` (seconds).",
                status: None,
                status_range: None,
                content: vec![MetaMediaType { content_type: PROBLEM_JSON, schema: Problem::schema_ref() }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// Turn any error poem produced into a problem response.
pub fn error_to_problem(err: poem::Error) -> Response {
    if let Some(api) = err.downcast_ref::<ApiError>() {
        return api.clone().into_response();
    }
    if let Some(body) = err.downcast_ref::<super::body::BodyError>() {
        return ApiError::field(body.status, &body.field, body.message.clone()).into_response();
    }
    if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        return ApiError::field(StatusCode::BAD_REQUEST, e.name, e.reason.clone()).into_response();
    }
    if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseRequestPayloadError>() {
        return ApiError::field(StatusCode::BAD_REQUEST, "body", e.reason.clone()).into_response();
    }
    let status = err.status();
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        s if s.is_client_error() => ErrorCode::ValidationError,
        _ => ErrorCode::InternalError,
    };
    let detail = match code {
        ErrorCode::NotFound => "no such route; see /docs for the API".to_string(),
        ErrorCode::InternalError => {
            tracing::error!(error = %err, "unhandled error");
            "the server failed to handle this request; its log has the details".to_string()
        }
        _ => err.to_string(),
    };
    let mut api = ApiError::new(code, detail);
    api.status = status;
    api.into_response()
}
