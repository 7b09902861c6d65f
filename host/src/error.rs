//! Errors that cross module boundaries, each with a stable snake_case code (`shared/API.md`).
//! The mapping to HTTP lives in exactly one place: `api::problem`.

/// Stable, documented error codes. Clients match on these, never on messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is malformed or a field is out of range.
    ValidationError,
    /// No such resource (or not yours).
    NotFound,
    /// The resource is in a state that does not allow the operation.
    InvalidState,
    /// Conflicting request (e.g. an idempotency key reused with another body).
    Conflict,
    /// The body is too large.
    PayloadTooLarge,
    /// The body's media type is not accepted.
    UnsupportedMediaType,
    /// The model provider failed.
    ProviderError,
    /// A plugin trapped, ran out of time or memory, or broke its contract.
    PluginError,
    /// Anything we did not expect; details are in the server log only.
    InternalError,
    /// Authentication required or failed.
    Unauthorized,
    /// Authenticated but not allowed.
    Forbidden,
    /// Too many requests (per hour, or generations at once).
    RateLimited,
    /// The tier's daily image quota is used up.
    QuotaExceeded,
    /// Not enough credits for this generation.
    InsufficientCredits,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The provider's safety system refused the prompt or image (not retried).
    ContentBlocked,
    /// The provider refused the API key (missing, invalid or revoked; not retried).
    UnauthorizedProvider,
}

impl ErrorCode {
    /// The wire form, e.g. `validation_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationError => "validation_error",
            Self::NotFound => "not_found",
            Self::InvalidState => "invalid_state",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ProviderError => "provider_error",
            Self::PluginError => "plugin_error",
            Self::InternalError => "internal_error",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::QuotaExceeded => "quota_exceeded",
            Self::InsufficientCredits => "insufficient_credits",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::ContentBlocked => "content_blocked",
            Self::UnauthorizedProvider => "unauthorized_provider",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Self::ValidationError => 422,
            Self::NotFound => 404,
            Self::InvalidState | Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::ProviderError | Self::PluginError | Self::UnauthorizedProvider => 502,
            Self::ContentBlocked => 422,
            Self::InternalError => 500,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::RateLimited | Self::QuotaExceeded => 429,
            Self::InsufficientCredits => 402,
            Self::MethodNotAllowed => 405,
        }
    }
}

/// One invalid field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as the client sent it, e.g. `aspect_ratio` or `operations[2].name`.
    pub field: String,
    /// What is wrong and what would be right.
    pub message: String,
}

/// The error type of services: a code, a client-safe message and, for validation, the fields.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is invalid; every field error is listed.
    #[error("{}", summarize(.0))]
    Validation(Vec<FieldError>),
    /// A client-visible error with a code and message.
    #[error("{message}")]
    Coded {
        /// Stable code.
        code: ErrorCode,
        /// Message safe to show to the client.
        message: String,
    },
    /// A limit was reached; the client may retry after `retry_after` seconds.
    #[error("{message}")]
    Limited {
        /// `rate_limited` or `quota_exceeded`.
        code: ErrorCode,
        /// Message safe to show to the client.
        message: String,
        /// Seconds until retrying can succeed (`Retry-After`).
        retry_after: u64,
    },
    /// An unexpected failure; logged with its chain, shown to the client as `internal_error`.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn summarize(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

impl AppError {
    /// A validation error about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError { field: field.into(), message: message.into() }])
    }

    /// A coded error with a client-safe message.
    pub fn coded(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Coded { code, message: message.into() }
    }

    /// `not_found` for a resource kind and id.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::coded(ErrorCode::NotFound, format!("{kind} {id:?} does not exist"))
    }

    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::ValidationError,
            Self::Coded { code, .. } | Self::Limited { code, .. } => *code,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl From<object_store::Error> for AppError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => {
                Self::coded(ErrorCode::NotFound, format!("stored file {path} is missing"))
            }
            other => Self::Internal(anyhow::Error::new(other).context("blob store")),
        }
    }
}

/// Result alias for services.
pub type AppResult<T> = Result<T, AppError>;
