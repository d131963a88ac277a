//! Views over many sessions and over the node: list, children, preview,
//! retention, project events and node info.

use super::{MessageView, SessionView};
use serde::{Deserialize, Serialize};

/// `GET /v1/projects/{project}/sessions` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ListSessionsQuery {
    /// Only sessions with this status: `idle`, `running`, `paused`, `error`,
    /// `interrupted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only sessions with exactly this label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Page size (default 20, 1..=100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// One page of sessions, newest activity first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionListResponse {
    /// The page.
    pub sessions: Vec<SessionView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

/// `POST /v1/sessions/preview`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The sessions (1..=64), answered in this order.
    pub ids: Vec<uuid::Uuid>,
    /// Last messages per session (default 5, 1..=100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Characters kept of each message's content (default 2000, 1..=100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
}

/// The tail of one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewView {
    /// The session asked for.
    pub id: String,
    /// `ok` (messages), `empty` (no live message) or `missing` (no such session).
    pub status: String,
    /// Its last messages, oldest first, each cut to `max_chars` (no `full_result`).
    pub messages: Vec<MessageView>,
}

/// `{"previews": [...]}` in the order asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewResponse {
    /// One per id asked.
    pub previews: Vec<PreviewView>,
}

/// `PUT /v1/projects/{project}/retention`; a missing field takes the node's
/// default.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    /// Finished sessions kept, newest activity first (1..=50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,
    /// Finished sessions idle longer than this many days are deleted (1..=365).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
}

/// A project's retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetentionView {
    /// Finished sessions kept, newest activity first.
    pub max_sessions: u32,
    /// Finished sessions idle longer than this many days are deleted.
    pub max_age_days: u32,
}

/// The data of a project stream's `sessions.changed` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionChangedView {
    /// The session.
    pub session_id: String,
    /// Why: `create`, `send`, `steer`, `abort`, `patch` (also pause and resume),
    /// `reset`, `delete`, `compact`, `retention`, `stalled`, `restarted`,
    /// `interrupted`.
    pub reason: String,
}

/// `GET /v1/node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeView {
    /// This node.
    pub node_id: String,
    /// `memory`, `sqlite` or `redis`.
    pub store: String,
    /// Sessions whose actor runs on this node now.
    pub resident_sessions: usize,
    /// Sessions in the store (this node's tenant, every project).
    pub stored_sessions: usize,
    /// Where this node is reached (`--advertise`, else its listen address).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub advertise: Option<String>,
    /// Sessions whose lease this node holds (the first 1000).
    pub owned_sessions: Vec<String>,
    /// How many sessions this node holds in all.
    pub owned_count: usize,
    /// Nodes whose heartbeat is current, this one excluded.
    pub peers: Vec<PeerView>,
}

/// A live peer node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeerView {
    /// Its id.
    pub node_id: String,
    /// Where it is reached.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub advertise: Option<String>,
    /// When its heartbeat runs out, RFC 3339.
    pub expires_at: String,
}
