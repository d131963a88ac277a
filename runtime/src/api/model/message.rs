//! Prompts, transcript pages, abort and the session event stream.

use serde::{Deserialize, Serialize};
use sessiond_store::{Message, StatusChange};

use super::{RunView, UsageView, rfc3339};

/// `POST /v1/sessions/{id}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The prompt.
    pub prompt: String,
    /// Makes a retried send safe: the first answer is returned again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// The answer to a send: the prompt is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    /// The run the prompt starts.
    pub run_id: uuid::Uuid,
    /// Seq of the prompt's user message.
    pub message_seq: u64,
    /// Whether it waits behind another run.
    pub queued: bool,
}

impl From<sessiond_actors::SendReceipt> for SendResponse {
    fn from(r: sessiond_actors::SendReceipt) -> Self {
        Self {
            run_id: r.run_id.as_uuid(),
            message_seq: r.message_seq,
            queued: r.queued,
        }
    }
}

/// `GET /v1/sessions/{id}/messages` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only messages with a larger seq (default 0: from the start).
    #[serde(default)]
    pub after_seq: Option<u64>,
    /// Most messages (default 100, at most the server's page limit).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One transcript message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageView {
    /// Position in the session, dense from 1.
    pub seq: u64,
    /// Message id.
    pub id: String,
    /// The run it belongs to.
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

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        let tool = m.tool.clone().unwrap_or_default();
        Self {
            seq: m.seq,
            id: m.id.to_string(),
            run_id: m.run_id.map(|r| r.to_string()),
            role: m.role.as_str().to_string(),
            content: m.content.clone(),
            tool_call_id: tool.call_id,
            tool_name: tool.name,
            tool_input: tool.input,
            tool_path: tool.path,
            is_error: tool.is_error,
            full_result: tool.full_result,
            timestamp: rfc3339(m.timestamp_ms),
        }
    }
}

/// `{"messages": [...]}` in seq order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// The page.
    pub messages: Vec<MessageView>,
}

/// `POST /v1/sessions/{id}/abort`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortRequest {
    /// Only this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<uuid::Uuid>,
}

/// The answer to an abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortResponse {
    /// `aborted` or `no-active-run`.
    pub status: String,
    /// The aborted run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<uuid::Uuid>,
}

impl From<sessiond_actors::AbortReply> for AbortResponse {
    fn from(r: sessiond_actors::AbortReply) -> Self {
        match r {
            sessiond_actors::AbortReply::Aborted { run_id } => Self {
                status: "aborted".into(),
                run_id: Some(run_id.as_uuid()),
            },
            sessiond_actors::AbortReply::NoActiveRun => Self {
                status: "no-active-run".into(),
                run_id: None,
            },
        }
    }
}

/// `GET /v1/sessions/{id}/events` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Replay messages after this seq (`Last-Event-ID` wins when both are given).
    #[serde(default)]
    pub after_seq: Option<u64>,
}

/// The data of a `status` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// The session.
    pub session_id: String,
    /// Its status.
    pub status: String,
    /// Seq of the last committed message.
    pub last_seq: u64,
    /// The latest run.
    pub last_run: Option<RunView>,
    /// Summed usage.
    pub usage: UsageView,
    /// When it changed.
    pub updated_at: String,
}

impl From<&StatusChange> for StatusView {
    fn from(s: &StatusChange) -> Self {
        Self {
            session_id: s.session_id.to_string(),
            status: s.status.as_str().to_string(),
            last_seq: s.last_seq,
            last_run: s.last_run.as_ref().map(RunView::from),
            usage: s.usage.into(),
            updated_at: rfc3339(s.updated_at_ms),
        }
    }
}

/// The answer to a permission answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionAnswered {
    /// `answered`.
    pub status: String,
    /// The request answered.
    pub request_id: String,
}
