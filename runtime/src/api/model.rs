//! The API's JSON shapes: what the server answers and the CLI reads. The CLI
//! depends on these types, never on server internals.
//!
//! # Layout
//! - `session`: the session object, create and the session envelope
//! - `message`: send, history, abort and the session event stream
//! - `lifecycle`: steer, patch, delete, compact
//! - `projects`: list, preview, retention, project events, node info
//! - `websocket`: the frames of a session's WebSocket
//! - this file: timestamps, the error shape, health

mod lifecycle;
mod message;
mod projects;
mod session;
mod websocket;

pub use lifecycle::*;
pub use message::*;
pub use projects::*;
pub use session::*;
pub use websocket::*;

use serde::{Deserialize, Serialize};
use sessiond_store::TimestampMs;

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: TimestampMs) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// The one error shape: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code: not_found, invalid_request, conflict, payload_too_large,
    /// method_not_allowed, unavailable, timeout, internal.
    pub code: String,
    /// What happened, for people.
    pub message: String,
}

/// `GET /healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// This node.
    pub node_id: String,
    /// `sqlite`, `redis` or `memory`.
    pub store: String,
}
