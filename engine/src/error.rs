//! The one error type of the engine. Each variant has a stable code and an HTTP status, so the
//! server maps it to `{"error": {"code", "message", "field"}}` without knowing engine details.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; names the offending field.
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid username or password")]
    BadCredentials,
    #[error("you are not allowed to do this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("storage error: {0}")]
    Storage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid { field: field.into(), message: message.into() }
    }

    /// Stable machine-readable code, documented in docs/api.md.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_field",
            Error::Unauthenticated => "unauthenticated",
            Error::BadCredentials => "bad_credentials",
            Error::Forbidden => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::Storage(_) => "storage_error",
            Error::Internal(_) => "internal_error",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::Invalid { .. } => 422,
            Error::Unauthenticated | Error::BadCredentials => 401,
            Error::Forbidden => 403,
            Error::NotFound(_) => 404,
            Error::TooManyRequests { .. } => 429,
            Error::Storage(_) | Error::Internal(_) => 500,
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The message shown to clients. Server-side failures are not detailed to callers.
    pub fn public_message(&self) -> String {
        match self {
            Error::Storage(_) | Error::Internal(_) => "internal server error".to_string(),
            other => other.to_string(),
        }
    }
}

#[cfg(feature = "server")]
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Storage(e.to_string())
    }
}
