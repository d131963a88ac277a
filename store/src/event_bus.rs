//! `EventBus`: at-most-once notifications between nodes, a doorbell for readers.

use std::any::Any;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::ids::{ProjectId, SessionId, TenantId};

/// A pub/sub channel name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(String);

impl Channel {
    // Every channel is a sharded channel on Redis (SPUBLISH/SSUBSCRIBE): a cluster
    // delivers it on the one shard that owns its slot instead of broadcasting it to
    // every master, as PUBLISH does.

    /// The channel of one session (same slot as the session's keys, so the append
    /// script publishes from inside the slot).
    pub fn session(tenant: &TenantId, id: SessionId) -> Self {
        Self(format!("sd:{tenant}:s:{{{id}}}:ev"))
    }

    /// The channel of a project's session-level changes (the slot of its name).
    pub fn project(tenant: &TenantId, project: &ProjectId) -> Self {
        Self(format!("sd:{tenant}:p:{project}:ev"))
    }

    /// A node's inbox: commands forwarded to it and replies to its forwards (the
    /// slot of its name).
    pub fn node(node: &crate::ids::NodeId) -> Self {
        Self(format!("sd:node:{node}:rpc"))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusSignal {
    /// One published payload.
    Payload(Bytes),
    /// Payloads may have been missed (the subscriber lagged, or the connection to the
    /// bus was lost and restored): re-read the store.
    Reset,
}

/// A live subscription; dropping it unsubscribes.
pub struct BusSubscription {
    rx: broadcast::Receiver<BusSignal>,
    // Held for its Drop: the backend unsubscribes when the last subscriber leaves.
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

impl BusSubscription {
    /// Wraps a receiver; `guard` is dropped with the subscription.
    pub fn new(
        rx: broadcast::Receiver<BusSignal>,
        guard: Option<Box<dyn Any + Send + Sync>>,
    ) -> Self {
        Self { rx, _guard: guard }
    }

    /// The next signal; a lagging subscriber gets `Reset`. `None` when the bus closed.
    pub async fn recv(&mut self) -> Option<BusSignal> {
        match self.rx.recv().await {
            Ok(s) => Some(s),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(BusSignal::Reset),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl fmt::Debug for BusSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusSubscription").finish_non_exhaustive()
    }
}

/// Publish/subscribe between nodes. At-most-once: payloads can be lost, so readers
/// treat a payload as a doorbell and the store as the truth.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes a payload to every current subscriber of the channel, on any node.
    async fn publish(&self, channel: &Channel, payload: Bytes) -> Result<()>;

    /// Publishes a batch; the payloads of one channel go out in the batch's order.
    /// Backends that can send it in one round trip do; by default, one publish
    /// after another (stopping at the first error).
    async fn publish_batch(&self, batch: &[(Channel, Bytes)]) -> Result<()> {
        for (channel, payload) in batch {
            self.publish(channel, payload.clone()).await?;
        }
        Ok(())
    }

    /// Subscribes to a channel. The subscription is live when this returns.
    async fn subscribe(&self, channel: &Channel) -> Result<BusSubscription>;
}
