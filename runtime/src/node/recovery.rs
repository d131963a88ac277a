//! Recovery: the sweep that takes over the sessions of dead nodes (and, at start,
//! those this node held in its previous life), and the live peers.

use std::sync::Weak;
use std::time::Duration;

use sessiond_store::{NodeRecord, now_ms};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Inner, Node};
use crate::config::Config;
use crate::error::{Error, Result};

/// The recovery part: the sweep that takes over the sessions of dead nodes, every
/// `recovery_interval`.
pub(super) struct Recovery {
    interval: Duration,
}

impl Recovery {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            interval: config.recovery_interval,
        }
    }

    /// Starts the sweep, until `stop`. It activates sessions, so it needs the node
    /// (held weakly between sweeps).
    pub(super) fn start(&self, node: Weak<Inner>, tasks: &TaskTracker, stop: &CancellationToken) {
        tasks.spawn(recovery_sweep(node, self.interval, stop.clone()));
    }
}

impl Node {
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

/// Every `recovery_interval`: takes over the sessions of dead nodes (and, once at
/// start, those this node held in its previous life).
async fn recovery_sweep(node: Weak<Inner>, interval: Duration, stop: CancellationToken) {
    // This node's previous life's sessions: taken back at start, and again each
    // sweep until every one is accounted for (an activation can fail, and no
    // other node takes the sessions of a node that is alive).
    let mut own_pending = true;
    loop {
        let Some(inner) = node.upgrade() else { return };
        let n = Node { inner };
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
