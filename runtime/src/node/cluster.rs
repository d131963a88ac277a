//! Many nodes on one store: where a command runs (here, or forwarded to the node
//! holding the session), the node's inbox, heartbeats, and the recovery sweep that
//! takes over the sessions of a dead node.

use std::sync::Weak;
use std::time::Duration;

use sessiond_actors::SessionError;
use sessiond_store::{NodeRecord, SessionId, TenantId, now_ms};
use tokio_util::sync::CancellationToken;

use super::command::{Command, Reply};
use super::forward::{Envelope, ForwardError, WireError, decode};
use super::{Inner, Node};
use crate::error::{Error, Result};

/// How often a command may find its session moved (activated elsewhere, passivated,
/// taken over) before the client is told to retry.
const MAX_HOPS: usize = 4;

impl Node {
    /// Runs `command` where the session lives: on its resident actor here, on the
    /// node holding its lease (forwarded), or here after activating it (nobody
    /// holds it: the first node asked takes it).
    pub(crate) async fn dispatch(
        &self,
        tenant: &TenantId,
        id: SessionId,
        command: Command,
    ) -> Result<Reply> {
        let mut command = command;
        for hop in 0..MAX_HOPS {
            if let Some(handle) = self.resident(tenant, id) {
                match self.run_local(&handle, tenant, id, &command).await {
                    // It stopped before it saw the command: look again.
                    Err(Error::Unavailable(_)) if !handle.is_alive() => continue,
                    other => return other,
                }
            }
            let holder = self.backend().leases.owner(tenant, id).await?;
            match holder {
                Some(holder) if holder != *self.id() => {
                    // A forward can be repeated (its answer lost, the holder gone).
                    command.ensure_key();
                    let timeout = self.forward_timeout(&command);
                    let started = std::time::Instant::now();
                    let forwarded = self
                        .inner
                        .forwarder
                        .forward(&holder, tenant, id, command.clone(), timeout)
                        .await;
                    crate::metrics::forwarded(&forwarded, started.elapsed());
                    match forwarded {
                        Ok(reply) => return Ok(reply),
                        Err(ForwardError::Remote(e)) => return Err(e),
                        Err(ForwardError::Bus(e)) => return Err(e),
                        Err(ForwardError::NotHolder) => {
                            // The holder's actor is stopping or starting: give it
                            // a moment before looking again (25, 50, 100 ms).
                            tokio::time::sleep(Duration::from_millis(25 << hop)).await;
                            continue;
                        }
                        Err(ForwardError::NoAnswer) => {
                            // Dead or frozen: once its lease runs out, the next look
                            // finds the session free and takes it.
                            if self.backend().leases.owner(tenant, id).await?
                                == Some(holder.clone())
                            {
                                return Err(Error::Unavailable(format!(
                                    "node {holder} holds session {id} and did not answer; retry (its lease expires within {} s if it is gone)",
                                    self.config().session.lease_ttl.as_secs().max(1)
                                )));
                            }
                            // The holder may have run it before it went: only a
                            // command that may run twice is sent on.
                            if !command.repeatable() {
                                return Err(Error::Timeout(format!(
                                    "node {holder} did not answer and session {id} has moved since: the {} may or may not have been applied; look at the session before retrying",
                                    command.name()
                                )));
                            }
                        }
                    }
                }
                _ => {
                    // A stopping node refuses to activate (in `session`).
                    match self.session(tenant, id).await {
                        Ok(handle) => match self.run_local(&handle, tenant, id, &command).await {
                            Err(Error::Unavailable(_)) if !handle.is_alive() => continue,
                            other => return other,
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

    /// Runs a command on a resident actor (and, for a permission answer, its driver).
    async fn run_local(
        &self,
        handle: &sessiond_actors::SessionHandle,
        tenant: &TenantId,
        id: SessionId,
        command: &Command,
    ) -> Result<Reply> {
        if let Command::AnswerPermission { request_id, answer } = command {
            self.answer_permission_here(tenant, id, request_id, answer.clone())
                .await?;
            return Ok(Reply::Done);
        }
        match command.run(handle).await {
            Ok(reply) => {
                if matches!(command, Command::Delete { .. }) {
                    self.forget_resident(tenant, id);
                }
                Ok(reply)
            }
            Err(SessionError::Stopped(m)) => Err(Error::Unavailable(m)),
            Err(e) => Err(e.into()),
        }
    }

    /// How long a forward waits: the holder's own deadline for the command, plus a
    /// margin for the trip.
    fn forward_timeout(&self, command: &Command) -> Duration {
        let s = &self.config().session;
        let own = match command {
            Command::Steer { .. } | Command::Reset => s.call_timeout + s.steer_deadline,
            Command::Abort { .. } => s.call_timeout + s.abort_grace,
            _ => s.call_timeout,
        };
        own + Duration::from_secs(1)
    }

    /// Answers one forwarded request: only a resident session is served (the
    /// caller looked at the lease; if the session left, it looks again).
    async fn serve_forwarded(&self, envelope: Envelope) {
        let Envelope::Request {
            id,
            from,
            tenant,
            session,
            command,
            deadline_ms,
        } = envelope
        else {
            return;
        };
        if now_ms() > deadline_ms {
            return;
        }
        let handle = match self.resident(&tenant, session) {
            Some(handle) => Some(handle),
            // Not in the map, yet this node may hold the lease: an actor its
            // supervisor restarted after a crash (the map still has the dead
            // handle). Served as a local request would be.
            None => match self.backend().leases.owner(&tenant, session).await {
                Ok(Some(owner)) if owner == *self.id() => self.session(&tenant, session).await.ok(),
                _ => None,
            },
        };
        let result = match handle {
            Some(handle) => self
                .run_local(&handle, &tenant, session, &command)
                .await
                .map_err(|e| match e {
                    Error::Unavailable(_) if !handle.is_alive() => WireError::not_holder(self.id()),
                    e => WireError::from(&e),
                }),
            None => Err(WireError::not_holder(self.id())),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if e.is_not_holder() => "not_holder",
            Err(_) => "error",
        };
        metrics::counter!("sessiond_forwards_served_total", "outcome" => outcome).increment(1);
        let answer = Envelope::Response { id, result };
        if let Err(e) = self.inner.forwarder.publish(&from, &answer).await {
            tracing::warn!(to = %from, error = %e, "forwarded answer not sent");
        }
    }

    /// The live peers (heartbeat not expired), this node excluded.
    pub async fn peers(&self) -> Result<Vec<NodeRecord>> {
        let now = now_ms();
        Ok(self
            .backend()
            .nodes
            .nodes()
            .await?
            .into_iter()
            .filter(|n| n.id != *self.id() && n.expires_at_ms > now)
            .collect())
    }

    /// Takes over the sessions held by `dead` (a node whose heartbeat ran out, or
    /// this node's previous life): each one is activated here, which restores it
    /// (a lost run is marked interrupted, queued prompts run). Returns whether every
    /// one is accounted for (taken, held by another live node, or gone).
    async fn recover_from(&self, dead: &sessiond_store::NodeId) -> Result<bool> {
        let held = self.backend().nodes.held(dead).await?;
        let mut done = true;
        for (tenant, id) in held {
            if self.resident(&tenant, id).is_some() {
                continue;
            }
            match self.backend().leases.owner(&tenant, id).await? {
                // Its lease has not run out yet: next sweep. (This node's own
                // lease from a previous life it can take back at once.)
                Some(owner) if owner == *dead && owner != *self.id() => {
                    done = false;
                    continue;
                }
                // Another live node has it (or this one, in a previous life's
                // lease that it can take back).
                Some(owner) if owner != *self.id() => {}
                _ => {
                    // Activation returns once the actor exists; its start (lease,
                    // restore) may still fail: ask it something to know.
                    let started = match self.session(&tenant, id).await {
                        Ok(h) => h.meta().await.map(|_| ()).map_err(Error::from),
                        Err(e) => Err(e),
                    };
                    match started {
                        Ok(()) => {
                            metrics::counter!("sessiond_recovered_sessions_total").increment(1);
                            tracing::info!(session_id = %id, from = %dead, "session taken over");
                            // Taken back from this node's previous life: it is held
                            // here again (listed by its start), so it stays listed.
                            if dead == self.id() {
                                continue;
                            }
                        }
                        Err(Error::NotFound(_)) => {}
                        Err(e) => {
                            tracing::debug!(session_id = %id, error = %e, "takeover deferred");
                            done = false;
                            continue;
                        }
                    }
                }
            }
            if let Err(e) = self.backend().nodes.remove_held(dead, &tenant, id).await {
                tracing::debug!(session_id = %id, error = %e, "held list not updated");
            }
        }
        Ok(done)
    }
}

/// Heartbeats every third of the lease TTL until the node stops.
pub(super) async fn heartbeat(node: Weak<Inner>, stop: CancellationToken) {
    loop {
        let Some(inner) = node.upgrade() else { return };
        let n = Node { inner };
        let ttl = n.config().session.lease_ttl;
        let record = NodeRecord {
            id: n.id().clone(),
            advertise: n.config().advertise.clone(),
            started_at_ms: n.inner.started_at_ms,
            expires_at_ms: now_ms() + ttl.as_millis() as i64,
        };
        match n.backend().nodes.heartbeat(&record).await {
            Ok(()) => tracing::trace!(expires_at_ms = record.expires_at_ms, "heartbeat"),
            Err(e) => {
                metrics::counter!("sessiond_heartbeat_failures_total").increment(1);
                tracing::warn!(error = %e, "heartbeat failed")
            }
        }
        drop(n);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep((ttl / 3).max(Duration::from_millis(100))) => {}
        }
    }
}

/// Every `recovery_interval`: takes over the sessions of dead nodes (and, once at
/// start, those this node held in its previous life).
pub(super) async fn recovery_sweep(node: Weak<Inner>, stop: CancellationToken) {
    // This node's previous life's sessions: taken back at start, and again each
    // sweep until every one is accounted for (an activation can fail, and no
    // other node takes the sessions of a node that is alive).
    let mut own_pending = true;
    loop {
        let Some(inner) = node.upgrade() else { return };
        let n = Node { inner };
        let interval = n.config().recovery_interval;
        if own_pending && !n.is_draining() {
            match n.recover_from(&n.id().clone()).await {
                Ok(done) => own_pending = !done,
                Err(e) => tracing::warn!(error = %e, "recovery of this node's own sessions failed"),
            }
        }
        if !n.is_draining() {
            match n.backend().nodes.nodes().await {
                Ok(nodes) => {
                    let now = now_ms();
                    for dead in nodes
                        .iter()
                        .filter(|r| r.expires_at_ms <= now && r.id != *n.id())
                    {
                        match n.recover_from(&dead.id).await {
                            Ok(true) => {
                                tracing::info!(node = %dead.id, "dead node's sessions all taken over");
                                if let Err(e) = n.backend().nodes.remove_node(&dead.id).await {
                                    tracing::debug!(node = %dead.id, error = %e, "dead node not forgotten");
                                }
                            }
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(node = %dead.id, error = %e, "recovery failed")
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "recovery sweep cannot list nodes"),
            }
        }
        drop(n);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Keeps this node's inbox subscribed while the node runs: a subscription that
/// cannot be made or that ends (the bus closed it) is made again, with backoff,
/// rather than leaving the node deaf to forwards while it holds sessions.
pub(super) async fn keep_inbox(
    node: Weak<Inner>,
    forwarder: super::forward::Forwarder,
    stop: CancellationToken,
) {
    let mut pause = Duration::from_millis(100);
    loop {
        match forwarder.subscribe().await {
            Ok(sub) => {
                pause = Duration::from_millis(100);
                inbox(node.clone(), sub, stop.clone()).await;
                if stop.is_cancelled() || node.strong_count() == 0 {
                    return;
                }
                tracing::warn!("this node's inbox subscription ended; subscribing again");
            }
            Err(e) => tracing::error!(
                error = %e,
                "cannot subscribe to this node's inbox (forwards to it time out meanwhile); retrying"
            ),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Serves this node's inbox: forwarded requests (each on its own task) and the
/// answers to this node's forwards.
pub(super) async fn inbox(
    node: Weak<Inner>,
    mut sub: sessiond_store::BusSubscription,
    stop: CancellationToken,
) {
    loop {
        let signal = tokio::select! {
            () = stop.cancelled() => return,
            s = sub.recv() => match s {
                Some(s) => s,
                None => return,
            },
        };
        let Some(envelope) = decode(signal) else {
            continue;
        };
        let Some(inner) = node.upgrade() else { return };
        let n = Node { inner };
        match envelope {
            Envelope::Response { id, result } => n.inner.forwarder.answered(id, result),
            request @ Envelope::Request { .. } => {
                tokio::spawn(async move { n.serve_forwarded(request).await });
            }
        }
    }
}
