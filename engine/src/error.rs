//! The one error type of the engine. Each variant has a stable code and an HTTP status, so the
//! server maps it to `{"error": {"code", "message", "field"}}` without knowing engine details.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; names the offending field.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The body cannot be decoded at all (bad JSON, bad gzip, not UTF-8).
    #[error("{message}")]
    Malformed { field: String, message: String },
    /// The body or a batch is larger than the configured limit.
    #[error("{message}")]
    TooLarge { field: String, message: String },
    /// Ingest is saturated; the client should retry after the given time.
    #[error("ingest is saturated; retry in {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    /// The server is shutting down and takes no more writes.
    #[error("the server is shutting down")]
    Unavailable,
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid username or password")]
    BadCredentials,
    #[error("you are not allowed to do this")]
    Forbidden,
    /// Not allowed, for one field of a batch (e.g. a record for a model the API key may not write).
    #[error("{message}")]
    ForbiddenField { field: String, message: String },
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

    pub fn malformed(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Malformed { field: field.into(), message: message.into() }
    }

    /// Seconds a client should wait before retrying, for 429 and 503 answers.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::TooManyRequests { retry_after_secs } | Error::Overloaded { retry_after_secs } => Some(*retry_after_secs),
            Error::Unavailable => Some(5),
            _ => None,
        }
    }

    /// Stable machine-readable code, documented in docs/api.md.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_field",
            Error::Malformed { .. } => "malformed_body",
            Error::TooLarge { .. } => "too_large",
            Error::Overloaded { .. } => "ingest_saturated",
            Error::Unavailable => "unavailable",
            Error::Unauthenticated => "unauthenticated",
            Error::BadCredentials => "bad_credentials",
            Error::Forbidden | Error::ForbiddenField { .. } => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::Storage(_) => "storage_error",
            Error::Internal(_) => "internal_error",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::Invalid { .. } => 422,
            Error::Malformed { .. } => 400,
            Error::TooLarge { .. } => 413,
            Error::Overloaded { .. } => 429,
            Error::Unavailable => 503,
            Error::Unauthenticated | Error::BadCredentials => 401,
            Error::Forbidden | Error::ForbiddenField { .. } => 403,
            Error::NotFound(_) => 404,
            Error::TooManyRequests { .. } => 429,
            Error::Storage(_) | Error::Internal(_) => 500,
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. }
            | Error::Malformed { field, .. }
            | Error::TooLarge { field, .. }
            | Error::ForbiddenField { field, .. } => Some(field),
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
