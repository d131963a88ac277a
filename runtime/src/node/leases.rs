//! Liveness: the node's heartbeat in the registry, and the renewal of every lease
//! it holds (a lease that cannot be renewed stops its session at once).

use std::sync::Arc;
use std::time::Duration;

use sessiond_actors::LeaseBook;
use sessiond_store::{Backend, LeaseStore, NodeId, NodeRecord, NodeRegistry, now_ms};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;

/// The node's liveness part: its heartbeat and the renewal of the leases in the
/// book. Needs nothing else of the node, so its tasks hold no node.
#[derive(Clone)]
pub(super) struct Leases {
    node: NodeId,
    advertise: Option<String>,
    started_at_ms: i64,
    ttl: Duration,
    book: LeaseBook,
    leases: Arc<dyn LeaseStore>,
    nodes: Arc<dyn NodeRegistry>,
}

impl Leases {
    pub(super) fn new(node: &NodeId, config: &Config, backend: &Backend, book: LeaseBook) -> Self {
        Self {
            node: node.clone(),
            advertise: config.advertise.clone(),
            started_at_ms: now_ms(),
            ttl: config.session.lease_ttl,
            book,
            leases: backend.leases.clone(),
            nodes: backend.nodes.clone(),
        }
    }

    /// Starts the heartbeat and the renewal, until `stop`.
    pub(super) fn start(&self, tasks: &TaskTracker, stop: &CancellationToken) {
        tasks.spawn(self.clone().heartbeat(stop.clone()));
        tasks.spawn(self.clone().keep_leases(stop.clone()));
    }

    /// Both run this often: a third of the TTL.
    fn period(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(100))
    }

    /// Heartbeats every third of the lease TTL until the node stops.
    async fn heartbeat(self, stop: CancellationToken) {
        loop {
            let record = NodeRecord {
                id: self.node.clone(),
                advertise: self.advertise.clone(),
                started_at_ms: self.started_at_ms,
                expires_at_ms: now_ms() + self.ttl.as_millis() as i64,
            };
            match self.nodes.heartbeat(&record).await {
                Ok(()) => tracing::trace!(expires_at_ms = record.expires_at_ms, "heartbeat"),
                Err(e) => {
                    metrics::counter!("sessiond_heartbeat_failures_total").increment(1);
                    tracing::warn!(error = %e, "heartbeat failed")
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.period()) => {}
            }
        }
    }

    /// Renews every lease this node holds, in one batch, every third of the TTL; a
    /// lease that cannot be renewed stops its session at once.
    async fn keep_leases(self, stop: CancellationToken) {
        let ttl = self.ttl;
        let mut tick = tokio::time::interval(self.period());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let leases = self.book.leases();
            if leases.is_empty() {
                last_renewed = tokio::time::Instant::now();
                continue;
            }
            match self.leases.renew(&self.node, &leases, ttl).await {
                Ok(held) => {
                    last_renewed = tokio::time::Instant::now();
                    for (lease, ok) in leases.iter().zip(held) {
                        if !ok {
                            tracing::warn!(session_id = %lease.session, "lease renewal refused");
                            self.book.lost(lease);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, leases = leases.len(), "lease renewal failed");
                    // Past the TTL another node may own these sessions: stop ours
                    // rather than run drivers for sessions we no longer hold (fences
                    // keep their writes out anyway).
                    if last_renewed.elapsed() >= ttl {
                        tracing::error!(
                            leases = leases.len(),
                            "leases not renewed for a whole TTL, stopping their sessions"
                        );
                        for lease in &leases {
                            self.book.lost(lease);
                        }
                    }
                }
            }
        }
    }
}
