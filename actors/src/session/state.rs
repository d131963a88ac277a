//! `SessionState` and the decisions of a session, as plain methods that return the
//! records to write: testable without spawning an actor.

use std::collections::VecDeque;

use ractor::RpcReplyPort;
use sessiond_store::{
    LastRun, Message, MessageId, Role, RunId, RunOutcome, SessionMeta, SessionStatus, SessionWrite,
    StatusChange, TimestampMs, ToolInfo, Usage, truncate_tool_result,
};

use crate::context::LeaseEntry;
use crate::driver::DriverOutcome;
use crate::error::Result;
use crate::session::{AbortReply, SendReceipt};

mod parts;

pub(crate) use parts::*;

/// A session actor's state: meta, seq counter, prompt queue and the current run.
pub struct SessionState {
    pub(crate) meta: SessionMeta,
    pub(crate) fence: u64,
    /// Seq the next message gets.
    pub(crate) next_seq: u64,
    pub(crate) queue: VecDeque<QueuedPrompt>,
    pub(crate) run: Option<ActiveRun>,
    /// Steers and resets waiting for the active run to end, in arrival order.
    pub(crate) after_run: VecDeque<AfterRun>,
    /// Idempotency keys of sends seen by this incarnation.
    pub(crate) seen_keys: std::collections::HashMap<String, SeenKey>,
    /// The status last announced on the project channel.
    pub(crate) announced: Option<SessionStatus>,
    /// Last request from outside (passivation counts idleness from it).
    pub(crate) last_touch: tokio::time::Instant,
    /// The passivation timer, while armed.
    pub(crate) idle_timer: Option<TimerGuard>,
    /// How the actor was started (consumed by `post_start`).
    pub(crate) start_mode: Option<crate::session::StartMode>,
    /// The supervisor, told when a run finishes.
    pub(crate) project: Option<ractor::ActorRef<crate::project::ProjectMsg>>,
    pub(crate) _lease: Option<LeaseEntry>,
    pub(crate) _driver_release: Option<DriverRelease>,
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState")
            .field("id", &self.meta.id)
            .field("status", &self.meta.status)
            .field("next_seq", &self.next_seq)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl SessionState {
    /// State of a session loaded from the store under lease `fence`.
    pub(crate) fn new(meta: SessionMeta, fence: u64) -> Self {
        Self {
            next_seq: meta.last_seq + 1,
            meta,
            fence,
            queue: VecDeque::new(),
            run: None,
            after_run: VecDeque::new(),
            seen_keys: Default::default(),
            announced: None,
            last_touch: tokio::time::Instant::now(),
            idle_timer: None,
            start_mode: None,
            project: None,
            _lease: None,
            _driver_release: None,
        }
    }

    /// Remembers a send's idempotency key, with its receipt once it has one (a
    /// steer reserves its key while it waits for the run to end); repeats that
    /// already wait keep waiting.
    pub(crate) fn remember_key(&mut self, key: String, receipt: Option<SendReceipt>) {
        if self.seen_keys.len() >= SEEN_KEYS_CAP {
            // The store remembers every key; only durable entries can go.
            self.seen_keys.retain(|_, seen| !seen.committed);
        }
        let seen = self.seen_keys.entry(key).or_insert_with(|| SeenKey {
            receipt: None,
            committed: false,
            waiters: Vec::new(),
        });
        if receipt.is_some() {
            seen.receipt = receipt;
        }
    }

    /// A key's send is durable: answer the repeats that waited for it.
    pub(crate) fn key_committed(&mut self, key: &str) {
        if let Some(seen) = self.seen_keys.get_mut(key)
            && let Some(receipt) = seen.receipt
        {
            seen.committed = true;
            for w in seen.waiters.drain(..) {
                let _ = w.send(Ok(receipt));
            }
        }
    }

    /// The status change a write makes, if it differs from the last announced one:
    /// `(tenant, project, change)` for the project channel.
    pub(crate) fn status_to_announce(
        &mut self,
        meta: Option<&SessionMeta>,
    ) -> Option<(
        sessiond_store::TenantId,
        sessiond_store::ProjectId,
        StatusChange,
    )> {
        let meta = meta?;
        if self.announced == Some(meta.status) {
            return None;
        }
        self.announced = Some(meta.status);
        Some((
            meta.tenant.clone(),
            meta.project.clone(),
            StatusChange::of(meta),
        ))
    }

    /// Nothing to do: no run, nothing queued, nothing waiting.
    pub(crate) fn is_idle(&self) -> bool {
        self.run.is_none() && self.queue.is_empty() && self.after_run.is_empty()
    }

    /// No run, and none starts without a request: idle, or paused with prompts
    /// waiting for the resume (they are durable in the meta).
    pub(crate) fn is_settled(&self) -> bool {
        self.run.is_none()
            && self.after_run.is_empty()
            && (self.queue.is_empty() || self.meta.paused)
    }

    /// The status when no run is active.
    pub(crate) fn rest_status(&self) -> SessionStatus {
        if self.meta.paused {
            SessionStatus::Paused
        } else {
            SessionStatus::Idle
        }
    }

    pub(crate) fn write(&self, messages: Vec<Message>, with_meta: bool) -> SessionWrite {
        SessionWrite::new(
            self.meta.tenant.clone(),
            self.meta.id,
            self.fence,
            messages,
            with_meta.then(|| self.meta.clone()),
        )
    }

    pub(crate) fn message(
        &mut self,
        run_id: Option<RunId>,
        role: Role,
        content: String,
        tool: Option<ToolInfo>,
        now: TimestampMs,
    ) -> Message {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.meta.last_seq = seq;
        Message {
            seq,
            id: MessageId::generate(),
            run_id,
            role,
            content,
            tool,
            timestamp_ms: now,
        }
    }

    /// Accepts a prompt: assigns its seq and run, queues it, and returns the write
    /// that makes it durable and the receipt to answer once it is.
    /// A steered prompt goes `first` in the queue; `interrupted` names the run the
    /// steer ended.
    pub(crate) fn accept_prompt(
        &mut self,
        prompt: String,
        first: bool,
        interrupted: Option<RunId>,
        now: TimestampMs,
    ) -> (SessionWrite, SendReceipt) {
        let queued = self.run.is_some() || !self.queue.is_empty() || self.meta.paused;
        let run_id = RunId::generate();
        let msg = self.message(Some(run_id), Role::User, prompt.clone(), None, now);
        self.meta.last_activity_ms = now;
        self.meta.updated_at_ms = now;
        let receipt = SendReceipt {
            run_id,
            message_seq: msg.seq,
            queued,
            interrupted_run_id: interrupted,
        };
        let entry = QueuedPrompt {
            run_id,
            seq: msg.seq,
            prompt,
            committed: false,
        };
        if first {
            self.queue.push_front(entry);
        } else {
            self.queue.push_back(entry);
        }
        self.sync_queue();
        (self.write(vec![msg], true), receipt)
    }

    /// Marks a prompt's user message durable.
    pub(crate) fn prompt_committed(&mut self, run_id: RunId) {
        if let Some(p) = self.queue.iter_mut().find(|p| p.run_id == run_id) {
            p.committed = true;
        }
    }

    /// Takes the next prompt to run, when no run is active and the head of the queue
    /// is durable, and marks the session running. Returns the plan and the meta write.
    pub(crate) fn next_run(&mut self, now: TimestampMs) -> Option<(RunPlan, SessionWrite)> {
        if self.run.is_some()
            || self.meta.paused
            || !self.after_run.is_empty()
            || !self.queue.front().is_some_and(|p| p.committed)
        {
            return None;
        }
        let p = self.queue.pop_front()?;
        self.sync_queue();
        self.meta.status = SessionStatus::Running;
        self.meta.error = None;
        self.meta.last_run = Some(LastRun {
            run_id: p.run_id,
            prompt_seq: p.seq,
            outcome: None,
            error: None,
            started_at_ms: now,
            ended_at_ms: None,
            usage: Usage::default(),
        });
        self.meta.last_activity_ms = now;
        self.meta.updated_at_ms = now;
        let plan = RunPlan {
            run_id: p.run_id,
            prompt_seq: p.seq,
            prompt: p.prompt,
            upto: self.next_seq - 1,
            later_prompts: self.queue.iter().map(|q| q.seq).collect(),
        };
        Some((plan, self.write(vec![], true)))
    }

    /// Turns a driver message of the active run into a transcript message and its
    /// write. `None` when the run is not the active one (a late event).
    pub(crate) fn driver_message(
        &mut self,
        run_id: RunId,
        role: Role,
        content: String,
        tool: Option<ToolInfo>,
        now: TimestampMs,
    ) -> Option<SessionWrite> {
        let run = self.run.as_mut().filter(|r| r.run_id == run_id)?;
        match (role, tool.as_ref().and_then(|t| t.call_id.as_ref())) {
            (Role::ToolCall, Some(_)) => run.open_tools.extend(tool.clone()),
            (Role::ToolResult, Some(id)) => {
                run.open_tools.retain(|t| t.call_id.as_ref() != Some(id));
            }
            _ => {}
        }
        let (content, tool) = match (role, tool) {
            (Role::ToolResult, tool) => {
                let (shown, full) = truncate_tool_result(content);
                let mut tool = tool.unwrap_or_default();
                if full.is_some() {
                    tool.full_result = full;
                }
                (shown, Some(tool))
            }
            (_, tool) => (content, tool),
        };
        let msg = self.message(Some(run_id), role, content, tool, now);
        Some(self.write(vec![msg], false))
    }

    /// Stores the driver's state for the session (durably, with the meta).
    pub(crate) fn set_driver_state(
        &mut self,
        driver_state: serde_json::Map<String, serde_json::Value>,
        now: TimestampMs,
    ) -> SessionWrite {
        self.meta.driver_state = driver_state;
        self.meta.updated_at_ms = now;
        self.write(vec![], true)
    }

    /// Ends the active run with the driver's outcome: records it, sums usage, and
    /// returns the write plus whoever waits for an abort to finish.
    pub(crate) fn end_run(
        &mut self,
        run_id: RunId,
        outcome: DriverOutcome,
        now: TimestampMs,
    ) -> Option<(SessionWrite, Vec<RpcReplyPort<Result<AbortReply>>>)> {
        if self.run.as_ref().map(|r| r.run_id) != Some(run_id) {
            return None;
        }
        let mut run = self.run.take()?;
        let waiters = std::mem::take(&mut run.abort_waiters);
        let (outcome, error) = match outcome {
            DriverOutcome::Completed => (RunOutcome::Completed, None),
            DriverOutcome::Cancelled => (RunOutcome::Aborted, None),
            DriverOutcome::Failed(e) => (RunOutcome::Failed, Some(e)),
        };
        let mut messages = Vec::new();
        if outcome != RunOutcome::Completed {
            for tool in std::mem::take(&mut run.open_tools) {
                let (content, tool) = synthetic_tool_result(tool);
                messages.push(self.message(
                    Some(run_id),
                    Role::ToolResult,
                    content,
                    Some(tool),
                    now,
                ));
            }
        }
        if let Some(e) = &error {
            let note = format!("run failed: {e}");
            messages.push(self.message(Some(run_id), Role::System, note, None, now));
        }
        if let (RunOutcome::Aborted, Some(note)) = (outcome, run.cancel_note.take()) {
            messages.push(self.message(Some(run_id), Role::System, note, None, now));
        }
        self.meta.usage.add(&run.usage);
        if let Some(last) = self.meta.last_run.as_mut().filter(|l| l.run_id == run_id) {
            last.outcome = Some(outcome);
            last.error = error;
            last.ended_at_ms = Some(now);
            last.usage = run.usage;
        }
        self.meta.status = self.rest_status();
        self.meta.last_activity_ms = now;
        self.meta.updated_at_ms = now;
        Some((self.write(messages, true), waiters))
    }
}

#[cfg(test)]
mod tests;

pub(crate) use super::restore::synthetic_tool_result;
