//! The session actor's messages and the answers its callers get.

use ractor::{ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use sessiond_store::{ChangeReason, RunId, SessionMeta};
use tokio::sync::oneshot;

use super::lifecycle::{CompactReport, SessionPatch};
use crate::driver::{DriverEvent, DriverOutcome};
use crate::error::Result;
use crate::writer::WriteError;

/// The answer to a send (and a steer): the prompt is durable as message
/// `message_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// The run the prompt starts (now, or after the queued ones).
    pub run_id: RunId,
    /// Seq of the prompt's user message.
    pub message_seq: u64,
    /// Whether it waits behind another run (or a pause).
    pub queued: bool,
    /// The run a steer ended to make room for this prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_run_id: Option<RunId>,
}

/// The answer to an abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum AbortReply {
    /// The run ended (cancelled, or force-ended past the grace period).
    Aborted {
        /// The run.
        run_id: RunId,
    },
    /// Nothing was running (or not the run named).
    NoActiveRun,
}

/// How a session actor starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartMode {
    /// Activated by a request.
    Activate,
    /// Restarted by its supervisor after a crash: the crashed incarnation's queued
    /// writes are committed first (its fence is still current), then the session
    /// is restored.
    Restart,
    /// Crashed too often: restore, mark the session `error` with this reason, stop.
    MarkError(String),
}

/// What a session actor starts from.
#[derive(Debug, Clone)]
pub struct SessionArgs {
    /// The session as last read; `post_start` reads it again once the lease is held,
    /// as a previous owner may have written since.
    pub meta: SessionMeta,
    /// Why it starts.
    pub mode: StartMode,
    /// Its supervisor, told when a run finishes (retention).
    pub project: Option<ActorRef<crate::project::ProjectMsg>>,
}

/// Messages of the session actor.
#[derive(Debug)]
pub enum SessionMsg {
    /// Appends a prompt (answered once it is durable) and runs it, after any
    /// queued ones.
    Send {
        /// The prompt.
        prompt: String,
        /// A repeat with the same key answers the first receipt and runs nothing.
        idempotency_key: Option<String>,
        /// Answered with the receipt once the prompt is committed.
        reply: RpcReplyPort<Result<SendReceipt>>,
    },
    /// Ends the active run (waiting up to the steer deadline), then sends the
    /// prompt ahead of the queue.
    Steer {
        /// The prompt.
        prompt: String,
        /// As for `Send`.
        idempotency_key: Option<String>,
        /// Answered with the receipt once the prompt is committed.
        reply: RpcReplyPort<Result<SendReceipt>>,
    },
    /// Cancels the active run (or the named one); answered when it has ended.
    Abort {
        /// Only this run, if given.
        run_id: Option<RunId>,
        /// Answered when the run has ended and its end is committed.
        reply: RpcReplyPort<Result<AbortReply>>,
    },
    /// Pauses (`true`) or resumes (`false`); answered with the committed meta.
    SetPaused {
        /// Pause or resume.
        paused: bool,
        /// Answered with the session once the change is durable.
        reply: RpcReplyPort<Result<SessionMeta>>,
    },
    /// Changes settings; answered with the committed meta.
    Patch {
        /// What to change.
        patch: Box<SessionPatch>,
        /// Answered with the session once the change is durable.
        reply: RpcReplyPort<Result<SessionMeta>>,
    },
    /// Ends the active run, then starts a fresh transcript (the old one archived).
    Reset {
        /// Answered with the session once the reset is durable.
        reply: RpcReplyPort<Result<SessionMeta>>,
    },
    /// Archives all but the last `keep_last` messages.
    Compact {
        /// Messages to keep in the live log.
        keep_last: u64,
        /// Answered once the compaction is durable.
        reply: RpcReplyPort<Result<CompactReport>>,
    },
    /// Cancels any run, removes the session from the store, stops the actor.
    Delete {
        /// Keep the transcript in the archive (with its TTL).
        archive: bool,
        /// Why (a client's delete, or retention).
        reason: ChangeReason,
        /// Answered once the session is gone from the store.
        reply: RpcReplyPort<Result<()>>,
    },
    /// The session as this actor sees it.
    Get {
        /// Answered with the meta.
        reply: RpcReplyPort<SessionMeta>,
    },
    /// Whether the session has nothing to do (retention asks before deleting).
    IsIdle {
        /// Answered with the answer.
        reply: RpcReplyPort<bool>,
    },
    /// Whether the session has no run and starts none by itself (a draining node
    /// asks): idle, or paused with prompts queued for after the resume.
    IsSettled {
        /// Answered with the answer.
        reply: RpcReplyPort<bool>,
    },
    /// A prompt's user message was committed (or failed to be).
    PromptCommitted {
        /// The prompt's run.
        run_id: RunId,
        /// Its idempotency key, if any.
        idempotency_key: Option<String>,
        /// The commit's fate.
        result: std::result::Result<u64, WriteError>,
    },
    /// An event of the run `run_id`; `ack` is answered once it is handed to the writer
    /// (so a slow store slows the driver down).
    Driver {
        /// The run it belongs to.
        run_id: RunId,
        /// What the driver reported.
        event: DriverEvent,
        /// Answered when the event is handled.
        ack: oneshot::Sender<()>,
    },
    /// The run `run_id` showed no driver activity for `idle`.
    Stalled {
        /// The run.
        run_id: RunId,
        /// How long it has been quiet.
        idle: std::time::Duration,
        /// Past `stall_abort_after`: abort it.
        abort: bool,
    },
    /// The deadline of a cancelled run passed: force-end it.
    ForceEnd {
        /// The run.
        run_id: RunId,
    },
    /// The passivation timer fired.
    IdleCheck,
    /// The run task of `run_id` finished.
    RunEnded {
        /// The run.
        run_id: RunId,
        /// How.
        outcome: DriverOutcome,
    },
    /// A write of this session failed for good: the actor stops (the store is the
    /// truth; the next request reactivates the session from it).
    WriteFailed(WriteError),
    /// The node could not renew this session's lease: stop at once.
    LeaseLost,
}

impl SessionMsg {
    /// A request from outside, or the end of a run: idleness (passivation) counts
    /// from the last of these.
    pub(super) fn is_request(&self) -> bool {
        matches!(
            self,
            Self::Send { .. }
                | Self::Steer { .. }
                | Self::Abort { .. }
                | Self::SetPaused { .. }
                | Self::Patch { .. }
                | Self::Reset { .. }
                | Self::Compact { .. }
                | Self::Get { .. }
                | Self::RunEnded { .. }
        )
    }
}
