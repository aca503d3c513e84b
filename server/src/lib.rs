//! The Modelwatch server: configuration, startup, the HTTP routes and the CLI commands.
//! A library so integration tests can start the real application on port 0.

// The log detail page's view type nests deeper than the default limit of 128.
#![recursion_limit = "256"]

pub mod alerting;
mod assets;
pub mod cli;
pub mod config;
pub mod demo;
pub mod keys;
mod error;
pub mod outbound;
mod routes;
pub mod scraper;
pub mod startup;
pub mod telemetry;
pub mod users;
