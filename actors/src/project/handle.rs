//! `ProjectHandle`: the typed API of a project supervisor, every call with a
//! deadline.

use std::time::Duration;

use ractor::{Actor, ActorId, ActorRef, RpcReplyPort};
use sessiond_store::{ProjectId, SessionId, SessionMeta, TenantId};

use super::{Project, ProjectArgs, ProjectMsg};
use crate::context::SessionContext;
use crate::error::{Result, SessionError, call_result};
use crate::session::SessionHandle;

/// The typed API of a project supervisor; cheap to clone.
#[derive(Debug, Clone)]
pub struct ProjectHandle {
    actor: ActorRef<ProjectMsg>,
    timeout: Duration,
}

impl ProjectHandle {
    pub(crate) fn new(actor: ActorRef<ProjectMsg>, timeout: Duration) -> Self {
        Self { actor, timeout }
    }

    /// Spawns a supervisor for one project; it enters itself in the context's
    /// [`Supervisors`](crate::registry::Supervisors) and leaves when it ends (an
    /// idle one stops by itself after `project_idle_after`).
    pub async fn spawn(ctx: SessionContext, tenant: TenantId, project: ProjectId) -> Result<Self> {
        let timeout = ctx.settings.call_timeout;
        let (actor, _) = Actor::spawn(None, Project::new(ctx), ProjectArgs { tenant, project })
            .await
            .map_err(|e| {
                SessionError::Unavailable(format!("cannot start project supervisor: {e}"))
            })?;
        Ok(Self { actor, timeout })
    }

    pub(crate) fn actor_id(&self) -> ActorId {
        self.actor.get_id()
    }

    /// Whether the supervisor still runs (an idle one stops by itself; a request
    /// to a stopped one answers [`SessionError::Stopped`]).
    pub fn is_alive(&self) -> bool {
        matches!(
            self.actor.get_status(),
            ractor::ActorStatus::Starting
                | ractor::ActorStatus::Running
                | ractor::ActorStatus::Upgrading
        )
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
