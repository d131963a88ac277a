//! Routing: where an operation runs. A read is served from the store by this
//! node; a change runs on the session's actor here, is forwarded to the node
//! holding the session's lease, or activates the session here when nobody holds
//! it (the first node asked takes it). The holder side of a forward is here too.

use std::time::Duration;

use sessiond_store::{SessionId, TenantId, now_ms};

use super::Node;
use super::forward::{Envelope, ForwardError, WireError};
use crate::error::{Error, Result};
use crate::ops::{Here, Serve};

/// How often a request may find its session moved (activated elsewhere,
/// passivated, taken over) before the client is told to retry.
const MAX_HOPS: usize = 4;

impl Node {
    /// Runs `op` on session `id` for `tenant`: the one path of every operation, for
    /// every transport (HTTP, WebSocket, and the requests of other nodes).
    pub async fn execute<O: Serve>(
        &self,
        tenant: &TenantId,
        id: SessionId,
        op: O,
    ) -> Result<O::Reply> {
        op.check(&self.config().limits)?;
        if !O::MUTATES {
            return op.serve(Here::store(self, tenant, id)).await;
        }
        let mut op = op;
        for hop in 0..MAX_HOPS {
            if let Some(handle) = self.resident(tenant, id) {
                match self.run_here(tenant, id, &handle, &op).await {
                    Some(answer) => return answer,
                    None => continue,
                }
            }
            let holder = self.backend().leases.owner(tenant, id).await?;
            match holder {
                Some(holder) if holder != *self.id() => {
                    // A forward can be repeated (its answer lost, the holder gone).
                    op.before_forward();
                    let timeout =
                        crate::ops::deadline(self.config(), O::DEADLINE) + Duration::from_secs(1);
                    let args = serde_json::to_string(&op)
                        .map_err(|e| Error::Internal(format!("unserializable {}: {e}", O::NAME)))?;
                    let started = std::time::Instant::now();
                    let forwarded = self
                        .inner
                        .inbox
                        .forwarder
                        .forward(&holder, tenant, id, O::NAME, args, timeout)
                        .await;
                    crate::metrics::forwarded(&forwarded, started.elapsed());
                    match forwarded {
                        Ok(reply) => {
                            return serde_json::from_str(&reply).map_err(|e| {
                                Error::Internal(format!(
                                    "unreadable answer of {holder} to {}: {e}",
                                    O::NAME
                                ))
                            });
                        }
                        Err(ForwardError::Remote(e)) | Err(ForwardError::Bus(e)) => return Err(e),
                        Err(ForwardError::NotHolder) => {
                            // The holder's actor is stopping or starting: give it
                            // a moment before looking again (25, 50, 100 ms).
                            tokio::time::sleep(Duration::from_millis(25 << hop)).await;
                            continue;
                        }
                        Err(ForwardError::NoAnswer) => {
                            // Dead or frozen: once its lease runs out, the next look
                            // finds the session free and takes it.
                            let still_held = self.backend().leases.owner(tenant, id).await?
                                == Some(holder.clone());
                            if still_held && !op.retry_safe() {
                                // It may have been applied: a "retry" answer would
                                // invite a second reset, compact or delete.
                                return Err(Error::Timeout(format!(
                                    "node {holder} holds session {id} and did not answer: the {} may or may not have been applied; look at the session before retrying",
                                    O::NAME
                                )));
                            }
                            if still_held {
                                return Err(Error::Unavailable(format!(
                                    "node {holder} holds session {id} and did not answer; retry (its lease expires within {} s if it is gone)",
                                    self.config().session.lease_ttl.as_secs().max(1)
                                )));
                            }
                            // The holder may have run it before it went: only a
                            // request that may run twice is sent on.
                            if !op.retry_safe() {
                                return Err(Error::Timeout(format!(
                                    "node {holder} did not answer and session {id} has moved since: the {} may or may not have been applied; look at the session before retrying",
                                    O::NAME
                                )));
                            }
                        }
                    }
                }
                _ => {
                    // A stopping node refuses to activate (in `session`).
                    match self.session(tenant, id).await {
                        Ok(handle) => match self.run_here(tenant, id, &handle, &op).await {
                            Some(answer) => return answer,
                            None => continue,
                        },
                        Err(Error::Unavailable(m)) => {
                            // Another node won the race for the lease: forward to it.
                            match self.backend().leases.owner(tenant, id).await? {
                                Some(other) if other != *self.id() => continue,
                                _ => return Err(Error::Unavailable(m)),
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(Error::Unavailable(format!(
            "session {id} kept moving between nodes; retry"
        )))
    }

    /// Runs `op` on the session's actor here; `None` when the actor stopped before
    /// it saw the request (passivated, restarted, stopping): the caller looks again.
    async fn run_here<O: Serve>(
        &self,
        tenant: &TenantId,
        id: SessionId,
        handle: &sessiond_actors::SessionHandle,
        op: &O,
    ) -> Option<Result<O::Reply>> {
        match op
            .clone()
            .serve(Here::actor(self, tenant, id, handle))
            .await
        {
            Err(Error::Unavailable(_)) if !handle.is_alive() => None,
            answer => Some(answer),
        }
    }

    /// Answers one forwarded request: only a resident session is served (the
    /// caller looked at the lease; if the session left, it looks again).
    pub(super) async fn serve_forwarded(&self, envelope: Envelope) {
        let Envelope::Request {
            id,
            from,
            tenant,
            session,
            op,
            args,
            deadline_ms,
        } = envelope
        else {
            return;
        };
        if now_ms() > deadline_ms {
            return;
        }
        let result = self.run_forwarded(&tenant, session, &op, &args).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if e.is_not_holder() => "not_holder",
            Err(_) => "error",
        };
        metrics::counter!("sessiond_forwards_served_total", "outcome" => outcome).increment(1);
        let answer = Envelope::Response { id, result };
        if let Err(e) = self.inner.inbox.forwarder.publish(&from, &answer).await {
            tracing::warn!(to = %from, error = %e, "forwarded answer not sent");
        }
    }

    async fn run_forwarded(
        &self,
        tenant: &TenantId,
        session: SessionId,
        op: &str,
        args: &str,
    ) -> std::result::Result<String, WireError> {
        let Some(operation) = crate::ops::by_name(op) else {
            // A newer node's operation: the caller gets a clear refusal.
            return Err(WireError::from(&Error::InvalidRequest(format!(
                "operation '{op}' is not known to the node holding the session; upgrade it"
            ))));
        };
        let handle = match self.resident(tenant, session) {
            Some(handle) => Some(handle),
            // Not resident, yet this node may hold the lease: an actor still
            // starting, or being restarted by its supervisor after a crash. Served
            // as a local request would be.
            None => match self.backend().leases.owner(tenant, session).await {
                Ok(Some(owner)) if owner == *self.id() => self.session(tenant, session).await.ok(),
                _ => None,
            },
        };
        let Some(handle) = handle else {
            return Err(WireError::not_holder(self.id()));
        };
        let here = Here::actor(self, tenant, session, &handle);
        operation
            .run_forwarded(here, args)
            .await
            .map_err(|e| match e {
                Error::Unavailable(_) if !handle.is_alive() => WireError::not_holder(self.id()),
                e => WireError::from(&e),
            })
    }
}
