//! The session actor: owns a session's transcript tail, prompt queue, current run and
//! the run's cancellation. Everything slow (commits, the driver) happens off the
//! handler: results come back as messages, so the actor stays responsive to abort.
//!
//! # Layout
//! - here: the actor's start (lease, restore), stop and message dispatch
//! - `messages`, `handle`: what callers send and the typed API over it
//! - `state`, `lifecycle`, `restore`: the decisions, as plain methods on
//!   [`SessionState`] that return the write to commit (tested without an actor)
//! - `send`, `ops`: handlers of sends and steers, and of the lifecycle requests
//! - `runs`: the actor's side of a run (start, driver events, end); `run`: the
//!   run task that drives the driver
//! - `writes`: how writes reach the store and what a failed one does

mod handle;
mod lifecycle;
mod messages;
mod ops;
mod restore;
mod run;
mod runs;
mod send;
mod state;
mod writes;

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use sessiond_store::{ChangeReason, LeaseGrant, LeaseRef, Message, SessionId, TenantId, now_ms};

pub use handle::SessionHandle;
pub use lifecycle::{CompactReport, SessionPatch};
pub use messages::{AbortReply, SendReceipt, SessionArgs, SessionMsg, StartMode};
pub use state::SessionState;

use crate::context::SessionContext;
use crate::error::{Result, SessionError, StartRefused};
use writes::stop_on_write_failure;

/// The session actor (configuration only; all mutable data is in [`SessionState`]).
#[derive(Debug, Clone)]
pub struct Session {
    ctx: SessionContext,
}

impl Session {
    /// A session actor over the node's shared context.
    pub fn new(ctx: SessionContext) -> Self {
        Self { ctx }
    }
}

impl Actor for Session {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    // pre_start runs in the spawning task (the project supervisor): no I/O here.
    async fn pre_start(
        &self,
        _me: ActorRef<SessionMsg>,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        let mut state = SessionState::new(args.meta, 0);
        state.start_mode = Some(args.mode);
        state.project = args.project;
        Ok(state)
    }

    async fn post_start(
        &self,
        me: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        let tenant = state.meta.tenant.clone();
        let id = state.meta.id;
        let refuse = |e: SessionError| -> ActorProcessingErr { Box::new(StartRefused(e)) };
        let ctx = &self.ctx;
        let mode = state.start_mode.take().unwrap_or(StartMode::Activate);
        // A previous incarnation's writes may still be queued under the current
        // fence (a crash the supervisor has not seen yet, a passivation racing with
        // this activation): let them in before a new fence would turn them away.
        ctx.writer.flush().await.await;
        let fence = match ctx
            .leases
            .acquire(&tenant, id, &ctx.node, ctx.settings.lease_ttl)
            .await
        {
            Ok(LeaseGrant::Granted { fence }) => fence,
            Ok(LeaseGrant::Held { owner }) => {
                return Err(refuse(SessionError::Unavailable(format!(
                    "session {id} is active on node {owner}"
                ))));
            }
            Err(e) => return Err(refuse(e.into())),
        };
        // Renewed from now on, so a slow load cannot outlive the lease.
        let me2 = me.clone();
        let lease_entry = ctx.lease_book.hold(
            LeaseRef {
                tenant: tenant.clone(),
                session: id,
                fence,
            },
            Arc::new(move || {
                let _ = me2.cast(SessionMsg::LeaseLost);
            }),
        );
        // Noted before anything else happens under the lease: if this node dies,
        // the survivors find the session here.
        if let Err(e) = ctx.nodes.add_held(&ctx.node, &tenant, id).await {
            return Err(refuse(e.into()));
        }
        let meta = match ctx.store.load_session(&tenant, id).await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(refuse(SessionError::NotFound(format!("session {id}")))),
            Err(e) => return Err(refuse(e.into())),
        };
        let after = SessionState::restore_from(&meta);
        let log = read_all(ctx, &tenant, id, after).await.map_err(refuse)?;
        let project = state.project.take();
        *state = SessionState::new(meta, fence);
        state.project = project;
        state._lease = Some(lease_entry);
        state._driver_release =
            ctx.drivers
                .get(&state.meta.driver)
                .map(|driver| state::DriverRelease {
                    driver,
                    session: id,
                });
        let interrupted = state
            .meta
            .last_run
            .as_ref()
            .is_some_and(|r| r.outcome.is_none());
        let mut write = state.restore(&log, now_ms());
        if let StartMode::MarkError(reason) = &mode {
            if let Some(w) = write.take() {
                ctx.writer
                    .commit(w)
                    .await
                    .map_err(|e| refuse(SessionError::Write(e)))?;
            }
            // Queued prompts stay queued (in the meta): they run once a request
            // brings the session back.
            write = Some(state.mark_error(reason.clone(), now_ms()));
        }
        if let Some(write) = write {
            ctx.writer
                .commit(write)
                .await
                .map_err(|e| refuse(SessionError::Write(e)))?;
            self.announce_status(state);
        }
        if mode == StartMode::Restart {
            self.changed(state, ChangeReason::Restarted);
        }
        if interrupted {
            // Ended by this restore, not by a run task: counted with the runs'
            // other outcomes (see `end_run`).
            metrics::counter!("sessiond_runs_ended_total", "outcome" => "interrupted").increment(1);
            self.changed(state, ChangeReason::Interrupted);
        }
        if let StartMode::MarkError(_) = mode {
            // Stays stopped until the next request activates it again.
            me.stop(Some("crashed too often".into()));
            return Ok(());
        }
        self.start_next(&me, state).await;
        self.arm_idle(&me, state);
        Ok(())
    }

    // Runs on a graceful stop only (not on panic or kill: then the lease expires).
    async fn post_stop(
        &self,
        _me: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        // The run ends with the actor; its task sees the token at once. A session
        // whose run is cut stays on this node's held list, so whoever takes it
        // next (a survivor, or this node restarted) marks the run interrupted.
        let cut = state.run.is_some();
        if let Some(run) = &state.run {
            run.token.cancel();
        }
        state.idle_timer = None;
        // Give the lease back so another node can take the session at once, but only
        // after this session's queued writes are in: a new owner's fence would turn
        // them away.
        // The book entry is held to the end of the block: the lease keeps being
        // renewed while the flush waits, so no other node takes the session and
        // fences these writes out meanwhile.
        if let Some(_renewed) = state._lease.take() {
            self.ctx.writer.flush().await.await;
            let lease = LeaseRef {
                tenant: state.meta.tenant.clone(),
                session: state.meta.id,
                fence: state.fence,
            };
            if let Err(e) = self.ctx.leases.release(&self.ctx.node, &lease).await {
                tracing::warn!(session_id = %state.meta.id, error = %e, "lease release failed; it will expire");
            }
        }
        if !cut {
            self.let_go(state).await;
        }
        self.ctx.settled.notify_waiters();
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        if msg.is_request() {
            state.last_touch = tokio::time::Instant::now();
        }
        let was_settled = state.is_settled();
        match msg {
            SessionMsg::Send {
                prompt,
                idempotency_key,
                reply,
            } => {
                self.on_send(&me, state, prompt, idempotency_key, reply)
                    .await
            }
            SessionMsg::Steer {
                prompt,
                idempotency_key,
                reply,
            } => {
                self.on_steer(&me, state, prompt, idempotency_key, reply)
                    .await
            }
            SessionMsg::Abort { run_id, reply } => self.on_abort(&me, state, run_id, reply),
            SessionMsg::SetPaused { paused, reply } => {
                self.on_set_paused(&me, state, paused, reply).await
            }
            SessionMsg::Patch { patch, reply } => self.on_patch(&me, state, *patch, reply).await,
            SessionMsg::Reset { reply } => self.on_reset(&me, state, reply).await,
            SessionMsg::Compact { keep_last, reply } => {
                let answer = self.compact(&me, state, keep_last).await;
                let _ = reply.send(answer);
            }
            SessionMsg::Delete {
                archive,
                reason,
                reply,
            } => self.on_delete(&me, state, archive, reason, reply).await,
            SessionMsg::Get { reply } => {
                let _ = reply.send(state.meta.clone());
            }
            SessionMsg::IsSettled { reply } => {
                let _ = reply.send(state.is_settled());
            }
            SessionMsg::IsIdle { reply } => {
                let _ = reply.send(state.is_idle());
            }
            SessionMsg::PromptCommitted {
                run_id,
                idempotency_key,
                result,
            } => match result {
                Ok(_) => {
                    state.prompt_committed(run_id);
                    if let Some(key) = idempotency_key {
                        state.key_committed(&key);
                    }
                    self.start_next(&me, state).await;
                }
                Err(e) => stop_on_write_failure(&me, state, e),
            },
            SessionMsg::Driver { run_id, event, ack } => {
                self.on_driver_event(&me, state, run_id, event).await;
                let _ = ack.send(());
            }
            SessionMsg::Stalled {
                run_id,
                idle,
                abort,
            } => self.on_stalled(&me, state, run_id, idle, abort),
            SessionMsg::ForceEnd { run_id } => {
                if let Some(run) = state.run.as_ref().filter(|r| r.run_id == run_id) {
                    tracing::warn!(session_id = %state.meta.id, %run_id, "run past its deadline, force-ending it");
                    run.force.cancel();
                }
            }
            SessionMsg::IdleCheck => {
                state.idle_timer = None;
                // Settled, not only idle: a paused session's queued prompts are in its
                // meta and come back with it on the next request (the resume).
                if state.is_settled() && state.last_touch.elapsed() >= self.ctx.settings.idle_after
                {
                    tracing::debug!(session_id = %state.meta.id, "passivating idle session");
                    me.stop(Some("passivated".into()));
                    return Ok(());
                }
            }
            SessionMsg::RunEnded { run_id, outcome } => {
                self.on_run_ended(&me, state, run_id, outcome).await
            }
            SessionMsg::WriteFailed(e) => stop_on_write_failure(&me, state, e),
            SessionMsg::LeaseLost => {
                metrics::counter!("sessiond_leases_lost_total").increment(1);
                tracing::warn!(session_id = %state.meta.id, "lease lost, stopping session");
                me.stop(Some("lease lost".into()));
            }
        }
        // Only on the change, so a drain asking every session does not wake itself.
        if !was_settled && state.is_settled() {
            self.ctx.settled.notify_waiters();
        }
        self.arm_idle(&me, state);
        Ok(())
    }
}

impl Session {
    /// Takes the session off this node's held list (it left the node on purpose).
    async fn let_go(&self, state: &SessionState) {
        let m = &state.meta;
        if let Err(e) = self
            .ctx
            .nodes
            .remove_held(&self.ctx.node, &m.tenant, m.id)
            .await
        {
            tracing::debug!(session_id = %m.id, error = %e, "held list not updated; a recovery sweep will skip it");
        }
    }

    fn changed(&self, state: &SessionState, reason: ChangeReason) {
        self.ctx.changed(
            &state.meta.tenant,
            &state.meta.project,
            state.meta.id,
            reason,
        );
    }

    /// Arms the passivation timer when the session has nothing to do.
    fn arm_idle(&self, me: &ActorRef<SessionMsg>, state: &mut SessionState) {
        if state.idle_timer.is_some() || !state.is_settled() {
            return;
        }
        let wait = self
            .ctx
            .settings
            .idle_after
            .saturating_sub(state.last_touch.elapsed());
        let timer = me.send_after(wait, || SessionMsg::IdleCheck);
        state.idle_timer = Some(state::TimerGuard(timer));
    }
}

/// The whole log after `after`, in pages.
async fn read_all(
    ctx: &SessionContext,
    tenant: &TenantId,
    id: SessionId,
    after: u64,
) -> Result<Vec<Message>> {
    const PAGE: usize = 1000;
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let page = ctx.store.read_log(tenant, id, cursor, PAGE).await?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            cursor = last.seq;
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}
