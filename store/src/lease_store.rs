//! `LeaseStore`: which node runs a session, with a fence token for safety.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{NodeId, SessionId, TenantId};

/// Answer to a lease acquisition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    /// The caller holds the lease; its writes must carry `fence`.
    Granted {
        /// A token larger than every earlier one of this session.
        fence: u64,
    },
    /// Another live node holds it.
    Held {
        /// The holder.
        owner: NodeId,
    },
}

/// A lease to renew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRef {
    /// The session's tenant.
    pub tenant: TenantId,
    /// The session.
    pub session: SessionId,
    /// The fence the lease was granted with.
    pub fence: u64,
}

/// Leases give a session at most one active node (liveness: they expire) and fence
/// tokens make a stale node's writes fail (safety: tokens only grow).
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes the lease unless another node holds a live one. Every grant bumps the
    /// fence, even to the node that held it, so an older incarnation is fenced out.
    async fn acquire(
        &self,
        tenant: &TenantId,
        session: SessionId,
        node: &NodeId,
        ttl: Duration,
    ) -> Result<LeaseGrant>;

    /// Extends leases `node` holds with the given fences, in one round trip; answers,
    /// per lease in order, whether it is still held.
    async fn renew(&self, node: &NodeId, leases: &[LeaseRef], ttl: Duration) -> Result<Vec<bool>>;

    /// Gives a lease up so another node can take it at once. A no-op unless `node`
    /// holds it with `fence`.
    async fn release(&self, node: &NodeId, lease: &LeaseRef) -> Result<()>;

    /// The node holding a live lease on the session.
    async fn owner(&self, tenant: &TenantId, session: SessionId) -> Result<Option<NodeId>>;
}
