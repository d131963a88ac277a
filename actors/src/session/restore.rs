//! Restoring a session after its actor (or node) stopped: the open run is closed as
//! interrupted (its unanswered tool calls answered with a synthetic error), and the
//! prompts that were waiting are queued again in their order.

use sessiond_store::{
    Message, Role, RunId, RunOutcome, SessionMeta, SessionStatus, SessionWrite, TimestampMs,
    ToolInfo,
};

use super::state::{QueuedPrompt, SessionState};

impl SessionState {
    /// After a restart: closes a run the previous incarnation left open (marking it
    /// interrupted with a system message) and queues the durable prompts that never
    /// ran. `log` starts at `restore_from(meta)`.
    pub(crate) fn restore(&mut self, log: &[Message], now: TimestampMs) -> Option<SessionWrite> {
        let mut messages = Vec::new();
        let mut changed = false;
        if let Some(last) = self.meta.last_run.as_mut()
            && last.outcome.is_none()
        {
            last.outcome = Some(RunOutcome::Interrupted);
            last.ended_at_ms = Some(now);
            let run_id = last.run_id;
            self.meta.status = SessionStatus::Interrupted;
            self.meta.updated_at_ms = now;
            let run_log: Vec<Message> = log
                .iter()
                .filter(|m| m.seq > last.prompt_seq && m.run_id == Some(run_id))
                .cloned()
                .collect();
            for tool in unanswered_tool_calls(&run_log) {
                let (content, tool) = synthetic_tool_result(tool);
                messages.push(self.message(
                    Some(run_id),
                    Role::ToolResult,
                    content,
                    Some(tool),
                    now,
                ));
            }
            let note = format!("run {run_id} was interrupted: the session stopped while it ran");
            messages.push(self.message(Some(run_id), Role::System, note, None, now));
            changed = true;
        } else if self.meta.status == SessionStatus::Running {
            // Running with no open run: a status the old incarnation could not finish.
            self.meta.status = self.rest_status();
            changed = true;
        }
        let last_prompt = self.meta.last_run.as_ref().map_or(0, |r| r.prompt_seq);
        let waiting: Vec<u64> = if self.meta.queue_tracked {
            self.meta.queued.clone()
        } else {
            // Written before the queue was kept: prompts ran in seq order.
            log.iter()
                .filter(|m| m.role == Role::User && m.seq > last_prompt)
                .map(|m| m.seq)
                .collect()
        };
        for seq in waiting {
            match log.iter().find(|m| m.seq == seq && m.role == Role::User) {
                Some(m) => self.queue.push_back(QueuedPrompt {
                    run_id: m.run_id.unwrap_or_else(RunId::generate),
                    seq: m.seq,
                    prompt: m.content.clone(),
                    committed: true,
                }),
                None => {
                    tracing::warn!(session_id = %self.meta.id, seq, "queued prompt not in the log; skipped")
                }
            }
        }
        if !self.meta.queue_tracked {
            self.meta.queue_tracked = true;
            changed = true;
        }
        self.sync_queue();
        changed.then(|| self.write(messages, true))
    }

    /// The first seq `restore` needs from the log: the last run's messages and every
    /// queued prompt.
    pub(crate) fn restore_from(meta: &SessionMeta) -> u64 {
        let last = meta.last_run.as_ref().map_or(0, |r| r.prompt_seq);
        let first_queued = meta.queued.iter().min().map_or(u64::MAX, |s| s - 1);
        if meta.queue_tracked {
            last.min(first_queued)
        } else {
            last
        }
    }

    /// Mirrors the queue's order into the meta (written with the next meta write).
    pub(crate) fn sync_queue(&mut self) {
        self.meta.queued = self.queue.iter().map(|p| p.seq).collect();
        self.meta.queue_tracked = true;
    }
}

/// The tool calls in `log` that no tool result answers (matched by call id).
fn unanswered_tool_calls(log: &[Message]) -> Vec<ToolInfo> {
    let mut open: Vec<ToolInfo> = Vec::new();
    for m in log {
        let Some(tool) = &m.tool else { continue };
        let Some(id) = &tool.call_id else { continue };
        match m.role {
            Role::ToolCall => open.push(tool.clone()),
            Role::ToolResult => open.retain(|t| t.call_id.as_ref() != Some(id)),
            _ => {}
        }
    }
    open
}

/// A tool result marked as an error for a call whose real result was lost, so the
/// history stays valid for providers that require every call to be answered.
pub(crate) fn synthetic_tool_result(call: ToolInfo) -> (String, ToolInfo) {
    let content = "tool call interrupted: the run ended before the tool answered".to_string();
    let tool = ToolInfo {
        call_id: call.call_id,
        name: call.name,
        input: None,
        path: call.path,
        is_error: true,
        full_result: None,
    };
    (content, tool)
}
