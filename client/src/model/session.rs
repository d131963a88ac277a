//! The session object, the create request and the session envelope.

use super::SendResponse;
use serde::{Deserialize, Serialize};

/// `POST /v1/projects/{project}/sessions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The session this one is spawned from (same project): driver, model, driver
    /// options and run settings not given here are inherited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<uuid::Uuid>,
    /// Makes a retried create safe: a repeat within 24 h answers the first session
    /// and sends nothing again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Ask the model for reasoning output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<bool>,
    /// Most driver turns one run may take (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Compact automatically once the context reaches this many tokens (0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_compact_tokens: Option<u64>,
    /// Messages an automatic compaction keeps (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_compact_keep: Option<u64>,
    /// Refuse delete and reset (409 `protected`) until a patch sets it false.
    /// Default: true for the key `main`, false otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
}

/// Token and cost accounting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A run as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A session as the API shows it.
// `schema(required)` on a field: serde always writes it (`null` when unset), which
// utoipa cannot tell from an `Option` or `default` field that may be left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    /// Id (UUID v7).
    pub id: String,
    /// Project.
    pub project: String,
    /// Human key.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub key: Option<String>,
    /// Label.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub label: Option<String>,
    /// Parent session.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub parent_id: Option<String>,
    /// `idle`, `running`, `paused`, `error`, `interrupted`.
    pub status: String,
    /// Driver name.
    pub driver: String,
    /// Driver options.
    pub driver_options: serde_json::Map<String, serde_json::Value>,
    /// Model.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub model: Option<String>,
    /// System prompt.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub system_prompt: Option<String>,
    /// Seq of the last committed message.
    pub last_seq: u64,
    /// Summed usage.
    pub usage: UsageView,
    /// The latest run.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_run: Option<RunView>,
    /// Why the session is in error.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub error: Option<String>,
    /// Environment for the driver's process.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub env: std::collections::BTreeMap<String, String>,
    /// Working directory for the driver's process.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub cwd: Option<String>,
    /// Whether the driver asks the model for reasoning output (`None`: the driver's
    /// default).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub thinking: Option<bool>,
    /// Most driver turns one run may take.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub max_turns: Option<u32>,
    /// Auto-compact threshold in context tokens (`None`: off).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub auto_compact_tokens: Option<u64>,
    /// Messages an automatic compaction keeps (`None`: 20).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub auto_compact_keep: Option<u64>,
    /// No new run starts; prompts queue until resume.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub paused: bool,
    /// Messages up to this seq left the live log for the archive (compact, reset).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub archived_upto: u64,
    /// Delete and reset are refused (409 `protected`) until a patch clears this.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub protected: bool,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Last prompt or run activity.
    pub last_activity_at: String,
}

/// `{"session": {...}}`, with the first run when the create carried a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionEnvelope {
    /// The session.
    pub session: SessionView,
    /// The run started by the create's prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<SendResponse>,
}
