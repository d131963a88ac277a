//! sessiond-runtime: a node and its API.
//!
//! Wires a store backend, the group-commit writer, the drivers and the project
//! supervisors into a [`node::Node`], and serves it over HTTP/JSON and SSE.
//!
//! # Layout
//! - [`config`]: the typed configuration tree
//! - [`node`]: `Node`: routing (here, forwarded, or from the store), leases and
//!   heartbeats, recovery, drain
//! - [`ops`]: how the node serves each session operation of `sessiond_client::ops`,
//!   and the one list that gives every operation its HTTP route, WebSocket frame
//!   and forwarded form
//! - [`events`]: a session's event stream (replay from the store, then live)
//! - [`api`]: router, error conversion, the views of server records in the
//!   client crate's wire types, SSE, WebSocket
//! - [`metrics`]: Prometheus recorder, `/metrics`, request metrics
//! - [`server`]: serving a listener with graceful shutdown
//! - [`error`]: the runtime's error type

pub mod api;
pub mod config;
pub mod error;
pub mod events;
pub mod metrics;
pub mod node;
pub mod ops;
pub mod server;

pub use config::Config;
pub use error::{Error, Result};
pub use node::Node;
