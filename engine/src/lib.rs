//! Modelwatch's domain: accounts, RBAC, the model registry and storage.
//!
//! `Engine` is the only entry point the server and the UI's server functions use. Each of its
//! methods that reads or changes protected data takes a `Principal` and authorises it first,
//! so no caller can forget to. It knows nothing of HTTP, cookies or HTML.
//!
//! Without the `server` feature only `types` and `error` build: the browser bundle shares them.

pub mod error;
pub mod kpi;
pub mod search;
pub mod types;

pub use error::{Error, Result};
pub use types::*;

#[cfg(feature = "server")]
pub mod alerts;
#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod dashboards;
#[cfg(feature = "server")]
mod engine;
#[cfg(feature = "server")]
pub mod ingest;
#[cfg(feature = "server")]
mod keys;
#[cfg(feature = "server")]
pub mod reads;
#[cfg(feature = "server")]
pub mod outbound;
#[cfg(feature = "server")]
pub mod rbac;
#[cfg(feature = "server")]
pub mod scrape;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod telemetry;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod testing;
#[cfg(feature = "server")]
mod validate;

#[cfg(feature = "server")]
pub use auth::SecretKey;
#[cfg(feature = "server")]
pub use engine::*;
#[cfg(feature = "server")]
pub use keys::ApiKeyInput;
#[cfg(feature = "server")]
pub use rbac::{Action, Principal};
