//! sessiond-runtime: a node and its API.
//!
//! Wires a store backend, the group-commit writer, the drivers and the project
//! supervisors into a [`node::Node`], and serves it over HTTP/JSON and SSE.
//!
//! # Layout
//! - [`config`]: the typed configuration tree
//! - [`node`]: `Node`, the session operations behind the API, lease renewal
//! - [`events`]: a session's event stream (replay from the store, then live)
//! - [`api`]: router, JSON model (shared with the CLI), error conversion, SSE,
//!   WebSocket
//! - [`metrics`]: Prometheus recorder, `/metrics`, request metrics
//! - [`server`]: serving a listener with graceful shutdown
//! - [`error`]: the runtime's error type

pub mod api;
pub mod config;
pub mod error;
pub mod events;
pub mod metrics;
pub mod node;
pub mod server;

pub use config::Config;
pub use error::{Error, Result};
pub use node::Node;
