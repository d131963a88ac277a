//! The three backends and the bundle a node runs on.

use std::sync::Arc;

use crate::event_bus::EventBus;
use crate::lease_store::LeaseStore;
use crate::node_registry::NodeRegistry;
use crate::session_store::SessionStore;

pub mod memory;
pub mod redis;
pub mod sqlite;

/// One backend's implementations of every store trait, sharing one connection set.
#[derive(Clone)]
pub struct Backend {
    /// Sessions and transcripts.
    pub sessions: Arc<dyn SessionStore>,
    /// Leases and fences.
    pub leases: Arc<dyn LeaseStore>,
    /// Cross-node notifications.
    pub bus: Arc<dyn EventBus>,
    /// Node heartbeats and the sessions each node holds.
    pub nodes: Arc<dyn NodeRegistry>,
    /// `memory`, `sqlite` or `redis`, for logs and `/v1/node`.
    pub kind: &'static str,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("kind", &self.kind).finish()
    }
}

/// Publishes what a commit made durable, in the order subscribers expect: the new
/// messages, then the status. Used by the in-process backends (the Redis scripts
/// publish from inside the script).
pub(crate) async fn announce_commit(
    bus: &dyn EventBus,
    write: &crate::session_store::SessionWrite,
    fresh: &[crate::records::Message],
    stored_meta: Option<&crate::records::SessionMeta>,
) {
    let channel = crate::event_bus::Channel::session(&write.tenant, write.session);
    let mut events = Vec::with_capacity(2);
    if !fresh.is_empty() {
        events.push(crate::records::BusEvent::Messages {
            messages: fresh.to_vec(),
        });
    }
    if let Some(meta) = stored_meta {
        events.push(crate::records::BusEvent::Status(
            crate::records::StatusChange::of(meta),
        ));
    }
    for ev in events {
        match crate::codec::encode(&ev) {
            // Pub/sub is at-most-once by contract; a failed publish is a missed
            // doorbell that readers recover from the log.
            Ok(bytes) => {
                let _ = bus.publish(&channel, bytes.into()).await;
            }
            Err(e) => tracing::error!(error = %e, "bus event cannot be encoded"),
        }
    }
}
