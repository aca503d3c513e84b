//! The HTTP surface: health, session routes, the REST API, the browser bundle and the UI.

pub mod api;
pub mod csrf;
pub mod auth;
pub mod health;
pub mod alerts;
pub mod ingest;
pub mod otlp;
pub mod logs;
mod middleware;
pub mod spreadsheet;

pub use middleware::{require_login_for_pages, security_headers};
