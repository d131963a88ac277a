//! The node's notice publisher: project notices (`sessions.changed`, statuses) and
//! session notices no commit carries (a stall), published by one task in the order
//! they were given, in batches.
//!
//! One task keeps a channel's notices in order (a session's `running` never
//! arrives after its `idle`, as it could with a task per notice) and lets a backend
//! send a batch in few round trips (a pipeline on Redis, one per channel on a
//! cluster). Notices are at-most-once by contract: nobody waits on one, a failed
//! batch is logged and dropped, a batch the bus has not taken within 5 s is dropped,
//! and when the bus is too slow for the queue the newest notices are dropped; both
//! are counted (`sessiond_notices_dropped_total`) rather than held without bound.
//!
//! A node starts it with [`Notices::start`], on its task tracker: when the node
//! stops, the task publishes what is queued and ends, even while clones of the
//! sender are still held (a `Node` kept by its caller after the stop).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sessiond_store::{Channel, EventBus};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Notices waiting for the bus. Enough for bursts (every session of a node
/// changing status at once); a bus that cannot keep up loses notices, which
/// readers recover from by re-reading the store.
const QUEUE: usize = 8192;

/// Most notices handed to the bus in one batch.
const BATCH: usize = 256;

/// How long one batch may take; past it the batch is dropped, so a bus that
/// hangs (an unreachable shard) delays notices by this much at most.
const BATCH_DEADLINE: Duration = Duration::from_secs(5);

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct Notices {
    tx: mpsc::Sender<(Channel, Bytes)>,
}

impl Notices {
    /// Starts the publishing task on `bus`, on its own; it ends when every clone is
    /// gone (tests, tools).
    pub fn spawn(bus: Arc<dyn EventBus>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(publish_all(bus, rx, CancellationToken::new()));
        Self { tx }
    }

    /// Starts the publishing task on `bus`, tracked by `tasks`; it ends when `stop`
    /// fires (after publishing the notices queued by then; later ones are not
    /// taken) or when every clone is gone.
    pub fn start(bus: Arc<dyn EventBus>, tasks: &TaskTracker, stop: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tasks.spawn(publish_all(bus, rx, stop));
        Self { tx }
    }

    /// Queues `event` for `channel`, encoded with the store's codec; never waits.
    pub fn publish<T: serde::Serialize>(&self, channel: Channel, event: &T) {
        let bytes = match sessiond_store::codec::encode(event) {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) => {
                tracing::error!(error = %e, "notice cannot be encoded");
                return;
            }
        };
        match self.tx.try_send((channel, bytes)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full((channel, _))) => {
                metrics::counter!("sessiond_notices_dropped_total").increment(1);
                tracing::debug!(
                    channel = channel.as_str(),
                    "notice queue full, notice dropped"
                );
            }
            // The node is stopping: nobody is left to tell.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notices").finish_non_exhaustive()
    }
}

async fn publish_all(
    bus: Arc<dyn EventBus>,
    mut rx: mpsc::Receiver<(Channel, Bytes)>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let got = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            () = stop.cancelled(), if !rx.is_closed() => {
                // Nothing new is taken; what is queued still goes out, then
                // `recv_many` answers 0.
                rx.close();
                continue;
            }
        };
        if got == 0 {
            return;
        }
        match tokio::time::timeout(BATCH_DEADLINE, bus.publish_batch(&batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(notices = batch.len(), error = %e, "notices not published")
            }
            Err(_) => {
                metrics::counter!("sessiond_notices_dropped_total").increment(batch.len() as u64);
                tracing::warn!(
                    notices = batch.len(),
                    "the bus did not take notices in time; dropped"
                );
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use sessiond_store::backend::memory::memory;
    use sessiond_store::{BusSignal, BusSubscription, ProjectId, TenantId};

    use super::*;

    /// A bus whose publishes take 0 to 2 ms, varying from one to the next, like
    /// round trips to a server: publishes started at once finish out of order.
    struct SlowBus {
        inner: Arc<dyn EventBus>,
        calls: AtomicU64,
    }

    #[async_trait]
    impl EventBus for SlowBus {
        async fn publish(&self, channel: &Channel, payload: Bytes) -> sessiond_store::Result<()> {
            let n = self.calls.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_micros((n * 7919) % 2000)).await;
            self.inner.publish(channel, payload).await
        }

        async fn subscribe(&self, channel: &Channel) -> sessiond_store::Result<BusSubscription> {
            self.inner.subscribe(channel).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notices_arrive_in_the_order_given() {
        let b = memory();
        let channel = Channel::project(&TenantId::new("t").unwrap(), &ProjectId::new("p").unwrap());
        let mut sub = b.bus.subscribe(&channel).await.unwrap();
        let bus = Arc::new(SlowBus {
            inner: b.bus.clone(),
            calls: AtomicU64::new(0),
        });
        let notices = Notices::spawn(bus);
        for i in 0..300u32 {
            notices.publish(channel.clone(), &i);
        }
        for want in 0..300u32 {
            let signal = tokio::time::timeout(Duration::from_secs(10), sub.recv())
                .await
                .expect("a notice within 10 s");
            let Some(BusSignal::Payload(p)) = signal else {
                panic!("expected a payload, got {signal:?}");
            };
            let got: u32 = sessiond_store::codec::decode(&p).unwrap();
            assert_eq!(got, want);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_publisher_sends_what_is_queued_and_ends_on_stop() {
        let b = memory();
        let channel = Channel::project(&TenantId::new("t").unwrap(), &ProjectId::new("p").unwrap());
        let mut sub = b.bus.subscribe(&channel).await.unwrap();
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        // Kept to the end: the task must end on the stop, not because its
        // senders are gone.
        let notices = Notices::start(b.bus.clone(), &tasks, stop.clone());
        for i in 0..10u32 {
            notices.publish(channel.clone(), &i);
        }
        stop.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(10), tasks.wait())
            .await
            .expect("the publisher ended on the stop");
        for want in 0..10u32 {
            let Some(BusSignal::Payload(p)) = sub.recv().await else {
                panic!("a notice queued before the stop was dropped");
            };
            assert_eq!(sessiond_store::codec::decode::<u32>(&p).unwrap(), want);
        }
        // Taken by nobody now, and no panic.
        notices.publish(channel.clone(), &99u32);
    }
}
