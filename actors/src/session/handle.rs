//! `SessionHandle`: the typed API of a session actor, every call with a deadline.

use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};
use sessiond_store::{ChangeReason, RunId, SessionId, SessionMeta};

use super::{AbortReply, CompactReport, SendReceipt, SessionMsg, SessionPatch};
use crate::error::{Result, call_result};

/// The way to talk to a session actor; cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    id: SessionId,
    actor: ActorRef<SessionMsg>,
    timeout: Duration,
    abort_timeout: Duration,
    /// Calls that wait for a run to end under the steer deadline.
    long_timeout: Duration,
}

impl SessionHandle {
    pub(crate) fn new(
        id: SessionId,
        actor: ActorRef<SessionMsg>,
        timeout: Duration,
        abort_grace: Duration,
        steer_deadline: Duration,
    ) -> Self {
        Self {
            id,
            actor,
            timeout,
            abort_timeout: timeout + abort_grace,
            long_timeout: timeout + steer_deadline,
        }
    }

    /// The session.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Whether the actor is still running.
    pub fn is_alive(&self) -> bool {
        matches!(
            self.actor.get_status(),
            ractor::ActorStatus::Starting
                | ractor::ActorStatus::Running
                | ractor::ActorStatus::Upgrading
        )
    }

    pub(crate) fn actor(&self) -> &ActorRef<SessionMsg> {
        &self.actor
    }

    async fn call<T: Send + 'static>(
        &self,
        what: &str,
        timeout: Duration,
        build: impl FnOnce(RpcReplyPort<T>) -> SessionMsg,
    ) -> Result<T> {
        call_result(self.actor.call(build, Some(timeout)).await, || {
            format!("{what} on session {}", self.id)
        })
    }

    /// Appends a prompt; returns once it is durable. A repeated `idempotency_key`
    /// returns the first receipt and runs nothing.
    pub async fn send(
        &self,
        prompt: String,
        idempotency_key: Option<String>,
    ) -> Result<SendReceipt> {
        self.call("send", self.timeout, |reply| SessionMsg::Send {
            prompt,
            idempotency_key,
            reply,
        })
        .await?
    }

    /// Ends the active run (force-ending it past the steer deadline), then sends
    /// the prompt ahead of the queue.
    pub async fn steer(
        &self,
        prompt: String,
        idempotency_key: Option<String>,
    ) -> Result<SendReceipt> {
        self.call("steer", self.long_timeout, |reply| SessionMsg::Steer {
            prompt,
            idempotency_key,
            reply,
        })
        .await?
    }

    /// Pauses (`true`) or resumes (`false`); returns the session as committed.
    pub async fn set_paused(&self, paused: bool) -> Result<SessionMeta> {
        self.call("pause", self.timeout, |reply| SessionMsg::SetPaused {
            paused,
            reply,
        })
        .await?
    }

    /// Changes settings; returns the session as committed.
    pub async fn patch(&self, patch: SessionPatch) -> Result<SessionMeta> {
        self.call("patch", self.timeout, |reply| SessionMsg::Patch {
            patch: Box::new(patch),
            reply,
        })
        .await?
    }

    /// Ends the active run, then starts a fresh transcript (the old one archived).
    pub async fn reset(&self) -> Result<SessionMeta> {
        self.call("reset", self.long_timeout, |reply| SessionMsg::Reset {
            reply,
        })
        .await?
    }

    /// Archives all but the last `keep_last` messages.
    pub async fn compact(&self, keep_last: u64) -> Result<CompactReport> {
        self.call("compact", self.timeout, |reply| SessionMsg::Compact {
            keep_last,
            reply,
        })
        .await?
    }

    /// Removes the session (cancelling any run) and stops its actor.
    pub async fn delete(&self, archive: bool, reason: ChangeReason) -> Result<()> {
        self.call("delete", self.timeout, |reply| SessionMsg::Delete {
            archive,
            reason,
            reply,
        })
        .await?
    }

    /// Whether the session has nothing to do (no run, nothing queued).
    pub async fn is_idle(&self) -> Result<bool> {
        self.call("is-idle", self.timeout, |reply| SessionMsg::IsIdle {
            reply,
        })
        .await
    }

    /// Whether the session has no run and starts none by itself (idle, or paused
    /// with prompts queued): what a draining node waits for.
    pub async fn is_settled(&self) -> Result<bool> {
        self.call("is-settled", self.timeout, |reply| SessionMsg::IsSettled {
            reply,
        })
        .await
    }

    /// Cancels the active run (or `run_id` only); returns once it has ended.
    pub async fn abort(&self, run_id: Option<RunId>) -> Result<AbortReply> {
        self.call("abort", self.abort_timeout, |reply| SessionMsg::Abort {
            run_id,
            reply,
        })
        .await?
    }

    /// The session as its actor sees it.
    pub async fn meta(&self) -> Result<SessionMeta> {
        self.call("get", self.timeout, |reply| SessionMsg::Get { reply })
            .await
    }
}
