//! The API's JSON shapes: what the server answers and the CLI reads. The CLI
//! depends on these types, never on server internals.

use serde::{Deserialize, Serialize};
use sessiond_store::{LastRun, Message, SessionMeta, StatusChange, TimestampMs, Usage};

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: TimestampMs) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// `POST /v1/projects/{project}/sessions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// Human key, unique in the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Driver name (default `scripted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_options: Option<serde_json::Map<String, serde_json::Value>>,
    /// Model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// A first prompt to send right away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Environment for the driver's process (keys starting with CLAUDE, CODEX,
    /// OLLAMA, ANTHROPIC_ or OPENAI_ are refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// Working directory for the driver's process (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// Token and cost accounting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UsageView {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Current context size.
    pub context_tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        Self {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            context_tokens: u.context_tokens,
            cost_usd: u.cost_usd,
        }
    }
}

/// A run as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    /// The run.
    pub run_id: String,
    /// Seq of its prompt.
    pub prompt_seq: u64,
    /// `completed`, `aborted`, `failed`, `interrupted`; absent while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The error of a failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Start time.
    pub started_at: String,
    /// End time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// What this run used.
    pub usage: UsageView,
}

impl From<&LastRun> for RunView {
    fn from(r: &LastRun) -> Self {
        Self {
            run_id: r.run_id.to_string(),
            prompt_seq: r.prompt_seq,
            outcome: r.outcome.map(|o| o.as_str().to_string()),
            error: r.error.clone(),
            started_at: rfc3339(r.started_at_ms),
            ended_at: r.ended_at_ms.map(rfc3339),
            usage: r.usage.into(),
        }
    }
}

/// A session as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    /// Id (UUID v7).
    pub id: String,
    /// Project.
    pub project: String,
    /// Human key.
    pub key: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Parent session.
    pub parent_id: Option<String>,
    /// `idle`, `running`, `paused`, `error`, `interrupted`.
    pub status: String,
    /// Driver name.
    pub driver: String,
    /// Driver options.
    pub driver_options: serde_json::Map<String, serde_json::Value>,
    /// Model.
    pub model: Option<String>,
    /// System prompt.
    pub system_prompt: Option<String>,
    /// Seq of the last committed message.
    pub last_seq: u64,
    /// Summed usage.
    pub usage: UsageView,
    /// The latest run.
    pub last_run: Option<RunView>,
    /// Why the session is in error.
    pub error: Option<String>,
    /// Environment for the driver's process.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Working directory for the driver's process.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Last prompt or run activity.
    pub last_activity_at: String,
}

impl From<&SessionMeta> for SessionView {
    fn from(m: &SessionMeta) -> Self {
        Self {
            id: m.id.to_string(),
            project: m.project.to_string(),
            key: m.key.as_ref().map(|k| k.to_string()),
            label: m.label.clone(),
            parent_id: m.parent_id.map(|p| p.to_string()),
            status: m.status.as_str().to_string(),
            driver: m.driver.clone(),
            driver_options: m.driver_options.clone(),
            model: m.model.clone(),
            system_prompt: m.system_prompt.clone(),
            last_seq: m.last_seq,
            usage: m.usage.into(),
            last_run: m.last_run.as_ref().map(RunView::from),
            error: m.error.clone(),
            env: m.config.env.clone(),
            cwd: m.config.cwd.clone(),
            created_at: rfc3339(m.created_at_ms),
            updated_at: rfc3339(m.updated_at_ms),
            last_activity_at: rfc3339(m.last_activity_ms),
        }
    }
}

/// `{"session": {...}}`, with the first run when the create carried a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEnvelope {
    /// The session.
    pub session: SessionView,
    /// The run started by the create's prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<SendResponse>,
}

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
