//! The API's JSON shapes: what the server answers and clients read. The server's
//! handlers serialize exactly these types, so there is one definition of the wire
//! format. The requests of session operations are in [`crate::ops`].
//!
//! # Layout
//! - `session`: the session object, the create request and the session envelope
//! - `message`: receipts, messages and pages, abort, compaction, the event payloads
//! - `projects`: list, preview, retention, project events, node info
//! - `websocket`: the frames of a session's WebSocket
//! - this file: health

mod message;
mod projects;
mod session;
mod websocket;

pub use message::*;
pub use projects::*;
pub use session::*;
pub use websocket::*;

pub use crate::error::{ErrorBody, ErrorDetail};

use serde::{Deserialize, Serialize};

/// `GET /healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// This node.
    pub node_id: String,
    /// `sqlite`, `redis` or `memory`.
    pub store: String,
}
