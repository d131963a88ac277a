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
use crate::session::{Session, SessionArgs, SessionHandle};

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
}

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
                if state.may_restart(id, Instant::now()) {
                    tracing::warn!(session_id = %id, error = %err, "session crashed, restarting from the store");
                    if let Err(e) = self.spawn(&me, state, child.meta).await {
                        tracing::error!(session_id = %id, error = %e, "session restart failed");
                    }
                } else {
                    tracing::error!(session_id = %id, error = %err, max = MAX_RESTARTS, "session crashed too often, left stopped");
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
        self.spawn(me, state, meta).await
    }

    async fn spawn(
        &self,
        me: &ActorRef<ProjectMsg>,
        state: &mut ProjectState,
        meta: SessionMeta,
    ) -> Result<SessionHandle> {
        let id = meta.id;
        let args = SessionArgs { meta: meta.clone() };
        let (actor, _) =
            Actor::spawn_linked(None, Session::new(self.ctx.clone()), args, me.get_cell())
                .await
                .map_err(|e| {
                    SessionError::Unavailable(format!("cannot start session {id}: {e}"))
                })?;
        let s = &self.ctx.settings;
        let handle = SessionHandle::new(id, actor, s.call_timeout, s.abort_grace);
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
