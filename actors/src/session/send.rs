//! Sends and steers reaching the actor: idempotency keys (a repeat answers the
//! first receipt), the queue bound, and making a prompt durable before it queues.

use ractor::{ActorRef, RpcReplyPort};
use sessiond_store::{
    ChangeReason, IdempotencyRecord, IdempotencyScope, ProjectEvent, RunId, now_ms,
};

use super::state::SessionState;
use super::{SendReceipt, Session, SessionMsg};
use crate::error::{Result, SessionError};
use crate::writer::WriteError;

impl Session {
    pub(super) async fn on_send(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        prompt: String,
        idempotency_key: Option<String>,
        reply: RpcReplyPort<Result<SendReceipt>>,
    ) {
        let Some(reply) = self
            .replay_key(state, idempotency_key.as_deref(), reply)
            .await
        else {
            return;
        };
        if state.queue.len() >= self.ctx.settings.max_queued {
            let _ = reply.send(Err(SessionError::QueueFull(state.queue.len())));
            return;
        }
        self.accept(
            me,
            state,
            prompt,
            false,
            None,
            idempotency_key,
            ChangeReason::Send,
            reply,
        )
        .await;
    }

    /// Answers a repeated idempotency key with its first receipt (after that one is
    /// durable) and returns `None`; otherwise hands the reply back.
    pub(super) async fn replay_key(
        &self,
        state: &mut SessionState,
        key: Option<&str>,
        reply: RpcReplyPort<Result<SendReceipt>>,
    ) -> Option<RpcReplyPort<Result<SendReceipt>>> {
        let Some(key) = key else {
            return Some(reply);
        };
        if let Some(seen) = state.seen_keys.get_mut(key) {
            match (seen.committed, seen.receipt) {
                (true, Some(receipt)) => {
                    let _ = reply.send(Ok(receipt));
                }
                _ => seen.waiters.push(reply),
            }
            return None;
        }
        let scope = IdempotencyScope::Session(state.meta.id);
        match self
            .ctx
            .store
            .idempotent_answer(&state.meta.tenant, &scope, key)
            .await
        {
            Ok(None) => Some(reply),
            Ok(Some(answer)) => {
                let first = serde_json::from_str::<SendReceipt>(&answer).map_err(|e| {
                    SessionError::Unavailable(format!("stored idempotent answer unreadable: {e}"))
                });
                let _ = reply.send(first);
                None
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                None
            }
        }
    }

    /// Makes a prompt durable (with its idempotency key) and queues it.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn accept(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        prompt: String,
        first: bool,
        interrupted: Option<RunId>,
        idempotency_key: Option<String>,
        reason: ChangeReason,
        reply: RpcReplyPort<Result<SendReceipt>>,
    ) {
        let (mut write, receipt) = state.accept_prompt(prompt, first, interrupted, now_ms());
        if let Some(key) = &idempotency_key {
            write.idempotency = Some(IdempotencyRecord {
                key: key.clone(),
                answer: serde_json::to_string(&receipt).unwrap_or_default(),
                ttl_ms: self.ctx.settings.idempotency_ttl.as_millis() as u64,
            });
            state.remember_key(key.clone(), Some(receipt));
        }
        let me = me.clone();
        let announce = state.status_to_announce(write.meta.as_ref());
        let ctx = self.ctx.clone();
        let meta_ids = (
            state.meta.tenant.clone(),
            state.meta.project.clone(),
            state.meta.id,
        );
        let on_commit = Box::new(move |result: std::result::Result<u64, WriteError>| {
            let answer = match &result {
                Ok(_) => Ok(receipt),
                Err(e) => Err(SessionError::Write(e.clone())),
            };
            if result.is_ok() {
                let m = &meta_ids;
                ctx.changed(&m.0, &m.1, m.2, reason);
                if let Some((tenant, project, status)) = announce {
                    ctx.announce(&tenant, &project, ProjectEvent::Status(status));
                }
            }
            let _ = reply.send(answer);
            let _ = me.cast(SessionMsg::PromptCommitted {
                run_id: receipt.run_id,
                idempotency_key,
                result,
            });
        });
        self.ctx.writer.submit(write, on_commit).await;
    }
}
