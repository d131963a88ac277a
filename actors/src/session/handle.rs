//! `SessionHandle`: the typed API of a session actor, every call with a deadline.

use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};
use sessiond_store::{RunId, SessionId, SessionMeta};

use super::{AbortReply, SendReceipt, SessionMsg};
use crate::error::{Result, call_result};

/// The way to talk to a session actor; cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    id: SessionId,
    actor: ActorRef<SessionMsg>,
    timeout: Duration,
    abort_timeout: Duration,
}

impl SessionHandle {
    pub(crate) fn new(
        id: SessionId,
        actor: ActorRef<SessionMsg>,
        timeout: Duration,
        abort_grace: Duration,
    ) -> Self {
        Self {
            id,
            actor,
            timeout,
            abort_timeout: timeout + abort_grace,
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

    /// Appends a prompt; returns once it is durable.
    pub async fn send(&self, prompt: String) -> Result<SendReceipt> {
        self.call("send", self.timeout, |reply| SessionMsg::Send {
            prompt,
            reply,
        })
        .await?
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
