//! `EventBus` on Redis sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7.0 or newer) for
//! every channel: session channels share their session's slot; project channels
//! and node inboxes have the slot of their name. On a cluster a payload goes to the
//! shard that owns the slot only (PUBLISH would be broadcast to every master).
//!
//! One RESP3 connection of the node carries every subscription; its push messages
//! are routed by channel name to a [`Fanout`], so a node holds one upstream
//! subscription per channel however many local readers it has. When the connection
//! drops, readers get `Reset` at once, and again once every channel is subscribed
//! anew (what was published in between is lost: readers re-read the store).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, RedisResult, Value};
use tokio::sync::{Notify, mpsc};

use super::conn::Conn;
use crate::error::Result;
use crate::event_bus::{BusSignal, BusSubscription, Channel, EventBus};
use crate::fanout::Fanout;

/// The bus of a Redis backend.
pub(super) struct RedisBus {
    inner: Arc<BusInner>,
}

/// The connection that holds the node's subscriptions (and only them). Either kind
/// subscribes its channels again by itself after a reconnect.
pub(super) enum Subs {
    /// A `ConnectionManager` with a push sender and automatic resubscription.
    Single(ConnectionManager),
    /// A cluster connection with a push sender: each channel lives on the node that
    /// owns its slot.
    Cluster(ClusterConnection),
}

impl Subs {
    async fn subscribe(&self, channel: &Channel) -> RedisResult<()> {
        let name = channel.as_str();
        match self {
            // ConnectionManager has no ssubscribe(); one SSUBSCRIBE with one channel
            // is answered by one confirmation, which the connection takes as its
            // reply (and records, so the manager resubscribes it after a reconnect).
            Self::Single(m) => {
                redis::cmd("SSUBSCRIBE")
                    .arg(name)
                    .exec_async(&mut m.clone())
                    .await
            }
            Self::Cluster(c) => c.clone().ssubscribe(name).await,
        }
    }

    async fn unsubscribe(&self, channel: &Channel) -> RedisResult<()> {
        let name = channel.as_str();
        match self {
            Self::Single(m) => {
                redis::cmd("SUNSUBSCRIBE")
                    .arg(name)
                    .exec_async(&mut m.clone())
                    .await
            }
            Self::Cluster(c) => c.clone().sunsubscribe(name).await,
        }
    }
}

struct BusInner {
    subs: Subs,
    /// Publishes share the command connection.
    conn: Conn,
    fanout: Fanout,
    /// Channel names as Redis sends them -> subscribed channels.
    names: Mutex<HashMap<Vec<u8>, Channel>>,
    /// Serialises (un)subscribe commands, so an unsubscribe decided on an empty
    /// channel never undoes a subscribe that came after it.
    lock: tokio::sync::Mutex<()>,
    runtime: tokio::runtime::Handle,
}

impl RedisBus {
    /// A bus on `subs`, whose push messages arrive on `pushes`; publishes go
    /// through `conn`. Starts routing the pushes.
    pub(super) fn new(subs: Subs, pushes: mpsc::UnboundedReceiver<PushInfo>, conn: Conn) -> Self {
        let runtime = tokio::runtime::Handle::current();
        let inner = Arc::new_cyclic(|bus: &Weak<BusInner>| {
            let bus = bus.clone();
            let on_empty = Arc::new(move |channel: Channel| {
                if let Some(inner) = bus.upgrade() {
                    inner
                        .runtime
                        .clone()
                        .spawn(async move { inner.unsubscribe(channel).await });
                }
            });
            BusInner {
                subs,
                conn,
                fanout: Fanout::new(Some(on_empty)),
                names: Mutex::default(),
                lock: tokio::sync::Mutex::new(()),
                runtime,
            }
        });
        tokio::spawn(route_pushes(Arc::downgrade(&inner), pushes));
        Self { inner }
    }
}

impl BusInner {
    async fn subscribe(&self, channel: &Channel) -> Result<()> {
        let _serial = self.lock.lock().await;
        self.names
            .lock()
            .expect("bus names lock")
            .insert(channel.as_str().as_bytes().to_vec(), channel.clone());
        Ok(self.subs.subscribe(channel).await?)
    }

    /// Drops the upstream subscription of a channel whose last reader left, unless a
    /// reader came back meanwhile.
    async fn unsubscribe(&self, channel: Channel) {
        let _serial = self.lock.lock().await;
        if self.fanout.has_readers(&channel) {
            return;
        }
        self.names
            .lock()
            .expect("bus names lock")
            .remove(channel.as_str().as_bytes());
        if let Err(e) = self.subs.unsubscribe(&channel).await {
            // Harmless: payloads of a channel with no reader are dropped.
            tracing::warn!(channel = %channel, error = %e, "redis unsubscribe failed");
        }
    }

    /// Subscribes every channel with readers again (the manager does too, but does
    /// not say when it is done, nor whether it worked).
    async fn resubscribe_all(&self) -> Result<()> {
        let _serial = self.lock.lock().await;
        let channels = self.fanout.channels();
        futures::future::try_join_all(channels.iter().map(|c| self.subs.subscribe(c))).await?;
        Ok(())
    }

    /// The channel an unsubscribe push names, when this node still has it
    /// subscribed (its own unsubscribes forget the name before they are sent).
    fn still_wanted(&self, data: &[Value]) -> Option<Channel> {
        let Some(Value::BulkString(name)) = data.first() else {
            return None;
        };
        self.names
            .lock()
            .expect("bus names lock")
            .get(name)
            .cloned()
    }

    /// Subscribes one channel again after the server dropped it, unless its
    /// readers left meanwhile.
    async fn resubscribe_one(&self, channel: &Channel) -> Result<()> {
        let _serial = self.lock.lock().await;
        if self.fanout.has_readers(channel) {
            self.subs.subscribe(channel).await?;
        }
        Ok(())
    }

    fn deliver(&self, data: Vec<Value>) {
        let mut data = data.into_iter();
        let (Some(Value::BulkString(name)), Some(Value::BulkString(payload))) =
            (data.next(), data.next())
        else {
            return;
        };
        let channel = self
            .names
            .lock()
            .expect("bus names lock")
            .get(&name)
            .cloned();
        if let Some(channel) = channel {
            self.fanout
                .deliver(&channel, BusSignal::Payload(Bytes::from(payload)));
        }
    }
}

/// Routes the subscription connection's pushes until the bus is gone. Recovery from
/// a disconnection runs beside it, so the other nodes of a cluster keep delivering.
async fn route_pushes(bus: Weak<BusInner>, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
    let wake = Arc::new(Notify::new());
    tokio::spawn(recovery(bus.clone(), wake.clone()));
    while let Some(push) = pushes.recv().await {
        let Some(inner) = bus.upgrade() else {
            break;
        };
        match push.kind {
            PushKind::Message | PushKind::SMessage => inner.deliver(push.data),
            PushKind::Disconnection => {
                inner.fanout.reset_all();
                wake.notify_one();
            }
            // The server dropped a sharded subscription without a disconnection:
            // its slot moved to another master (resharding, failover). The client
            // forgets it too, so no reconnection would bring it back.
            PushKind::SUnsubscribe => {
                if let Some(channel) = inner.still_wanted(&push.data) {
                    tokio::spawn(resubscribe(Arc::downgrade(&inner), channel));
                }
            }
            _ => {}
        }
    }
    // The bus is gone: the recovery task sees it and ends.
    wake.notify_one();
}

/// Pauses between attempts to subscribe again: 100 ms doubling to 2 s, for as long
/// as the bus lives.
const RESUBSCRIBE_BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_max_delay(Duration::from_secs(2))
    .without_max_times();

/// After the server dropped one sharded subscription: subscribe it again (where
/// its slot lives now), retrying while the cluster settles, then tell its readers
/// to re-read the store, since payloads published meanwhile are lost.
async fn resubscribe(bus: Weak<BusInner>, channel: Channel) {
    // Each attempt holds the bus only while it runs, so a bus dropped meanwhile
    // ends the retries (`Ok`) instead of being kept alive by them.
    let attempt = || async {
        let Some(inner) = bus.upgrade() else {
            return Ok(());
        };
        inner.resubscribe_one(&channel).await?;
        inner.fanout.deliver(&channel, BusSignal::Reset);
        tracing::info!(channel = %channel, "redis dropped a subscription (slot moved); subscribed again");
        Ok(())
    };
    // No attempt limit: this ends with a subscription or with the bus.
    let _: Result<()> = attempt
        .retry(RESUBSCRIBE_BACKOFF)
        .sleep(tokio::time::sleep)
        .notify(|e, _| {
            tracing::warn!(channel = %channel, error = %e, "redis bus cannot subscribe a moved channel yet");
        })
        .await;
}

/// After each disconnection: subscribe every channel again (waiting for the
/// reconnection, retrying while the server is away), then tell every reader to
/// re-read the store, since payloads published before this point may be lost.
async fn recovery(bus: Weak<BusInner>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        // `Ok(false)`: the bus is gone, and so is the need to recover it. Each
        // attempt holds the bus only while it runs.
        let attempt = || async {
            let Some(inner) = bus.upgrade() else {
                return Ok(false);
            };
            inner.resubscribe_all().await?;
            inner.fanout.reset_all();
            tracing::info!("redis bus subscriptions restored");
            Ok(true)
        };
        // No attempt limit: this ends with the subscriptions back or with the bus.
        let restored: Result<bool> = attempt
            .retry(RESUBSCRIBE_BACKOFF)
            .sleep(tokio::time::sleep)
            .notify(|e, _| tracing::warn!(error = %e, "redis bus cannot resubscribe yet"))
            .await;
        if let Ok(false) = restored {
            return;
        }
    }
}

impl RedisBus {
    /// SPUBLISH of each payload, in one pipeline.
    async fn pipeline(&self, payloads: &[(&Channel, &Bytes)]) -> Result<()> {
        let mut pipe = redis::pipe();
        for (channel, payload) in payloads {
            pipe.cmd("SPUBLISH")
                .arg(channel.as_str())
                .arg(payload.as_ref())
                .ignore();
        }
        pipe.exec_async(&mut self.inner.conn.clone()).await?;
        Ok(())
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, channel: &Channel, payload: Bytes) -> Result<()> {
        redis::cmd("SPUBLISH")
            .arg(channel.as_str())
            .arg(payload.as_ref())
            .exec_async(&mut self.inner.conn.clone())
            .await?;
        Ok(())
    }

    async fn publish_batch(&self, batch: &[(Channel, Bytes)]) -> Result<()> {
        match &self.inner.conn {
            // One pipeline, one round trip, in order.
            Conn::Single(_) => {
                let payloads: Vec<_> = batch.iter().map(|(c, p)| (c, p)).collect();
                self.pipeline(&payloads).await
            }
            // A cluster pipeline goes to one master, but each channel lives on its
            // slot's: one pipeline per channel (in order), the channels at once. A
            // channel that fails does not stop the others.
            Conn::Cluster(_) => {
                let mut by_channel: Vec<Vec<(&Channel, &Bytes)>> = Vec::new();
                for (channel, payload) in batch {
                    match by_channel.iter_mut().find(|g| g[0].0 == channel) {
                        Some(group) => group.push((channel, payload)),
                        None => by_channel.push(vec![(channel, payload)]),
                    }
                }
                let results =
                    futures::future::join_all(by_channel.iter().map(|group| self.pipeline(group)))
                        .await;
                results.into_iter().collect()
            }
        }
    }

    async fn subscribe(&self, channel: &Channel) -> Result<BusSubscription> {
        let inner = self.inner.clone();
        self.inner
            .fanout
            .subscribe(channel, || async move { inner.subscribe(channel).await })
            .await
    }
}
