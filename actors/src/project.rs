//! The project supervisor: spawns the session actors of one project (linked),
//! activates them on demand and restarts a crashed one from the store.
//!
//! ractor never restarts an actor by itself, and its default supervision handler
//! stops the supervisor when a child ends: `handle_supervisor_evt` is overridden.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use sessiond_store::{ProjectId, SessionId, SessionMeta, TenantId};
use tokio::time::Instant;

use crate::context::SessionContext;
use crate::error::{Result, SessionError, StartRefused, call_result};
use crate::session::{Session, SessionArgs, SessionHandle, StartMode};

pub mod retention;

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

struct Child {
    handle: SessionHandle,
    meta: SessionMeta,
}

/// The resident sessions of a project and their crash history.
pub struct ProjectState {
    tenant: TenantId,
    project: ProjectId,
    children: HashMap<SessionId, Child>,
    by_actor: HashMap<ActorId, SessionId>,
    crashes: HashMap<SessionId, VecDeque<Instant>>,
    /// A retention pass is running (one at a time; more requests coalesce).
    enforcing: bool,
    /// Another pass was asked for while one ran.
    enforce_again: bool,
    /// Sweeps waiting for the next pass.
    sweep_waiters: Vec<RpcReplyPort<Vec<SessionId>>>,
    /// Sweeps the running pass answers.
    pass_waiters: Vec<RpcReplyPort<Vec<SessionId>>>,
    /// When the last pass started.
    last_pass: Option<Instant>,
    /// A pass scheduled after a finished run (debounced); aborted on drop.
    pass_timer:
        Option<tokio::task::JoinHandle<std::result::Result<(), ractor::MessagingErr<ProjectMsg>>>>,
}

impl Drop for ProjectState {
    fn drop(&mut self) {
        if let Some(t) = &self.pass_timer {
            t.abort();
        }
    }
}

/// At most one retention pass per project this often after finished runs (a
/// sweep or a policy change runs one at once).
pub const RETENTION_DEBOUNCE: Duration = Duration::from_secs(1);

impl std::fmt::Debug for ProjectState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectState")
            .field("tenant", &self.tenant)
            .field("project", &self.project)
            .field("resident", &self.children.len())
            .finish_non_exhaustive()
    }
}

impl ProjectState {
    /// Removes the session's entry if it is still this actor's (an older
    /// incarnation's late exit must not remove a newer one).
    fn forget(&mut self, id: SessionId, actor: ActorId) -> Option<Child> {
        if self.children.get(&id)?.handle.actor().get_id() == actor {
            self.children.remove(&id)
        } else {
            None
        }
    }

    /// Records a crash; true while the session may still be restarted.
    fn may_restart(&mut self, id: SessionId, now: Instant) -> bool {
        let crashes = self.crashes.entry(id).or_default();
        while crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            crashes.pop_front();
        }
        crashes.push_back(now);
        crashes.len() <= MAX_RESTARTS
    }
}

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
    /// The live session actors of the project (a stopping node drains them; a
    /// restarted actor is known here before the node's map learns of it).
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
}

impl Actor for Project {
    type Msg = ProjectMsg;
    type State = ProjectState;
    type Arguments = ProjectArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<ProjectMsg>,
        args: ProjectArgs,
    ) -> Result<ProjectState, ActorProcessingErr> {
        Ok(ProjectState {
            tenant: args.tenant,
            project: args.project,
            children: HashMap::new(),
            by_actor: HashMap::new(),
            crashes: HashMap::new(),
            enforcing: false,
            enforce_again: false,
            sweep_waiters: Vec::new(),
            pass_waiters: Vec::new(),
            last_pass: None,
            pass_timer: None,
        })
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
                        if state.pass_timer.as_ref().is_none_or(|t| t.is_finished()) {
                            let wait = RETENTION_DEBOUNCE - since;
                            state.pass_timer =
                                Some(me.send_after(wait, || ProjectMsg::Sweep { reply: None }));
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
        }
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
                if let Some(id) = state.by_actor.remove(&cell.get_id()) {
                    tracing::debug!(session_id = %id, ?reason, "session stopped");
                    state.forget(id, cell.get_id());
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(id) = state.by_actor.remove(&cell.get_id()) else {
                    return Ok(());
                };
                // A late event of an older incarnation: a newer one already runs.
                let Some(child) = state.forget(id, cell.get_id()) else {
                    return Ok(());
                };
                if let Some(refused) = err.downcast_ref::<StartRefused>() {
                    tracing::info!(session_id = %id, reason = %refused, "session not started");
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
        state.by_actor.insert(handle.actor().get_id(), id);
        state.children.insert(
            id,
            Child {
                handle: handle.clone(),
                meta,
            },
        );
        Ok(handle)
    }
}

/// The typed API of a project supervisor.
#[derive(Debug, Clone)]
pub struct ProjectHandle {
    actor: ActorRef<ProjectMsg>,
    timeout: Duration,
}

impl ProjectHandle {
    /// Spawns a supervisor for one project.
    pub async fn spawn(ctx: SessionContext, tenant: TenantId, project: ProjectId) -> Result<Self> {
        let timeout = ctx.settings.call_timeout;
        let (actor, _) = Actor::spawn(None, Project::new(ctx), ProjectArgs { tenant, project })
            .await
            .map_err(|e| {
                SessionError::Unavailable(format!("cannot start project supervisor: {e}"))
            })?;
        Ok(Self { actor, timeout })
    }

    async fn call<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> ProjectMsg,
    ) -> Result<T> {
        call_result(self.actor.call(build, Some(self.timeout)).await, || {
            "project supervisor".into()
        })
    }

    /// The session's actor, spawned from `meta` if not resident.
    pub async fn activate(&self, meta: SessionMeta) -> Result<SessionHandle> {
        self.call(|reply| ProjectMsg::Activate {
            meta: Box::new(meta),
            reply,
        })
        .await?
    }

    /// The project's live session actors.
    pub async fn residents(&self) -> Result<Vec<SessionHandle>> {
        self.call(|reply| ProjectMsg::Residents { reply }).await
    }

    /// Runs a retention pass now; returns the sessions it deleted.
    pub async fn sweep(&self) -> Result<Vec<SessionId>> {
        let timeout = self.timeout * 4;
        call_result(
            self.actor
                .call(
                    |reply| ProjectMsg::Sweep { reply: Some(reply) },
                    Some(timeout),
                )
                .await,
            || "retention sweep".into(),
        )
    }

    /// Stops the supervisor at once; its sessions are killed without cleanup (as in
    /// a crash: their runs are marked interrupted by the next owner).
    pub fn stop(&self) {
        self.actor.stop(None);
    }

    /// Stops its sessions gracefully (each releases its lease), then itself.
    pub async fn stop_and_wait(&self) {
        let timeout = Some(self.timeout);
        self.actor
            .stop_children_and_wait(Some("node stopping".into()), timeout)
            .await;
        let _ = self.actor.stop_and_wait(None, timeout).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_intensity_is_three_in_sixty_seconds() {
        let mut st = ProjectState {
            tenant: "t".parse().unwrap(),
            project: "p".parse().unwrap(),
            children: HashMap::new(),
            by_actor: HashMap::new(),
            crashes: HashMap::new(),
            enforcing: false,
            enforce_again: false,
            sweep_waiters: Vec::new(),
            pass_waiters: Vec::new(),
            last_pass: None,
            pass_timer: None,
        };
        let id = SessionId::generate();
        let t0 = Instant::now();
        assert!(st.may_restart(id, t0));
        assert!(st.may_restart(id, t0 + Duration::from_secs(1)));
        assert!(st.may_restart(id, t0 + Duration::from_secs(2)));
        assert!(!st.may_restart(id, t0 + Duration::from_secs(3)));
        // Old crashes age out of the window.
        assert!(st.may_restart(id, t0 + Duration::from_secs(200)));
    }
}
