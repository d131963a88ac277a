//! Per-channel fan-out shared by the bus backends: one broadcast queue per channel,
//! reference-counted by its subscriptions, so a node holds one upstream subscription
//! per channel however many local readers it has.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{OnceCell, broadcast};

use crate::error::Result;
use crate::event_bus::{BusSignal, BusSubscription, Channel};

/// How many signals a channel buffers for its slowest reader before that reader
/// is told `Reset` (it then re-reads the store).
pub const CHANNEL_CAPACITY: usize = 1024;

struct Entry {
    tx: broadcast::Sender<BusSignal>,
    // Set once the upstream subscription is live; readers wait for it.
    ready: Arc<OnceCell<()>>,
}

type OnEmpty = Arc<dyn Fn(Channel) + Send + Sync>;

/// Channel -> local readers.
#[derive(Clone)]
pub struct Fanout {
    channels: Arc<Mutex<HashMap<Channel, Entry>>>,
    on_empty: Option<OnEmpty>,
}

impl Default for Fanout {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Fanout {
    /// A fan-out; `on_empty` runs when the last reader of a channel leaves (the
    /// backend drops its upstream subscription there).
    pub fn new(on_empty: Option<OnEmpty>) -> Self {
        Self {
            channels: Arc::default(),
            on_empty,
        }
    }

    /// Adds a reader. `go_live` makes the upstream subscription live; it runs once per
    /// channel (again after a failure) and every reader waits for it.
    pub async fn subscribe<F, Fut>(&self, channel: &Channel, go_live: F) -> Result<BusSubscription>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let (rx, ready) = {
            let mut map = self.channels.lock().expect("fanout lock");
            let entry = map.entry(channel.clone()).or_insert_with(|| Entry {
                tx: broadcast::channel(CHANNEL_CAPACITY).0,
                ready: Arc::new(OnceCell::new()),
            });
            (entry.tx.subscribe(), entry.ready.clone())
        };
        let guard = ReaderGuard {
            fanout: self.clone(),
            channel: channel.clone(),
        };
        if let Err(e) = ready.get_or_try_init(go_live).await {
            // The receiver must go before the guard counts the channel's readers.
            drop(rx);
            drop(guard);
            return Err(e);
        }
        Ok(BusSubscription::new(rx, Some(Box::new(guard))))
    }

    /// Hands a signal to the channel's readers (none: dropped, as pub/sub does).
    pub fn deliver(&self, channel: &Channel, signal: BusSignal) {
        let map = self.channels.lock().expect("fanout lock");
        if let Some(entry) = map.get(channel) {
            let _ = entry.tx.send(signal);
        }
    }

    /// Tells every reader it may have missed payloads (upstream reconnected).
    pub fn reset_all(&self) {
        let map = self.channels.lock().expect("fanout lock");
        for entry in map.values() {
            let _ = entry.tx.send(BusSignal::Reset);
        }
    }

    /// Channels with at least one reader.
    pub fn channels(&self) -> Vec<Channel> {
        self.channels
            .lock()
            .expect("fanout lock")
            .keys()
            .cloned()
            .collect()
    }

    fn reader_left(&self, channel: &Channel) {
        let emptied = {
            let mut map = self.channels.lock().expect("fanout lock");
            match map.get(channel) {
                Some(e) if e.tx.receiver_count() == 0 => {
                    map.remove(channel);
                    true
                }
                _ => false,
            }
        };
        if emptied && let Some(f) = &self.on_empty {
            f(channel.clone());
        }
    }

    /// Whether the channel still has readers (a backend checks before unsubscribing,
    /// as a new reader may have come since `on_empty` was called).
    pub fn has_readers(&self, channel: &Channel) -> bool {
        self.channels
            .lock()
            .expect("fanout lock")
            .contains_key(channel)
    }
}

// Dropped after the subscription's receiver (field order), so the count is current.
struct ReaderGuard {
    fanout: Fanout,
    channel: Channel,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        self.fanout.reader_left(&self.channel);
    }
}

/// The bus of a single process (memory and sqlite backends): publish goes straight
/// to the local readers.
#[derive(Clone, Default)]
pub struct LocalBus {
    fanout: Fanout,
}

#[async_trait::async_trait]
impl crate::event_bus::EventBus for LocalBus {
    async fn publish(&self, channel: &Channel, payload: bytes::Bytes) -> Result<()> {
        self.fanout.deliver(channel, BusSignal::Payload(payload));
        Ok(())
    }

    async fn subscribe(&self, channel: &Channel) -> Result<BusSubscription> {
        self.fanout.subscribe(channel, || async { Ok(()) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_bus::EventBus;
    use crate::ids::{SessionId, TenantId};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn readers_share_one_upstream_and_last_one_out_unsubscribes() {
        let emptied = Arc::new(AtomicUsize::new(0));
        let e2 = emptied.clone();
        let fanout = Fanout::new(Some(Arc::new(move |_| {
            e2.fetch_add(1, Ordering::SeqCst);
        })));
        let ch = Channel::session(&TenantId::new("t").unwrap(), SessionId::generate());
        let upstream = Arc::new(AtomicUsize::new(0));
        let go = || {
            let u = upstream.clone();
            move || async move {
                u.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        };
        let mut a = fanout.subscribe(&ch, go()).await.unwrap();
        let mut b = fanout.subscribe(&ch, go()).await.unwrap();
        assert_eq!(upstream.load(Ordering::SeqCst), 1);
        fanout.deliver(&ch, BusSignal::Payload("x".into()));
        assert_eq!(a.recv().await, Some(BusSignal::Payload("x".into())));
        assert_eq!(b.recv().await, Some(BusSignal::Payload("x".into())));
        drop(a);
        assert_eq!(emptied.load(Ordering::SeqCst), 0);
        drop(b);
        assert_eq!(emptied.load(Ordering::SeqCst), 1);
        assert!(!fanout.has_readers(&ch));
    }

    #[tokio::test]
    async fn a_lagging_reader_is_told_to_reset() {
        let bus = LocalBus::default();
        let ch = Channel::project(&TenantId::new("t").unwrap(), &"p".parse().unwrap());
        let mut sub = bus.subscribe(&ch).await.unwrap();
        for i in 0..(CHANNEL_CAPACITY + 5) {
            bus.publish(&ch, bytes::Bytes::from(i.to_string()))
                .await
                .unwrap();
        }
        assert_eq!(sub.recv().await, Some(BusSignal::Reset));
    }
}
