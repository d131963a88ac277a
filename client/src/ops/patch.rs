//! `patch`: change a session's settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::SessionEnvelope;

/// `PATCH /v1/sessions/{id}`: each field given replaces the session's; absent or
/// `null` leaves it. An empty string clears `label`, `model`, `system_prompt` and
/// `cwd`. `{}` changes nothing and answers the session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PatchSession {
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
    /// Protect the session (delete and reset answer 409 `protected`) or lift it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
}

impl Operation for PatchSession {
    const NAME: &'static str = "patch";
    const ROUTE: Route = Route {
        method: Method::Patch,
        path: "",
        input: Input::Body,
        success: 200,
    };
    const DEADLINE: Deadline = Deadline::Call;
    const MUTATES: bool = true;
    type Reply = SessionEnvelope;

    /// It sets values: twice is once.
    fn retry_safe(&self) -> bool {
        true
    }
}
