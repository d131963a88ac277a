//! `NodeRegistry`: which nodes are alive (heartbeats) and which sessions each one
//! took, so the survivors of a node's death find its sessions (DESIGN.md §6).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{NodeId, SessionId, TenantId};
use crate::records::{TimestampMs, now_ms};

/// A node as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node.
    pub id: NodeId,
    /// Where clients and peers reach its HTTP API (`--advertise`), if it says.
    #[serde(default)]
    pub advertise: Option<String>,
    /// When it started.
    pub started_at_ms: TimestampMs,
    /// Its heartbeat runs out then; a node past it is dead.
    pub expires_at_ms: TimestampMs,
}

impl NodeRecord {
    /// The record of a node that holds sessions but has not sent a heartbeat yet: no
    /// address, started now, already expired (`expires_at_ms` 0). A survivor that
    /// sees it dead takes its sessions, which is right if it died before its first
    /// heartbeat; its first heartbeat replaces it.
    pub(crate) fn unannounced(id: &NodeId) -> Self {
        Self {
            id: id.clone(),
            advertise: None,
            started_at_ms: now_ms(),
            expires_at_ms: 0,
        }
    }
}

/// Liveness of nodes and the sessions each one holds.
#[async_trait]
pub trait NodeRegistry: Send + Sync + 'static {
    /// Records (or refreshes) a node's heartbeat.
    async fn heartbeat(&self, node: &NodeRecord) -> Result<()>;

    /// Every registered node, dead ones included (until `remove_node`), by id.
    async fn nodes(&self) -> Result<Vec<NodeRecord>>;

    /// Forgets a node: its record and its list of held sessions.
    async fn remove_node(&self, node: &NodeId) -> Result<()>;

    /// Notes that `node` holds a session (on activation); noting it twice is noting it
    /// once. A node with no record yet gets an unannounced one (no address, already
    /// expired) until its first heartbeat, so its sessions are never out of sight.
    async fn add_held(&self, node: &NodeId, tenant: &TenantId, session: SessionId) -> Result<()>;

    /// Notes that `node` let a session go (graceful stop, passivation, delete). A
    /// session it did not hold, or a node with no record, is no error.
    async fn remove_held(&self, node: &NodeId, tenant: &TenantId, session: SessionId)
    -> Result<()>;

    /// The sessions `node` holds, as far as it said, by tenant then session id; none
    /// for a node never seen or removed.
    async fn held(&self, node: &NodeId) -> Result<Vec<(TenantId, SessionId)>>;
}
