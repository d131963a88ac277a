//! The persisted records: session meta and transcript messages.
//!
//! Every field added after the first release carries `#[serde(default)]` and every
//! enum an `Unknown` fallback, so a node of an older version reads what a newer one
//! wrote during a rolling upgrade (see `codec`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, ProjectId, RunId, SessionId, SessionKey, TenantId};

mod project;
pub use project::{ChangeReason, ProjectEvent, RetentionPolicy};

/// Milliseconds since the Unix epoch, the one clock of every record.
pub type TimestampMs = i64;

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// No run active; a prompt starts one.
    #[default]
    Idle,
    /// A run is active.
    Running,
    /// No new runs start; prompts queue until resume.
    Paused,
    /// The session failed in a way a run cannot fix (see `SessionMeta::error`).
    Error,
    /// The node running the session died mid-run; the run was marked interrupted.
    Interrupted,
    /// A status written by a newer version.
    #[serde(other)]
    Unknown,
}

impl SessionStatus {
    /// The status as its wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Error => "error",
            Self::Interrupted => "interrupted",
            Self::Unknown => "unknown",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The driver finished normally.
    Completed,
    /// The run was cancelled (abort, steer, delete), or force-ended past its deadline.
    Aborted,
    /// The driver reported an error (see `LastRun::error`).
    Failed,
    /// The node running it died; another node closed it.
    Interrupted,
    /// An outcome written by a newer version.
    #[serde(other)]
    Unknown,
}

impl RunOutcome {
    /// The outcome as its wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Unknown => "unknown",
        }
    }
}

/// The latest run of a session, as far as the store knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    /// The run.
    pub run_id: RunId,
    /// Seq of the user message that started it.
    pub prompt_seq: u64,
    /// `None` while the run is active.
    #[serde(default)]
    pub outcome: Option<RunOutcome>,
    /// The driver's error when the outcome is `failed`.
    #[serde(default)]
    pub error: Option<String>,
    /// When the run started.
    pub started_at_ms: TimestampMs,
    /// When the run ended.
    #[serde(default)]
    pub ended_at_ms: Option<TimestampMs>,
    /// What this run alone used.
    #[serde(default)]
    pub usage: Usage,
}

/// Token and cost accounting, per run and summed per session.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Tokens the driver reports as the current context size.
    #[serde(default)]
    pub context_tokens: u64,
    /// Cost in US dollars.
    #[serde(default)]
    pub cost_usd: f64,
}

impl Usage {
    /// Adds another run's usage; context is a level, not a sum, so the newer one wins
    /// when it is known.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        if other.context_tokens > 0 {
            self.context_tokens = other.context_tokens;
        }
        self.cost_usd += other.cost_usd;
    }
}

/// Per-session settings that shape runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SessionConfig {
    /// Most driver turns one run may take (driver-specific meaning).
    #[serde(default)]
    pub max_turns: Option<u32>,
    /// Whether the driver should ask the model for reasoning output.
    #[serde(default)]
    pub thinking: Option<bool>,
    /// Working directory for drivers that run a process.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Environment for drivers that run a process (validated on input).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Compact automatically when the context passes this many tokens.
    #[serde(default)]
    pub auto_compact_tokens: Option<u64>,
    /// Messages an automatic compaction keeps (default [`DEFAULT_AUTO_COMPACT_KEEP`]).
    #[serde(default)]
    pub auto_compact_keep: Option<u64>,
}

/// Messages an automatic compaction keeps when the session does not say.
pub const DEFAULT_AUTO_COMPACT_KEEP: u64 = 20;

/// Everything about a session except its transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionMeta {
    /// The session.
    pub id: SessionId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its project.
    pub project: ProjectId,
    /// Human key, unique inside the project.
    #[serde(default)]
    pub key: Option<SessionKey>,
    /// The session this one was spawned from.
    #[serde(default)]
    pub parent_id: Option<SessionId>,
    /// Free text for people.
    #[serde(default)]
    pub label: Option<String>,
    /// Name of the driver that runs prompts.
    pub driver: String,
    /// Driver-specific options (scripted: reply, delay_ms, ...).
    #[serde(default)]
    pub driver_options: serde_json::Map<String, serde_json::Value>,
    /// Model name handed to the driver.
    #[serde(default)]
    pub model: Option<String>,
    /// System prompt handed to the driver.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Where the session stands.
    #[serde(default)]
    pub status: SessionStatus,
    /// The latest run.
    #[serde(default)]
    pub last_run: Option<LastRun>,
    /// Summed over every run.
    #[serde(default)]
    pub usage: Usage,
    /// Why the session is in `error`.
    #[serde(default)]
    pub error: Option<String>,
    /// Run settings.
    #[serde(default)]
    pub config: SessionConfig,
    /// What the driver keeps for this session across runs and restarts (the ACP
    /// driver's agent session id, ...), written by the driver, opaque to sessiond.
    #[serde(default)]
    pub driver_state: serde_json::Map<String, serde_json::Value>,
    /// Seq of the last committed message. Backends keep this authoritative on
    /// commit; a value read back always matches the log.
    #[serde(default)]
    pub last_seq: u64,
    /// Messages with seq up to this one left the live log for the archive (compact,
    /// reset); the live log holds `archived_upto + 1 ..= last_seq`.
    #[serde(default)]
    pub archived_upto: u64,
    /// Paused: no new run starts; prompts queue until resume. Kept apart from
    /// `status` because a run may still be finishing when a pause arrives.
    #[serde(default)]
    pub paused: bool,
    /// Seqs of the prompts waiting to run, in the order they will run (a steered
    /// prompt runs before older ones, so seq order is not run order). Written with
    /// every prompt and run start, so a restored session runs exactly these.
    #[serde(default)]
    pub queued: Vec<u64>,
    /// `queued` is maintained (false in records written before it existed: their
    /// queue is the prompts after the last run's, in seq order).
    #[serde(default)]
    pub queue_tracked: bool,
    /// Protected: delete and reset are refused (and retention passes it by) until
    /// a patch clears it. A session created with the key `main` starts protected.
    #[serde(default)]
    pub protected: bool,
    /// Creation time.
    pub created_at_ms: TimestampMs,
    /// Last change of any field.
    pub updated_at_ms: TimestampMs,
    /// Last prompt, run start or run end: lists sort by it, retention ages by it.
    pub last_activity_ms: TimestampMs,
}

/// Who speaks in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A prompt.
    User,
    /// Model output.
    Assistant,
    /// Model reasoning shown apart from the answer.
    Thinking,
    /// The agent calls a tool.
    ToolCall,
    /// What the tool answered.
    ToolResult,
    /// Written by sessiond itself (interruptions, plans, notices).
    System,
    /// A role written by a newer version.
    #[serde(other)]
    Unknown,
}

impl Role {
    /// The role as its wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Thinking => "thinking",
            Self::ToolCall => "tool_call",
            Self::ToolResult => "tool_result",
            Self::System => "system",
            Self::Unknown => "unknown",
        }
    }
}

/// Tool details of a `tool_call` or `tool_result` message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolInfo {
    /// Correlates a call with its result.
    #[serde(default)]
    pub call_id: Option<String>,
    /// The tool's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The call's input.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    /// A file path the tool works on, when there is one.
    #[serde(default)]
    pub path: Option<String>,
    /// The result is an error.
    #[serde(default)]
    pub is_error: bool,
    /// The whole result, when `content` was truncated for display.
    #[serde(default)]
    pub full_result: Option<String>,
}

/// One entry of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Dense position in the session, 1..n, assigned by the session actor.
    pub seq: u64,
    /// Unique id.
    pub id: MessageId,
    /// The run this message belongs to (the run a user message starts).
    #[serde(default)]
    pub run_id: Option<RunId>,
    /// Who speaks.
    pub role: Role,
    /// The text (for tool results, truncated for display).
    #[serde(default)]
    pub content: String,
    /// Tool details for tool_call and tool_result.
    #[serde(default)]
    pub tool: Option<ToolInfo>,
    /// When it was written.
    pub timestamp_ms: TimestampMs,
}

/// Most lines of a tool result kept in `content`; the rest stays in `full_result`.
pub const TOOL_RESULT_DISPLAY_LINES: usize = 500;

/// Cuts a tool result to its first [`TOOL_RESULT_DISPLAY_LINES`] lines for display.
/// Returns the display text and, when cut, the full text.
pub fn truncate_tool_result(text: String) -> (String, Option<String>) {
    match text.match_indices('\n').nth(TOOL_RESULT_DISPLAY_LINES - 1) {
        Some((cut, _)) => {
            let shown = format!("{}\n[truncated]", &text[..cut]);
            (shown, Some(text))
        }
        None => (text, None),
    }
}

/// A session as the event bus announces it: everything a subscriber needs to show a
/// status change without reading the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The session.
    pub session_id: SessionId,
    /// Its status now.
    pub status: SessionStatus,
    /// The latest run.
    #[serde(default)]
    pub last_run: Option<LastRun>,
    /// Summed usage.
    #[serde(default)]
    pub usage: Usage,
    /// Seq of the last committed message.
    pub last_seq: u64,
    /// When the change was made.
    pub updated_at_ms: TimestampMs,
}

impl StatusChange {
    /// The status part of a meta record.
    pub fn of(meta: &SessionMeta) -> Self {
        Self {
            session_id: meta.id,
            status: meta.status,
            last_run: meta.last_run.clone(),
            usage: meta.usage,
            last_seq: meta.last_seq,
            updated_at_ms: meta.updated_at_ms,
        }
    }
}

/// What a backend publishes on a session's channel after a commit.
///
/// Pub/sub is at-most-once: subscribers track the last seq they saw and read the
/// log for anything missing, so an event carries messages only as a fast path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusEvent {
    /// Messages were committed, in seq order.
    Messages {
        /// The newly committed messages.
        messages: Vec<Message>,
    },
    /// The session's meta changed.
    Status(StatusChange),
    /// The active run showed no driver activity for `idle_ms` (published by the
    /// session's owner, not by a commit).
    Stalled {
        /// The quiet run.
        run_id: RunId,
        /// How long it has been quiet.
        idle_ms: u64,
    },
    /// An event written by a newer version.
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_are_cut_for_display_and_kept_whole() {
        let short = "a\nb".to_string();
        assert_eq!(truncate_tool_result(short.clone()), (short, None));
        let long: String = (0..600).map(|i| format!("line {i}\n")).collect();
        let (shown, full) = truncate_tool_result(long.clone());
        assert_eq!(shown.lines().count(), TOOL_RESULT_DISPLAY_LINES + 1);
        assert!(shown.ends_with("[truncated]"));
        assert_eq!(full.as_deref(), Some(long.as_str()));
    }

    #[test]
    fn usage_sums_tokens_and_keeps_latest_context() {
        let mut u = Usage::default();
        u.add(&Usage {
            input_tokens: 3,
            output_tokens: 4,
            context_tokens: 10,
            cost_usd: 0.5,
        });
        u.add(&Usage {
            input_tokens: 1,
            output_tokens: 1,
            context_tokens: 0,
            cost_usd: 0.25,
        });
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.context_tokens),
            (4, 5, 10)
        );
        assert!((u.cost_usd - 0.75).abs() < 1e-9);
    }
}
