//! Liveness: the node's heartbeat in the registry, and the renewal of every lease
//! it holds (a lease that cannot be renewed stops its session at once).

use std::sync::Weak;
use std::time::Duration;

use sessiond_actors::SessionContext;
use sessiond_store::{Backend, NodeRecord, now_ms};
use tokio_util::sync::CancellationToken;

use super::{Inner, Node};

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

/// Renews every lease this node holds, in one batch, every third of the TTL; a lease
/// that cannot be renewed stops its session at once.
pub(super) async fn keep_leases(ctx: SessionContext, backend: Backend, stop: CancellationToken) {
    let ttl = ctx.settings.lease_ttl;
    let mut tick = tokio::time::interval((ttl / 3).max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let leases = ctx.lease_book.leases();
        if leases.is_empty() {
            last_renewed = tokio::time::Instant::now();
            continue;
        }
        match backend.leases.renew(&ctx.node, &leases, ttl).await {
            Ok(held) => {
                last_renewed = tokio::time::Instant::now();
                for (lease, ok) in leases.iter().zip(held) {
                    if !ok {
                        tracing::warn!(session_id = %lease.session, "lease renewal refused");
                        ctx.lease_book.lost(lease);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, leases = leases.len(), "lease renewal failed");
                // Past the TTL another node may own these sessions: stop ours rather
                // than run drivers for sessions we no longer hold (fences keep their
                // writes out anyway).
                if last_renewed.elapsed() >= ttl {
                    tracing::error!(
                        leases = leases.len(),
                        "leases not renewed for a whole TTL, stopping their sessions"
                    );
                    for lease in &leases {
                        ctx.lease_book.lost(lease);
                    }
                }
            }
        }
    }
}
