//! Retention of a project's finished sessions: keep the newest `max_sessions` by
//! last activity, delete those idle longer than `max_age_days`; a running session
//! (or one with prompts waiting, paused on purpose, or protected) is never deleted.
//!
//! A pass reads the index (one call), and only when the index holds more sessions
//! than the policy keeps, or one older than the age limit, reads their metas. A
//! resident session is deleted by its own actor (which refuses if it became busy);
//! another is deleted under a lease taken for the purpose, so a session that went
//! active on another node meanwhile is left alone.

use std::collections::HashMap;

use sessiond_store::{
    ChangeReason, DeleteOutcome, LeaseGrant, LeaseRef, ProjectId, RetentionPolicy, SessionId,
    SessionMeta, SessionStatus, TenantId, TimestampMs, now_ms,
};

use crate::context::SessionContext;
use crate::session::SessionHandle;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// What retention knows of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The session.
    pub id: SessionId,
    /// Its last activity.
    pub last_activity_ms: TimestampMs,
    /// Finished: not running, nothing queued, not paused, not protected.
    pub finished: bool,
}

/// The sessions a policy deletes, given candidates newest first: finished ones past
/// the newest `max_sessions` finished, and finished ones idle past the age limit.
pub fn victims(
    policy: &RetentionPolicy,
    candidates: &[Candidate],
    now: TimestampMs,
) -> Vec<SessionId> {
    let oldest_kept = now.saturating_sub(i64::from(policy.max_age_days) * DAY_MS);
    candidates
        .iter()
        .filter(|c| c.finished)
        .enumerate()
        .filter(|(rank, c)| {
            *rank >= policy.max_sessions as usize || c.last_activity_ms < oldest_kept
        })
        .map(|(_, c)| c.id)
        .collect()
}

fn finished(meta: &SessionMeta) -> bool {
    meta.status != SessionStatus::Running && !meta.paused && !meta.protected
}

/// One retention pass over a project.
pub(crate) struct Pass {
    pub(crate) ctx: SessionContext,
    pub(crate) tenant: TenantId,
    pub(crate) project: ProjectId,
    /// The project's resident sessions on this node.
    pub(crate) resident: HashMap<SessionId, SessionHandle>,
    /// The supervisor, which does the deleting.
    pub(crate) supervisor: ractor::ActorRef<crate::project::ProjectMsg>,
}

impl Pass {
    /// Runs the pass; returns the sessions it deleted. Failures are logged: the
    /// next pass tries again.
    pub(crate) async fn run(self) -> Vec<SessionId> {
        match self.try_run().await {
            Ok(deleted) => deleted,
            Err(e) => {
                tracing::warn!(project = %self.project, error = %e, "retention pass failed");
                Vec::new()
            }
        }
    }

    async fn try_run(&self) -> crate::error::Result<Vec<SessionId>> {
        let store = &self.ctx.store;
        let policy = store
            .retention(&self.tenant, &self.project)
            .await?
            .unwrap_or(self.ctx.settings.default_retention);
        let index = store.list_sessions(&self.tenant, &self.project).await?;
        let now = now_ms();
        let oldest_kept = now.saturating_sub(i64::from(policy.max_age_days) * DAY_MS);
        if index.len() <= policy.max_sessions as usize
            && index.iter().all(|(_, at)| *at >= oldest_kept)
        {
            return Ok(Vec::new());
        }
        let mut candidates = Vec::with_capacity(index.len());
        for (id, at) in index {
            let Some(meta) = store.load_session(&self.tenant, id).await? else {
                continue;
            };
            let busy = match self.resident.get(&id) {
                Some(h) => !h.is_idle().await.unwrap_or(false),
                None => false,
            };
            candidates.push(Candidate {
                id,
                last_activity_ms: at,
                finished: finished(&meta) && !busy,
            });
        }
        let mut deleted = Vec::new();
        for id in victims(&policy, &candidates, now) {
            match self.delete(id).await {
                Ok(true) => deleted.push(id),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(session_id = %id, error = %e, "retention could not delete session")
                }
            }
        }
        if !deleted.is_empty() {
            tracing::info!(project = %self.project, deleted = deleted.len(), "retention deleted sessions");
        }
        Ok(deleted)
    }

    /// Deletes one session through the supervisor (in order with activations).
    async fn delete(&self, id: SessionId) -> crate::error::Result<bool> {
        crate::error::call_result(
            self.supervisor
                .call(
                    |reply| crate::project::ProjectMsg::RetentionDelete { id, reply },
                    Some(self.ctx.settings.call_timeout),
                )
                .await,
            || "retention delete".into(),
        )
    }
}

/// Deletes a session for retention, run by the supervisor: a resident one by its
/// actor (which refuses if busy), another under a lease taken for the purpose (so
/// a session active on another node is left alone). False when it was not deleted.
pub(crate) async fn delete(
    ctx: &SessionContext,
    tenant: &TenantId,
    project: &ProjectId,
    id: SessionId,
    resident: Option<SessionHandle>,
) -> bool {
    let result = async {
        if let Some(handle) = resident {
            return match handle.delete(false, ChangeReason::Retention).await {
                Ok(()) => Ok(true),
                Err(crate::SessionError::Conflict(_) | crate::SessionError::Stopped(_)) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            };
        }
        let fence = match ctx
            .leases
            .acquire(tenant, id, &ctx.node, ctx.settings.lease_ttl)
            .await?
        {
            LeaseGrant::Granted { fence } => fence,
            // Active on another node: not finished as far as we can tell.
            LeaseGrant::Held { .. } => return Ok(false),
        };
        let lease = LeaseRef {
            tenant: tenant.clone(),
            session: id,
            fence,
        };
        // Under the lease nothing can change it: check it is still finished.
        let still_finished = ctx
            .store
            .load_session(tenant, id)
            .await?
            .is_some_and(|m| finished(&m));
        if !still_finished {
            ctx.leases.release(&ctx.node, &lease).await?;
            return Ok(false);
        }
        Ok(
            match ctx.store.delete_session(tenant, id, fence, None).await? {
                DeleteOutcome::Deleted => {
                    ctx.changed(tenant, project, id, ChangeReason::Retention);
                    true
                }
                DeleteOutcome::Missing | DeleteOutcome::Fenced => false,
            },
        )
    }
    .await;
    result.unwrap_or_else(|e: crate::SessionError| {
        tracing::warn!(session_id = %id, error = %e, "retention could not delete session");
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(age_days: i64, finished: bool, now: TimestampMs) -> Candidate {
        Candidate {
            id: SessionId::generate(),
            last_activity_ms: now - age_days * DAY_MS,
            finished,
        }
    }

    #[test]
    fn keeps_the_newest_finished_and_drops_the_old_never_the_running() {
        let now = 1_000 * DAY_MS;
        let policy = RetentionPolicy {
            max_sessions: 2,
            max_age_days: 30,
        };
        // Newest first: a running one, three finished, a running old one, an old one.
        let list = vec![
            c(0, false, now),
            c(1, true, now),
            c(2, true, now),
            c(3, true, now),
            c(40, false, now),
            c(41, true, now),
        ];
        let v = victims(&policy, &list, now);
        assert_eq!(v, vec![list[3].id, list[5].id]);
        // Age alone: the old finished one goes even within the count.
        let policy = RetentionPolicy {
            max_sessions: 50,
            max_age_days: 30,
        };
        assert_eq!(victims(&policy, &list, now), vec![list[5].id]);
    }
}
