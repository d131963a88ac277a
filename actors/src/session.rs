//! The session actor: owns a session's transcript tail, prompt queue, current run and
//! the run's cancellation. Everything slow (commits, the driver) happens off the
//! handler: results come back as messages, so the actor stays responsive to abort.

mod handle;
mod lifecycle;
mod messages;
mod ops;
mod restore;
mod run;
mod send;
mod state;

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use sessiond_store::{
    ChangeReason, DEFAULT_AUTO_COMPACT_KEEP, LeaseGrant, LeaseRef, Message, ProjectEvent, RunId,
    SessionId, SessionMeta, TenantId, now_ms,
};
use tokio_util::sync::CancellationToken;

pub use handle::SessionHandle;
pub use lifecycle::{CompactReport, SessionPatch};
pub use messages::{AbortReply, SendReceipt, SessionArgs, SessionMsg, StartMode};
pub use state::SessionState;

use crate::context::SessionContext;
use crate::driver::{DriverEvent, DriverOutcome};
use crate::error::{Result, SessionError, StartRefused};
use crate::writer::WriteError;
use state::ActiveRun;

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
                    .map_err(|e| refuse(SessionError::Unavailable(e.to_string())))?;
            }
            // Queued prompts stay queued (in the meta): they run once a request
            // brings the session back.
            write = Some(state.mark_error(reason.clone(), now_ms()));
        }
        if let Some(write) = write {
            ctx.writer
                .commit(write)
                .await
                .map_err(|e| refuse(SessionError::Unavailable(e.to_string())))?;
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
        if state._lease.take().is_some() {
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
                if state.is_idle() && state.last_touch.elapsed() >= self.ctx.settings.idle_after {
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
        self.arm_idle(&me, state);
        Ok(())
    }
}

impl Session {
    /// Starts the next durable prompt when nothing runs.
    async fn start_next(&self, me: &ActorRef<SessionMsg>, state: &mut SessionState) {
        let Some((plan, write)) = state.next_run(now_ms()) else {
            return;
        };
        self.submit(me, state, write).await;
        let token = CancellationToken::new();
        metrics::counter!("sessiond_runs_started_total").increment(1);
        let mut run = ActiveRun::new(plan.run_id, token.clone(), None);
        run.task = Some(run::spawn(
            self.ctx.clone(),
            me.clone(),
            &state.meta,
            plan,
            token,
            run.force.clone(),
        ));
        state.run = Some(run);
    }

    async fn on_driver_event(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        run_id: RunId,
        event: DriverEvent,
    ) {
        let crash = self.ctx.settings.test_hooks && crash_hook(&state.meta);
        let Some(run) = state.run.as_mut().filter(|r| r.run_id == run_id) else {
            return;
        };
        run.events += 1;
        if crash && run.events == 1 {
            // The scripted driver's `crash_actor` test hook: a bug in the actor
            // itself, so supervision can be shown to restart it from the store.
            panic!("crash_actor: session actor crashed on the first event of run {run_id}");
        }
        match event {
            DriverEvent::Message {
                role,
                content,
                tool,
            } => {
                if let Some(write) = state.driver_message(run_id, role, content, tool, now_ms()) {
                    self.submit(me, state, write).await;
                }
            }
            DriverEvent::Usage(u) => run.usage.add(&u),
            DriverEvent::Activity => {}
            DriverEvent::State(driver_state) => {
                let write = state.set_driver_state(driver_state, now_ms());
                self.submit(me, state, write).await;
            }
        }
    }

    async fn on_run_ended(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        run_id: RunId,
        outcome: DriverOutcome,
    ) {
        let Some((write, waiters)) = state.end_run(run_id, outcome, now_ms()) else {
            return;
        };
        let outcome = state.meta.last_run.as_ref().and_then(|r| r.outcome);
        if let Some(outcome) = outcome {
            metrics::counter!("sessiond_runs_ended_total", "outcome" => outcome.as_str())
                .increment(1);
        }
        let me2 = me.clone();
        let announce = state.status_to_announce(write.meta.as_ref());
        let ctx = self.ctx.clone();
        let aborted = !waiters.is_empty();
        let ids = (
            state.meta.tenant.clone(),
            state.meta.project.clone(),
            state.meta.id,
        );
        // Retention reads statuses in the store, so it hears of the finished run
        // once the run's end is committed (here), and only when nothing waits.
        let finished = state.queue.is_empty() && state.after_run.is_empty();
        let project = state.project.clone().filter(|_| finished);
        let on_commit = Box::new(move |result: std::result::Result<u64, WriteError>| {
            if result.is_ok() {
                if aborted {
                    ctx.changed(&ids.0, &ids.1, ids.2, ChangeReason::Abort);
                }
                if let Some((tenant, project, status)) = &announce {
                    ctx.announce(tenant, project, ProjectEvent::Status(status.clone()));
                }
                if let Some(project) = project {
                    let _ = project.cast(crate::project::ProjectMsg::SessionFinished);
                }
            }
            for w in waiters {
                let answer = match &result {
                    Ok(_) => Ok(AbortReply::Aborted { run_id }),
                    Err(e) => Err(SessionError::Unavailable(e.to_string())),
                };
                let _ = w.send(answer);
            }
            if let Err(e) = result {
                let _ = me2.cast(SessionMsg::WriteFailed(e));
            }
        });
        self.ctx.writer.submit(write, on_commit).await;
        self.run_after_run_ops(me, state).await;
        if state.wants_auto_compact() {
            let keep = state
                .meta
                .config
                .auto_compact_keep
                .unwrap_or(DEFAULT_AUTO_COMPACT_KEEP);
            if let Err(e) = self.compact(me, state, keep).await {
                tracing::warn!(session_id = %state.meta.id, error = %e, "auto-compact failed");
            }
        }
        self.start_next(me, state).await;
    }

    /// Hands a write to the writer; a failure comes back as `WriteFailed`. A status
    /// change is announced on the project channel once committed.
    async fn submit(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        write: sessiond_store::SessionWrite,
    ) {
        let me = me.clone();
        let announce = state.status_to_announce(write.meta.as_ref());
        let ctx = self.ctx.clone();
        self.ctx
            .writer
            .submit(
                write,
                Box::new(move |r| match r {
                    Ok(_) => {
                        if let Some((tenant, project, status)) = announce {
                            ctx.announce(&tenant, &project, ProjectEvent::Status(status));
                        }
                    }
                    Err(e) => {
                        let _ = me.cast(SessionMsg::WriteFailed(e));
                    }
                }),
            )
            .await;
    }

    /// Commits a write and waits for it (for operations answered with the result).
    /// A failure stops the actor, as for any write: its state is ahead of the
    /// store, which stays the truth for the next incarnation.
    async fn commit(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        write: sessiond_store::SessionWrite,
    ) -> Result<()> {
        let announce = state.status_to_announce(write.meta.as_ref());
        if let Err(e) = self.ctx.writer.commit(write).await {
            stop_on_write_failure(me, state, e.clone());
            return Err(SessionError::Unavailable(e.to_string()));
        }
        if let Some((tenant, project, status)) = announce {
            self.ctx
                .announce(&tenant, &project, ProjectEvent::Status(status));
        }
        Ok(())
    }

    fn announce_status(&self, state: &mut SessionState) {
        if let Some((tenant, project, status)) = state.status_to_announce(Some(&state.meta.clone()))
        {
            self.ctx
                .announce(&tenant, &project, ProjectEvent::Status(status));
        }
    }

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
        if state.idle_timer.is_some() || !state.is_idle() {
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

/// Whether the session's driver options ask for the `crash_actor` test hook.
fn crash_hook(meta: &SessionMeta) -> bool {
    meta.driver_options.get("crash_actor") == Some(&serde_json::Value::Bool(true))
}

fn stop_on_write_failure(me: &ActorRef<SessionMsg>, state: &SessionState, e: WriteError) {
    tracing::error!(session_id = %state.meta.id, error = %e, "write failed, stopping session");
    me.stop(Some(format!("write failed: {e}")));
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
