//! The pieces a session's state is made of: queued prompts, the active run and
//! its plan, idempotency keys seen, work waiting for the run's end, timers.

use ractor::RpcReplyPort;
use sessiond_store::{Message, RunId, SessionMeta, ToolInfo, Usage};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

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
    /// Fired by the actor when a cancelled run is past its deadline: the run task
    /// stops waiting for the driver and the run ends as aborted.
    pub(crate) force: CancellationToken,
    /// The deadline timer of an abort or steer (aborted with the run).
    pub(crate) force_timer: Option<Timer>,
    /// Tool calls of this run with no result yet: closed with a synthetic error
    /// result if the run ends before they get one.
    pub(crate) open_tools: Vec<ToolInfo>,
    /// Why the run was cancelled, when sessiond (not a client) cancelled it.
    pub(crate) cancel_note: Option<String>,
}

impl ActiveRun {
    /// A run just started with `token` as its cancellation.
    pub(crate) fn new(
        run_id: RunId,
        token: CancellationToken,
        task: Option<JoinHandle<()>>,
    ) -> Self {
        Self {
            run_id,
            _guard: token.clone().drop_guard(),
            token,
            task,
            usage: Usage::default(),
            aborting: false,
            abort_waiters: Vec::new(),
            events: 0,
            force: CancellationToken::new(),
            force_timer: None,
            open_tools: Vec::new(),
            cancel_note: None,
        }
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        if let Some(timer) = &self.force_timer {
            timer.abort();
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

/// A send whose idempotency key this incarnation has seen: its receipt, and the
/// repeats waiting for the first one's commit.
pub(crate) struct SeenKey {
    /// `None` while a steer with this key waits for the run to end.
    pub(crate) receipt: Option<SendReceipt>,
    pub(crate) committed: bool,
    pub(crate) waiters: Vec<RpcReplyPort<Result<SendReceipt>>>,
}

/// Operations that wait for the active run to end (after cancelling it).
pub(crate) enum AfterRun {
    /// Send the steer's prompt (first in the queue).
    Steer {
        prompt: String,
        idempotency_key: Option<String>,
        interrupted: RunId,
        reply: RpcReplyPort<Result<SendReceipt>>,
    },
    /// Start a fresh transcript.
    Reset {
        reply: RpcReplyPort<Result<SessionMeta>>,
    },
}

/// Aborts a timer task when dropped (ractor's `send_after` task holds the actor).
pub(crate) struct TimerGuard(pub(crate) Timer);

/// A ractor `send_after` task.
pub(crate) type Timer =
    JoinHandle<std::result::Result<(), ractor::MessagingErr<crate::session::SessionMsg>>>;

impl Drop for TimerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Most idempotency keys one incarnation remembers in memory (the store remembers
/// them all; this only saves a read for quick repeats).
pub(crate) const SEEN_KEYS_CAP: usize = 1024;
