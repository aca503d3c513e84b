//! The error every server function returns. It carries the engine's stable code and the field
//! at fault, so forms can show the message next to the right input.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl AppError {
    pub fn is_unauthenticated(&self) -> bool {
        self.code == "unauthenticated"
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // Arguments that do not decode are the caller's fault: answer 400, not 500.
        let bad_request = matches!(value, ServerFnErrorErr::Args(_) | ServerFnErrorErr::Deserialization(_));
        #[cfg(feature = "ssr")]
        if bad_request {
            crate::session::set_status(400);
        }
        AppError {
            code: if bad_request { "invalid_request" } else { "request_failed" }.into(),
            message: value.to_string(),
            field: None,
        }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::Error> for AppError {
    fn from(e: engine::Error) -> Self {
        crate::session::set_status(e.status());
        if e.status() >= 500 {
            tracing::error!(error = %e, "server function failed");
        }
        AppError { code: e.code().into(), message: e.public_message(), field: e.field().map(Into::into) }
    }
}
