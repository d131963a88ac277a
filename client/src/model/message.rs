//! Receipts, transcript messages and pages, abort, compaction and the session
//! event stream.

use super::{RunView, UsageView};
use serde::{Deserialize, Serialize};

/// The answer to a send: the prompt is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendResponse {
    /// The run the prompt starts.
    pub run_id: uuid::Uuid,
    /// Seq of the prompt's user message.
    pub message_seq: u64,
    /// Whether it waits behind another run.
    pub queued: bool,
}

/// One transcript message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageView {
    /// Position in the session, dense from 1.
    pub seq: u64,
    /// Message id.
    pub id: String,
    /// The run it belongs to.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub run_id: Option<String>,
    /// `user`, `assistant`, `thinking`, `tool_call`, `tool_result`, `system`.
    pub role: String,
    /// Text (tool results cut to 500 lines; see `full_result`).
    pub content: String,
    /// Tool call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Tool input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_input: Option<serde_json::Value>,
    /// File the tool works on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_path: Option<String>,
    /// The tool result is an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
    /// The whole tool result when `content` was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_result: Option<String>,
    /// When it was written.
    pub timestamp: String,
}

/// `{"messages": [...]}` in seq order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryResponse {
    /// The page.
    pub messages: Vec<MessageView>,
}

/// The answer to an abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AbortResponse {
    /// `aborted` or `no-active-run`.
    pub status: String,
    /// The aborted run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<uuid::Uuid>,
}

/// `GET /v1/sessions/{id}/events` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Replay messages after this seq (`Last-Event-ID` wins when both are given).
    #[serde(default)]
    pub after_seq: Option<u64>,
}

/// The data of a `status` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusView {
    /// The session.
    pub session_id: String,
    /// Its status.
    pub status: String,
    /// Seq of the last committed message.
    pub last_seq: u64,
    /// The latest run.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_run: Option<RunView>,
    /// Summed usage.
    pub usage: UsageView,
    /// When it changed.
    pub updated_at: String,
}

/// The answer to a permission answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionAnswered {
    /// `answered`.
    pub status: String,
    /// The request answered.
    pub request_id: String,
}

/// The answer to a steer: a send receipt plus the run it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SteerResponse {
    /// The run the prompt starts.
    pub run_id: uuid::Uuid,
    /// Seq of the prompt's user message.
    pub message_seq: u64,
    /// Whether it waits (behind a pause; a steer jumps every queued prompt).
    pub queued: bool,
    /// The run the steer aborted; `null` when nothing ran. Always present, so a
    /// client can tell "nothing was interrupted" from an older server.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub interrupted_run_id: Option<uuid::Uuid>,
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompactResponse {
    /// Whether any message moved to the archive.
    pub compacted: bool,
    /// Messages left in the live log.
    pub kept: u64,
    /// Messages this compaction moved to the archive.
    pub archived: u64,
}
