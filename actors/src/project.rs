//! The project supervisor: spawns the session actors of one project (linked),
//! activates them on demand, restarts a crashed one from the store, enforces
//! retention, and stops itself once idle.
//!
//! ractor never restarts an actor by itself, and its default supervision handler
//! stops the supervisor when a child ends: `handle_supervisor_evt` is overridden.
//!
//! The supervisor keeps the node's registries (see [`crate::registry`]): each
//! session actor it spawns is entered in the residents and removed when it ends,
//! and the supervisor itself is entered while it runs. Its sessions are killed
//! with it, so it stops only when it has none.
//!
//! # Layout
//! - here: the actor (messages, supervision, spawning sessions, the idle stop)
//! - `state`: [`ProjectState`] and its decisions (restart intensity, crash records,
//!   idleness), tested without an actor
//! - `handle`: [`ProjectHandle`], the typed API
//! - `retention`: the retention pass

mod handle;
pub mod retention;
mod state;

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use sessiond_store::{ProjectId, SessionId, SessionMeta, TenantId};
use tokio::time::Instant;

pub use handle::ProjectHandle;
pub use state::ProjectState;

use crate::context::SessionContext;
use crate::error::{Result, SessionError, StartRefused};
use crate::session::{Session, SessionArgs, SessionHandle, StartMode};
use state::{Registration, Timer};

/// Crashes of one session tolerated within [`RESTART_WINDOW`] before it stays down.
pub const MAX_RESTARTS: usize = 3;
/// The window of [`MAX_RESTARTS`].
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// The project supervisor (configuration only).
#[derive(Debug, Clone)]
pub struct Project {
    ctx: SessionContext,
}

impl Project {
    /// A supervisor over the node's shared context.
    pub fn new(ctx: SessionContext) -> Self {
        Self { ctx }
    }
}

/// What a project supervisor starts from.
#[derive(Debug, Clone)]
pub struct ProjectArgs {
    /// The tenant.
    pub tenant: TenantId,
    /// The project.
    pub project: ProjectId,
}

/// At most one retention pass per project this often after finished runs (a
/// sweep or a policy change runs one at once).
pub const RETENTION_DEBOUNCE: Duration = Duration::from_secs(1);

/// Messages of the project supervisor.
#[derive(Debug)]
pub enum ProjectMsg {
    /// Returns the session's actor, spawning it if it is not resident.
    Activate {
        /// The session as last read from the store.
        meta: Box<SessionMeta>,
        /// Answered with the handle.
        reply: RpcReplyPort<Result<SessionHandle>>,
    },
    /// The live session actors of the project.
    Residents {
        /// Answered with the handles.
        reply: RpcReplyPort<Vec<SessionHandle>>,
    },
    /// A session finished a run: enforce retention.
    SessionFinished,
    /// The node's periodic sweep: enforce retention (answered when done).
    Sweep {
        /// Answered with the sessions deleted.
        reply: Option<RpcReplyPort<Vec<SessionId>>>,
    },
    /// A retention pass ended, having deleted these sessions.
    RetentionDone(Vec<SessionId>),
    /// Deletes a session for retention if it is still finished; answered with
    /// whether it was deleted. Handled here, in order with activations, so a
    /// session cannot be activated on this node while retention deletes it.
    RetentionDelete {
        /// The session.
        id: SessionId,
        /// Answered with whether it was deleted.
        reply: RpcReplyPort<bool>,
    },
    /// The idle timer fired: stop if there is still nothing to do.
    IdleCheck,
}

impl Actor for Project {
    type Msg = ProjectMsg;
    type State = ProjectState;
    type Arguments = ProjectArgs;

    // Entered here, before anything can end it: the state's drop removes the entry.
    async fn pre_start(
        &self,
        me: ActorRef<ProjectMsg>,
        args: ProjectArgs,
    ) -> Result<ProjectState, ActorProcessingErr> {
        let ctx = &self.ctx;
        let handle = ProjectHandle::new(me.clone(), ctx.settings.call_timeout);
        ctx.supervisors.insert(&args.tenant, &args.project, handle);
        let registration = Registration {
            residents: ctx.residents.clone(),
            supervisors: ctx.supervisors.clone(),
            me: me.get_id(),
        };
        Ok(ProjectState::new(args.tenant, args.project, registration))
    }

    async fn post_start(
        &self,
        me: ActorRef<ProjectMsg>,
        state: &mut ProjectState,
    ) -> Result<(), ActorProcessingErr> {
        // A supervisor nobody asks anything stops too.
        self.arm_idle(&me, state);
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<ProjectMsg>,
        msg: ProjectMsg,
        state: &mut ProjectState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ProjectMsg::Activate { meta, reply } => {
                let answer = self.activate(&me, state, *meta).await;
                let _ = reply.send(answer);
            }
            ProjectMsg::Residents { reply } => {
                let live = state
                    .children
                    .values()
                    .filter(|c| c.handle.is_alive())
                    .map(|c| c.handle.clone())
                    .collect();
                let _ = reply.send(live);
            }
            ProjectMsg::SessionFinished => {
                // A busy project finishes runs all the time: one pass per
                // RETENTION_DEBOUNCE is enough (the pass sees every finished run).
                let since = state.last_pass.map(|t| t.elapsed());
                match since {
                    Some(since) if since < RETENTION_DEBOUNCE => {
                        if state.pass_timer.as_ref().is_none_or(Timer::is_finished) {
                            let wait = RETENTION_DEBOUNCE - since;
                            state.pass_timer = Some(Timer(
                                me.send_after(wait, || ProjectMsg::Sweep { reply: None }),
                            ));
                        }
                    }
                    _ => self.enforce(&me, state),
                }
            }
            ProjectMsg::Sweep { reply } => {
                state.sweep_waiters.extend(reply);
                self.enforce(&me, state);
            }
            ProjectMsg::RetentionDone(deleted) => {
                state.enforcing = false;
                for w in state.pass_waiters.drain(..) {
                    let _ = w.send(deleted.clone());
                }
                // Asked for while the pass ran: another pass (it may see a state
                // the finished one did not).
                if state.enforce_again || !state.sweep_waiters.is_empty() {
                    state.enforce_again = false;
                    self.enforce(&me, state);
                }
            }
            ProjectMsg::RetentionDelete { id, reply } => {
                let resident = state
                    .children
                    .get(&id)
                    .filter(|c| c.handle.is_alive())
                    .map(|c| c.handle.clone());
                let deleted =
                    retention::delete(&self.ctx, &state.tenant, &state.project, id, resident).await;
                let _ = reply.send(deleted);
            }
            ProjectMsg::IdleCheck => {
                state.idle_timer = None;
                let after = self.ctx.settings.project_idle_after;
                if state.idle_left(Instant::now(), after) == Some(Duration::ZERO) {
                    tracing::debug!(project = %state.project, "project supervisor idle, stopping");
                    me.stop(Some("idle".into()));
                    return Ok(());
                }
            }
        }
        self.arm_idle(&me, state);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<ProjectMsg>,
        event: SupervisionEvent,
        state: &mut ProjectState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(id) = state.by_actor.get(&cell.get_id()).copied() {
                    tracing::debug!(session_id = %id, ?reason, "session stopped");
                    state.forget(id, cell.get_id());
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(id) = state.by_actor.get(&cell.get_id()).copied() else {
                    return Ok(());
                };
                // A late event of an older incarnation: a newer one already runs.
                let Some(child) = state.forget(id, cell.get_id()) else {
                    return Ok(());
                };
                if let Some(refused) = err.downcast_ref::<StartRefused>() {
                    tracing::info!(session_id = %id, reason = %refused, "session not started");
                    self.arm_idle(&me, state);
                    return Ok(());
                }
                let mode = if state.may_restart(id, Instant::now()) {
                    tracing::warn!(session_id = %id, error = %err, "session crashed, restarting from the store");
                    StartMode::Restart
                } else {
                    tracing::error!(session_id = %id, error = %err, max = MAX_RESTARTS, "session crashed too often, marking it error");
                    StartMode::MarkError(format!(
                        "crashed more than {MAX_RESTARTS} times in {} s (last: {err})",
                        RESTART_WINDOW.as_secs()
                    ))
                };
                if let Err(e) = self.spawn(&me, state, child.meta, mode).await {
                    tracing::error!(session_id = %id, error = %e, "session restart failed");
                }
            }
            _ => {}
        }
        self.arm_idle(&me, state);
        Ok(())
    }
}

impl Project {
    async fn activate(
        &self,
        me: &ActorRef<ProjectMsg>,
        state: &mut ProjectState,
        meta: SessionMeta,
    ) -> Result<SessionHandle> {
        if let Some(child) = state.children.get(&meta.id)
            && child.handle.is_alive()
        {
            return Ok(child.handle.clone());
        }
        self.spawn(me, state, meta, StartMode::Activate).await
    }

    /// Starts a retention pass unless one runs (then another follows it).
    fn enforce(&self, me: &ActorRef<ProjectMsg>, state: &mut ProjectState) {
        if state.enforcing {
            state.enforce_again = true;
            return;
        }
        state.enforcing = true;
        state.last_pass = Some(Instant::now());
        state.pass_waiters = std::mem::take(&mut state.sweep_waiters);
        let resident = state
            .children
            .iter()
            .filter(|(_, c)| c.handle.is_alive())
            .map(|(id, c)| (*id, c.handle.clone()))
            .collect();
        let pass = retention::Pass {
            ctx: self.ctx.clone(),
            tenant: state.tenant.clone(),
            project: state.project.clone(),
            resident,
            supervisor: me.clone(),
        };
        let me = me.clone();
        tokio::spawn(async move {
            let deleted = pass.run().await;
            let _ = me.cast(ProjectMsg::RetentionDone(deleted));
        });
    }

    async fn spawn(
        &self,
        me: &ActorRef<ProjectMsg>,
        state: &mut ProjectState,
        meta: SessionMeta,
        mode: StartMode,
    ) -> Result<SessionHandle> {
        let id = meta.id;
        let args = SessionArgs {
            meta: meta.clone(),
            mode,
            project: Some(me.clone()),
        };
        let (actor, _) =
            Actor::spawn_linked(None, Session::new(self.ctx.clone()), args, me.get_cell())
                .await
                .map_err(|e| {
                    SessionError::Unavailable(format!("cannot start session {id}: {e}"))
                })?;
        let s = &self.ctx.settings;
        let handle = SessionHandle::new(id, actor, s.call_timeout, s.abort_grace, s.steer_deadline);
        state.adopt(handle.clone(), meta);
        Ok(handle)
    }

    /// Arms the idle check when there is nothing to do, and drops it when there is
    /// (a timer is a task holding the actor: it must not outlive the idleness).
    fn arm_idle(&self, me: &ActorRef<ProjectMsg>, state: &mut ProjectState) {
        let after = self.ctx.settings.project_idle_after;
        match state.idle_left(Instant::now(), after) {
            None => state.idle_timer = None,
            Some(_) if state.idle_timer.is_some() => {}
            Some(wait) => {
                state.idle_timer = Some(Timer(me.send_after(wait, || ProjectMsg::IdleCheck)));
            }
        }
    }
}
