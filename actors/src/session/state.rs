//! `SessionState` and the decisions of a session, as plain methods that return the
//! records to write: testable without spawning an actor.

use std::collections::VecDeque;

use ractor::RpcReplyPort;
use sessiond_store::{
    LastRun, Message, MessageId, Role, RunId, RunOutcome, SessionMeta, SessionStatus, SessionWrite,
    TimestampMs, ToolInfo, Usage, truncate_tool_result,
};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::context::LeaseEntry;
use crate::driver::DriverOutcome;
use crate::error::Result;
use crate::session::{AbortReply, SendReceipt};

/// A prompt whose user message is (being) committed, waiting for its run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueuedPrompt {
    pub(crate) run_id: RunId,
    pub(crate) seq: u64,
    pub(crate) prompt: String,
    /// Its user message is durable; only then may it run.
    pub(crate) committed: bool,
}

/// The run in progress.
pub(crate) struct ActiveRun {
    pub(crate) run_id: RunId,
    /// Cancels the run; also fired by `_guard` on every exit path of the actor
    /// (`post_stop` does not run on panic).
    pub(crate) token: CancellationToken,
    pub(crate) _guard: DropGuard,
    pub(crate) task: Option<JoinHandle<()>>,
    pub(crate) usage: Usage,
    pub(crate) aborting: bool,
    pub(crate) abort_waiters: Vec<RpcReplyPort<Result<AbortReply>>>,
    /// Driver events handled so far.
    pub(crate) events: u64,
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// What the run task needs to start a run.
#[derive(Debug, Clone)]
pub(crate) struct RunPlan {
    pub(crate) run_id: RunId,
    pub(crate) prompt_seq: u64,
    pub(crate) prompt: String,
    /// The last seq assigned when the run starts: its history ends there.
    pub(crate) upto: u64,
    /// Prompts still queued behind this one: in the log already (seqs are assigned
    /// at send), but not yet part of the conversation.
    pub(crate) later_prompts: Vec<u64>,
}

impl RunPlan {
    /// The conversation this run continues, from the committed log: everything up
    /// to `upto` except the prompts still queued, with this run's prompt last (a
    /// queued prompt's seq is lower than the previous run's answer).
    pub(crate) fn history(&self, log: Vec<Message>) -> Vec<Message> {
        let (mut prompt, mut history) = (None, Vec::with_capacity(log.len()));
        for m in log {
            if m.seq == self.prompt_seq {
                prompt = Some(m);
            } else if m.seq <= self.upto && !self.later_prompts.contains(&m.seq) {
                history.push(m);
            }
        }
        history.extend(prompt);
        history
    }
}

/// Tells the session's driver to release what it keeps for the session, on every
/// exit path of the actor (a drop, so also on panic and kill).
pub(crate) struct DriverRelease {
    pub(crate) driver: std::sync::Arc<dyn crate::driver::AgentDriver>,
    pub(crate) session: sessiond_store::SessionId,
}

impl Drop for DriverRelease {
    fn drop(&mut self) {
        self.driver.release_session(self.session);
    }
}

/// A session actor's state: meta, seq counter, prompt queue and the current run.
pub struct SessionState {
    pub(crate) meta: SessionMeta,
    pub(crate) fence: u64,
    /// Seq the next message gets.
    pub(crate) next_seq: u64,
    pub(crate) queue: VecDeque<QueuedPrompt>,
    pub(crate) run: Option<ActiveRun>,
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
            _lease: None,
            _driver_release: None,
        }
    }

    fn write(&self, messages: Vec<Message>, with_meta: bool) -> SessionWrite {
        SessionWrite {
            tenant: self.meta.tenant.clone(),
            session: self.meta.id,
            fence: self.fence,
            messages,
            meta: with_meta.then(|| self.meta.clone()),
        }
    }

    fn message(
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

    /// After a restart: closes a run the previous incarnation left open (marking it
    /// interrupted with a system message) and queues the durable prompts that never
    /// ran. `log_after_prompt` is the log after the last run's prompt (or all of it).
    pub(crate) fn restore(
        &mut self,
        log_after_prompt: &[Message],
        now: TimestampMs,
    ) -> Option<SessionWrite> {
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
            let note = format!("run {run_id} was interrupted: the session stopped while it ran");
            messages.push(self.message(Some(run_id), Role::System, note, None, now));
            changed = true;
        } else if self.meta.status == SessionStatus::Running {
            // Running with no open run: a status the old incarnation could not finish.
            self.meta.status = SessionStatus::Idle;
            changed = true;
        }
        let last_prompt = self.meta.last_run.as_ref().map_or(0, |r| r.prompt_seq);
        for m in log_after_prompt {
            if m.role == Role::User && m.seq > last_prompt {
                self.queue.push_back(QueuedPrompt {
                    run_id: m.run_id.unwrap_or_else(RunId::generate),
                    seq: m.seq,
                    prompt: m.content.clone(),
                    committed: true,
                });
            }
        }
        changed.then(|| self.write(messages, true))
    }

    /// Accepts a prompt: assigns its seq and run, queues it, and returns the write
    /// that makes it durable and the receipt to answer once it is.
    pub(crate) fn accept_prompt(
        &mut self,
        prompt: String,
        now: TimestampMs,
    ) -> (SessionWrite, SendReceipt) {
        let queued = self.run.is_some() || !self.queue.is_empty();
        let run_id = RunId::generate();
        let msg = self.message(Some(run_id), Role::User, prompt.clone(), None, now);
        self.meta.last_activity_ms = now;
        self.meta.updated_at_ms = now;
        let receipt = SendReceipt {
            run_id,
            message_seq: msg.seq,
            queued,
        };
        self.queue.push_back(QueuedPrompt {
            run_id,
            seq: msg.seq,
            prompt,
            committed: false,
        });
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
        if self.run.is_some() || !self.queue.front().is_some_and(|p| p.committed) {
            return None;
        }
        let p = self.queue.pop_front()?;
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
        if self.run.as_ref().map(|r| r.run_id) != Some(run_id) {
            return None;
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
        if let Some(e) = &error {
            let note = format!("run failed: {e}");
            messages.push(self.message(Some(run_id), Role::System, note, None, now));
        }
        self.meta.usage.add(&run.usage);
        if let Some(last) = self.meta.last_run.as_mut().filter(|l| l.run_id == run_id) {
            last.outcome = Some(outcome);
            last.error = error;
            last.ended_at_ms = Some(now);
            last.usage = run.usage;
        }
        self.meta.status = SessionStatus::Idle;
        self.meta.last_activity_ms = now;
        self.meta.updated_at_ms = now;
        Some((self.write(messages, true), waiters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_store::testing::conformance::{fresh_tenant, msg, new_meta};

    fn state() -> SessionState {
        SessionState::new(new_meta(&fresh_tenant(), "p", None), 1)
    }

    fn fake_run(st: &mut SessionState, plan: &RunPlan) {
        let token = CancellationToken::new();
        st.run = Some(ActiveRun {
            run_id: plan.run_id,
            _guard: token.clone().drop_guard(),
            token,
            task: None,
            usage: Usage::default(),
            aborting: false,
            abort_waiters: vec![],
            events: 0,
        });
    }

    #[test]
    fn prompts_run_in_order_only_once_durable() {
        let mut st = state();
        let (w1, r1) = st.accept_prompt("one".into(), 1);
        let (_, r2) = st.accept_prompt("two".into(), 2);
        assert_eq!((r1.message_seq, r1.queued), (1, false));
        assert_eq!((r2.message_seq, r2.queued), (2, true));
        assert_eq!(w1.messages[0].role, Role::User);
        assert!(st.next_run(3).is_none(), "not durable yet");
        st.prompt_committed(r2.run_id);
        assert!(
            st.next_run(3).is_none(),
            "the head is not durable: FIFO holds"
        );
        st.prompt_committed(r1.run_id);
        let (plan, w) = st.next_run(3).unwrap();
        assert_eq!(plan.run_id, r1.run_id);
        assert_eq!(w.meta.unwrap().status, SessionStatus::Running);
        fake_run(&mut st, &plan);
        assert!(st.next_run(4).is_none(), "one run at a time");
    }

    #[test]
    fn driver_output_gets_dense_seqs_and_end_sums_usage() {
        let mut st = state();
        let (_, r) = st.accept_prompt("hi".into(), 1);
        st.prompt_committed(r.run_id);
        let (plan, _) = st.next_run(2).unwrap();
        fake_run(&mut st, &plan);
        let w = st
            .driver_message(plan.run_id, Role::Assistant, "echo: hi".into(), None, 3)
            .unwrap();
        assert_eq!(w.messages[0].seq, 2);
        assert!(
            st.driver_message(RunId::generate(), Role::Assistant, "late".into(), None, 3)
                .is_none()
        );
        st.run.as_mut().unwrap().usage = Usage {
            input_tokens: 1,
            output_tokens: 2,
            context_tokens: 0,
            cost_usd: 0.5,
        };
        let (w, _) = st
            .end_run(plan.run_id, DriverOutcome::Completed, 4)
            .unwrap();
        let meta = w.meta.unwrap();
        assert_eq!(meta.status, SessionStatus::Idle);
        assert_eq!(meta.usage.output_tokens, 2);
        assert_eq!(meta.last_run.unwrap().outcome, Some(RunOutcome::Completed));
        assert_eq!(st.next_seq, 3);
    }

    #[test]
    fn a_queued_prompt_runs_after_the_previous_answer() {
        let mut st = state();
        let (_, r1) = st.accept_prompt("p1".into(), 1);
        st.prompt_committed(r1.run_id);
        let (plan1, _) = st.next_run(2).unwrap();
        fake_run(&mut st, &plan1);
        let (_, r2) = st.accept_prompt("p2".into(), 3); // seq 2, queued
        let (_, r3) = st.accept_prompt("p3".into(), 3); // seq 3, queued
        let a1 = st
            .driver_message(plan1.run_id, Role::Assistant, "a1".into(), None, 4)
            .unwrap(); // seq 4
        st.end_run(plan1.run_id, DriverOutcome::Completed, 5)
            .unwrap();
        st.prompt_committed(r2.run_id);
        st.prompt_committed(r3.run_id);
        let (plan2, _) = st.next_run(6).unwrap();
        let log = vec![
            msg(1, Role::User, "p1"),
            msg(2, Role::User, "p2"),
            msg(3, Role::User, "p3"),
            a1.messages[0].clone(),
        ];
        let history: Vec<_> = plan2.history(log).into_iter().map(|m| m.content).collect();
        assert_eq!(history, vec!["p1", "a1", "p2"]);
    }

    #[test]
    fn a_failed_run_leaves_a_system_note() {
        let mut st = state();
        let (_, r) = st.accept_prompt("hi".into(), 1);
        st.prompt_committed(r.run_id);
        let (plan, _) = st.next_run(2).unwrap();
        fake_run(&mut st, &plan);
        let (w, _) = st
            .end_run(plan.run_id, DriverOutcome::Failed("boom".into()), 3)
            .unwrap();
        assert_eq!(w.messages[0].role, Role::System);
        assert!(w.messages[0].content.contains("boom"));
        assert_eq!(
            w.meta.unwrap().last_run.unwrap().outcome,
            Some(RunOutcome::Failed)
        );
    }

    #[test]
    fn restore_interrupts_the_open_run_and_requeues_unrun_prompts() {
        let mut meta = new_meta(&fresh_tenant(), "p", None);
        let run_id = RunId::generate();
        meta.status = SessionStatus::Running;
        meta.last_seq = 3;
        meta.last_run = Some(LastRun {
            run_id,
            prompt_seq: 1,
            outcome: None,
            error: None,
            started_at_ms: 1,
            ended_at_ms: None,
            usage: Usage::default(),
        });
        let mut st = SessionState::new(meta, 2);
        let log = vec![
            msg(2, Role::Assistant, "partial"),
            msg(3, Role::User, "queued"),
        ];
        let w = st.restore(&log, 10).unwrap();
        assert_eq!(w.messages[0].seq, 4);
        assert_eq!(w.messages[0].role, Role::System);
        let meta = w.meta.unwrap();
        assert_eq!(meta.status, SessionStatus::Interrupted);
        assert_eq!(
            meta.last_run.unwrap().outcome,
            Some(RunOutcome::Interrupted)
        );
        assert_eq!(st.queue.len(), 1);
        assert_eq!(st.queue[0].seq, 3);
        let (plan, _) = st.next_run(11).unwrap();
        assert_eq!(plan.prompt, "queued");
    }
}
