//! How the actor's writes reach the store: handed to the node's group-commit
//! writer (a failure comes back as a message and stops the actor) or committed and
//! awaited, and the project status notice once a status change is committed.

use ractor::ActorRef;
use sessiond_store::{ProjectEvent, SessionWrite};

use super::state::SessionState;
use super::{Session, SessionMsg};
use crate::error::{Result, SessionError};
use crate::writer::WriteError;

impl Session {
    /// Hands a write to the writer; a failure comes back as `WriteFailed`. A status
    /// change is announced on the project channel once committed.
    pub(super) async fn submit(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        write: SessionWrite,
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
    pub(super) async fn commit(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        write: SessionWrite,
    ) -> Result<()> {
        let announce = state.status_to_announce(write.meta.as_ref());
        if let Err(e) = self.ctx.writer.commit(write).await {
            stop_on_write_failure(me, state, e.clone());
            return Err(SessionError::Write(e));
        }
        if let Some((tenant, project, status)) = announce {
            self.ctx
                .announce(&tenant, &project, ProjectEvent::Status(status));
        }
        Ok(())
    }

    pub(super) fn announce_status(&self, state: &mut SessionState) {
        if let Some((tenant, project, status)) = state.status_to_announce(Some(&state.meta.clone()))
        {
            self.ctx
                .announce(&tenant, &project, ProjectEvent::Status(status));
        }
    }
}

/// Stops the actor after a failed write: its state is ahead of the store, which
/// stays the truth for the next incarnation.
pub(super) fn stop_on_write_failure(
    me: &ActorRef<SessionMsg>,
    state: &SessionState,
    e: WriteError,
) {
    tracing::error!(session_id = %state.meta.id, error = %e, "write failed, stopping session");
    me.stop(Some(format!("write failed: {e}")));
}
