//! Steer, patch, delete and compact: the shapes of the lifecycle routes (pause,
//! resume and reset answer a [`super::SessionEnvelope`] and take no body).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sessiond_actors::{CompactReport, SendReceipt, SessionPatch};

/// The answer to a steer: a send receipt plus the run it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SteerResponse {
    /// The run the prompt starts.
    pub run_id: uuid::Uuid,
    /// Seq of the prompt's user message.
    pub message_seq: u64,
    /// Whether it waits (behind a pause; a steer jumps every queued prompt).
    pub queued: bool,
    /// The run the steer aborted; `null` when nothing ran. Always present, so a
    /// client can tell "nothing was interrupted" from an older server.
    pub interrupted_run_id: Option<uuid::Uuid>,
}

impl From<SendReceipt> for SteerResponse {
    fn from(r: SendReceipt) -> Self {
        Self {
            run_id: r.run_id.as_uuid(),
            message_seq: r.message_seq,
            queued: r.queued,
            interrupted_run_id: r.interrupted_run_id.map(|r| r.as_uuid()),
        }
    }
}

/// `PATCH /v1/sessions/{id}`: each field given replaces the session's; absent or
/// `null` leaves it. An empty string clears `label`, `model`, `system_prompt` and
/// `cwd`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchSessionRequest {
    /// New label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// New model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// New system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Another driver; its state for this session starts over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// New driver options, replacing the old ones as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_options: Option<serde_json::Map<String, serde_json::Value>>,
    /// Ask the model for reasoning output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<bool>,
    /// New environment for the driver's process, replacing the old one as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// New working directory for the driver's process (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Most driver turns one run may take (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Auto-compact threshold in context tokens; 0 turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_compact_tokens: Option<u64>,
    /// Messages an automatic compaction keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_compact_keep: Option<u64>,
}

impl From<PatchSessionRequest> for SessionPatch {
    fn from(r: PatchSessionRequest) -> Self {
        Self {
            label: r.label,
            model: r.model,
            system_prompt: r.system_prompt,
            driver: r.driver,
            driver_options: r.driver_options,
            thinking: r.thinking,
            env: r.env,
            cwd: r.cwd,
            max_turns: r.max_turns,
            auto_compact_tokens: r.auto_compact_tokens,
            auto_compact_keep: r.auto_compact_keep,
        }
    }
}

/// `DELETE /v1/sessions/{id}` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Keep the transcript in the archive for the archive TTL (default false).
    #[serde(default)]
    pub archive: Option<bool>,
}

/// `POST /v1/sessions/{id}/compact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactRequest {
    /// Messages to keep in the live log (0..=1000000); older ones go to the archive.
    pub keep_last: u64,
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactResponse {
    /// Whether any message moved to the archive.
    pub compacted: bool,
    /// Messages left in the live log.
    pub kept: u64,
    /// Messages this compaction moved to the archive.
    pub archived: u64,
}

impl From<CompactReport> for CompactResponse {
    fn from(r: CompactReport) -> Self {
        Self {
            compacted: r.compacted,
            kept: r.kept,
            archived: r.archived,
        }
    }
}
