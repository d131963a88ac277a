//! Lifecycle decisions of a session beyond send and run: pause, resume, patch,
//! reset, compact and marking the session failed. Plain methods that return the
//! write to commit, like those in `state`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sessiond_store::{ArchiveUpTo, Role, SessionStatus, SessionWrite, TimestampMs, Usage};

use super::state::SessionState;

/// Changes to a session's settings; `None` leaves a field as it is. For `label`,
/// `model` and `system_prompt` an empty string clears the field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionPatch {
    /// New label.
    pub label: Option<String>,
    /// New model.
    pub model: Option<String>,
    /// New system prompt.
    pub system_prompt: Option<String>,
    /// Another driver (its options must be valid for it; checked by the caller).
    pub driver: Option<String>,
    /// New driver options (replace the old ones as a whole).
    pub driver_options: Option<serde_json::Map<String, serde_json::Value>>,
    /// Ask the model for reasoning output.
    pub thinking: Option<bool>,
    /// New environment for the driver's process (replaces the old one).
    pub env: Option<BTreeMap<String, String>>,
    /// New working directory for the driver's process.
    pub cwd: Option<String>,
    /// Most driver turns per run.
    pub max_turns: Option<u32>,
    /// Auto-compact threshold in context tokens (0 turns it off).
    pub auto_compact_tokens: Option<u64>,
    /// Messages an automatic compaction keeps.
    pub auto_compact_keep: Option<u64>,
    /// Protect the session (refuse delete and reset) or lift it.
    pub protected: Option<bool>,
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactReport {
    /// Whether any message moved to the archive.
    pub compacted: bool,
    /// Messages left in the live log.
    pub kept: u64,
    /// Messages this compaction moved to the archive.
    pub archived: u64,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl SessionState {
    /// Pauses: no run starts until resume (a running one finishes). `None` when
    /// already paused.
    pub(crate) fn pause(&mut self, now: TimestampMs) -> Option<SessionWrite> {
        if self.meta.paused {
            return None;
        }
        self.meta.paused = true;
        if self.run.is_none() {
            self.meta.status = SessionStatus::Paused;
        }
        self.meta.updated_at_ms = now;
        Some(self.write(vec![], true))
    }

    /// Resumes; queued prompts may run again. `None` when not paused.
    pub(crate) fn resume(&mut self, now: TimestampMs) -> Option<SessionWrite> {
        if !self.meta.paused {
            return None;
        }
        self.meta.paused = false;
        if self.meta.status == SessionStatus::Paused {
            self.meta.status = SessionStatus::Idle;
        }
        self.meta.updated_at_ms = now;
        Some(self.write(vec![], true))
    }

    /// Applies a patch; returns the write and whether the driver changed (its state
    /// for this session is then dropped).
    pub(crate) fn patch(&mut self, patch: SessionPatch, now: TimestampMs) -> (SessionWrite, bool) {
        let m = &mut self.meta;
        if let Some(label) = patch.label {
            m.label = non_empty(label);
        }
        if let Some(model) = patch.model {
            m.model = non_empty(model);
        }
        if let Some(prompt) = patch.system_prompt {
            m.system_prompt = non_empty(prompt);
        }
        let driver_changed = patch.driver.as_ref().is_some_and(|d| *d != m.driver);
        if let Some(driver) = patch.driver {
            m.driver = driver;
        }
        if driver_changed {
            m.driver_state.clear();
        }
        if let Some(options) = patch.driver_options {
            m.driver_options = options;
        }
        let c = &mut m.config;
        if let Some(thinking) = patch.thinking {
            c.thinking = Some(thinking);
        }
        if let Some(env) = patch.env {
            c.env = env;
        }
        if let Some(cwd) = patch.cwd {
            c.cwd = non_empty(cwd);
        }
        if let Some(turns) = patch.max_turns {
            c.max_turns = Some(turns);
        }
        if let Some(tokens) = patch.auto_compact_tokens {
            c.auto_compact_tokens = (tokens > 0).then_some(tokens);
        }
        if let Some(keep) = patch.auto_compact_keep {
            c.auto_compact_keep = Some(keep);
        }
        if let Some(protected) = patch.protected {
            m.protected = protected;
        }
        m.updated_at_ms = now;
        (self.write(vec![], true), driver_changed)
    }

    /// Starts a fresh transcript under the same id and key: every message goes to
    /// the archive, queued prompts are dropped with it, counters and the driver's
    /// state start over. Only with no run active (the caller ends it first).
    pub(crate) fn reset(&mut self, archive_ttl_ms: u64, now: TimestampMs) -> SessionWrite {
        debug_assert!(self.run.is_none(), "reset with a run active");
        self.queue.clear();
        self.sync_queue();
        let m = &mut self.meta;
        m.archived_upto = m.last_seq;
        m.usage = Usage::default();
        m.last_run = None;
        m.error = None;
        m.driver_state.clear();
        m.status = if m.paused {
            SessionStatus::Paused
        } else {
            SessionStatus::Idle
        };
        m.updated_at_ms = now;
        m.last_activity_ms = now;
        let mut write = self.write(vec![], true);
        write.archive = Some(ArchiveUpTo {
            upto_seq: self.meta.last_seq,
            ttl_ms: archive_ttl_ms,
        });
        write
    }

    /// Moves all but the last `keep_last` messages to the archive and resets the
    /// token counters. Prompts that have not run yet (and the active run's) stay in
    /// the live log whatever `keep_last` says: their runs still need them.
    pub(crate) fn compact(
        &mut self,
        keep_last: u64,
        archive_ttl_ms: u64,
        now: TimestampMs,
    ) -> (Option<SessionWrite>, CompactReport) {
        let last = self.meta.last_seq;
        let pending = self
            .queue
            .iter()
            .map(|p| p.seq)
            .chain(self.active_prompt_seq())
            .min();
        let mut upto = last.saturating_sub(keep_last);
        if let Some(first_pending) = pending {
            upto = upto.min(first_pending - 1);
        }
        let before = self.meta.archived_upto;
        if upto <= before {
            let report = CompactReport {
                compacted: false,
                kept: last - before,
                archived: 0,
            };
            return (None, report);
        }
        let m = &mut self.meta;
        m.archived_upto = upto;
        m.usage.input_tokens = 0;
        m.usage.output_tokens = 0;
        m.usage.context_tokens = 0;
        m.updated_at_ms = now;
        let mut write = self.write(vec![], true);
        write.archive = Some(ArchiveUpTo {
            upto_seq: upto,
            ttl_ms: archive_ttl_ms,
        });
        let report = CompactReport {
            compacted: true,
            kept: last - upto,
            archived: upto - before,
        };
        (Some(write), report)
    }

    /// Whether the context has passed the session's auto-compact threshold.
    pub(crate) fn wants_auto_compact(&self) -> bool {
        self.meta
            .config
            .auto_compact_tokens
            .is_some_and(|t| self.meta.usage.context_tokens >= t)
    }

    /// The seq of the active run's prompt.
    fn active_prompt_seq(&self) -> Option<u64> {
        let run = self.run.as_ref()?;
        self.meta
            .last_run
            .as_ref()
            .filter(|l| l.run_id == run.run_id)
            .map(|l| l.prompt_seq)
    }

    /// Marks the session failed for good (it crashed too often): status `error`
    /// with the reason, and a system message saying so.
    pub(crate) fn mark_error(&mut self, reason: String, now: TimestampMs) -> SessionWrite {
        let note = format!("session stopped: {reason}");
        let msg = self.message(None, Role::System, note, None, now);
        self.meta.status = SessionStatus::Error;
        self.meta.error = Some(reason);
        self.meta.updated_at_ms = now;
        self.write(vec![msg], true)
    }
}
