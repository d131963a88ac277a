//! The node's inbox on the bus: requests forwarded by other nodes (each served on
//! its own task, at most `max_served_forwards` at once) and the answers to this
//! node's forwards. Kept subscribed for the node's life.

use std::sync::{Arc, Weak};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use sessiond_store::{Backend, NodeId, now_ms};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::forward::{Envelope, Forwarder, WireError, decode};
use super::{Inner, Node};
use crate::config::Config;

/// Pauses between attempts to subscribe the inbox: 100 ms doubling to 5 s, for as
/// long as the node runs.
const RESUBSCRIBE_BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_max_delay(Duration::from_secs(5))
    .without_max_times();

/// The pause before subscribing again after a subscription ended, so a bus that
/// ends subscriptions at once is not asked in a tight loop.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(100);

/// How long the inbox waits for the bus to take a "busy" answer: it answers inline
/// (a task per refusal would be the unbounded pile the bound is there to prevent),
/// so a hung bus must not hold the inbox longer.
const BUSY_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// The inbox part: the forwarder (this node's forwards wait on it for their
/// answers, which arrive here) and the bound on forwarded requests served at once.
pub(super) struct Inbox {
    pub(super) forwarder: Forwarder,
    /// One permit per forwarded request being served.
    pub(super) served: Arc<Semaphore>,
}

impl Inbox {
    pub(super) fn new(node: &NodeId, config: &Config, backend: &Backend) -> Self {
        Self {
            forwarder: Forwarder::new(node.clone(), backend.bus.clone()),
            served: Arc::new(Semaphore::new(config.max_served_forwards)),
        }
    }

    /// Keeps the inbox subscribed and served, until `stop`. Serving runs
    /// operations, so it needs the node (held weakly between requests).
    pub(super) fn start(&self, node: Weak<Inner>, tasks: &TaskTracker, stop: &CancellationToken) {
        tasks.spawn(keep_inbox(node, self.forwarder.clone(), stop.clone()));
    }

    /// A permit to serve one more forwarded request, if fewer than the bound are
    /// being served.
    fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.served.clone().try_acquire_owned().ok()
    }
}

/// Keeps this node's inbox subscribed while the node runs: a subscription that
/// cannot be made or that ends (the bus closed it) is made again, with backoff,
/// rather than leaving the node deaf to forwards while it holds sessions.
async fn keep_inbox(node: Weak<Inner>, forwarder: Forwarder, stop: CancellationToken) {
    loop {
        // No attempt limit: this ends with a subscription or with the stop.
        let subscribed = (|| forwarder.subscribe())
            .retry(RESUBSCRIBE_BACKOFF)
            .sleep(tokio::time::sleep)
            .notify(|e, _| {
                tracing::error!(
                    error = %e,
                    "cannot subscribe to this node's inbox (forwards to it time out meanwhile); retrying"
                )
            });
        let sub = tokio::select! {
            () = stop.cancelled() => return,
            sub = subscribed => match sub {
                Ok(sub) => sub,
                // Not reached: retried without limit.
                Err(_) => continue,
            },
        };
        inbox(node.clone(), sub, stop.clone()).await;
        if stop.is_cancelled() || node.strong_count() == 0 {
            return;
        }
        tracing::warn!("this node's inbox subscription ended; subscribing again");
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RESUBSCRIBE_PAUSE) => {}
        }
    }
}

/// Serves this node's inbox: forwarded requests (each on its own task, up to the
/// bound; past it answered `unavailable` at once) and the answers to this node's
/// forwards.
pub(super) async fn inbox(
    node: Weak<Inner>,
    mut sub: sessiond_store::BusSubscription,
    stop: CancellationToken,
) {
    loop {
        let signal = tokio::select! {
            () = stop.cancelled() => return,
            s = sub.recv() => match s {
                Some(s) => s,
                None => return,
            },
        };
        let Some(envelope) = decode(signal) else {
            continue;
        };
        let Some(inner) = node.upgrade() else { return };
        let n = Node { inner };
        match envelope {
            Envelope::Response { id, result } => n.inner.inbox.forwarder.answered(id, result),
            request @ Envelope::Request { .. } => match n.inner.inbox.admit() {
                Some(permit) => {
                    let tasks = n.inner.tasks.clone();
                    tasks.spawn(async move {
                        n.serve_forwarded(request).await;
                        drop(permit);
                    });
                }
                None => n.refuse_busy(request).await,
            },
        }
    }
}

impl Node {
    /// Answers a forwarded request `unavailable` at once: as many as the bound are
    /// being served. The caller retries (or its client does); nothing queues here.
    async fn refuse_busy(&self, request: Envelope) {
        let Envelope::Request {
            id,
            from,
            deadline_ms,
            ..
        } = request
        else {
            return;
        };
        metrics::counter!("sessiond_forwards_served_total", "outcome" => "busy").increment(1);
        if now_ms() > deadline_ms {
            return;
        }
        tracing::debug!(to = %from, "forwarded request refused: too many in flight");
        let answer = Envelope::Response {
            id,
            result: Err(WireError::busy()),
        };
        let forwarder = &self.inner.inbox.forwarder;
        match tokio::time::timeout(BUSY_ANSWER_TIMEOUT, forwarder.publish(&from, &answer)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(to = %from, error = %e, "forwarded answer not sent"),
            Err(_) => tracing::warn!(to = %from, "forwarded answer not sent in time"),
        }
    }
}

#[cfg(test)]
mod tests {
    use sessiond_client::ops::SendPrompt;
    use sessiond_store::ProjectId;

    use super::*;
    use crate::node::{Drivers, NewSession};

    fn config(id: &str) -> Config {
        let mut config = Config::for_tests();
        config.node_id = Some(NodeId::new(id).unwrap());
        config.max_served_forwards = 1;
        config
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_bound_a_forward_is_answered_unavailable_at_once() {
        let shared = sessiond_store::backend::memory::memory();
        let holder = Node::with_backend(config("holder"), shared.clone(), Drivers::with_scripted());
        let caller = Node::with_backend(config("caller"), shared, Drivers::with_scripted());
        let tenant = holder.config().tenant.clone();
        let (meta, _) = holder
            .create_session(
                &tenant,
                &ProjectId::new("p").unwrap(),
                NewSession::default(),
                Some("hello".into()),
            )
            .await
            .unwrap();
        // The first prompt and its answer, committed.
        let answered = || async {
            let m = holder.get_session(&tenant, meta.id).await.unwrap();
            (m.last_seq == 2 && m.status == sessiond_store::SessionStatus::Idle).then_some(m)
        };
        sessiond_store::testing::wait_until("the first run", Duration::from_secs(30), answered)
            .await;
        let send = |prompt: &str| SendPrompt {
            prompt: prompt.into(),
            idempotency_key: None,
        };
        // The holder's one permit is taken, as by a slow forwarded request.
        let slow = holder.inner.inbox.admit().expect("a free permit");
        let started = std::time::Instant::now();
        let refused = caller.execute(&tenant, meta.id, send("refused")).await;
        let took = started.elapsed();
        match refused {
            Err(e) if e.code() == sessiond_client::ErrorCode::Unavailable => {
                assert!(e.to_string().contains("node busy"), "{e}")
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
        // At once: not at the forward's deadline (call timeout + 1 s = 11 s).
        assert!(took < Duration::from_secs(5), "the refusal took {took:?}");
        // Nothing of it ran on the holder.
        let stored = holder.get_session(&tenant, meta.id).await.unwrap();
        assert_eq!(stored.last_seq, 2);
        // With the permit back, the holder serves the next one.
        drop(slow);
        let receipt = caller
            .execute(&tenant, meta.id, send("served"))
            .await
            .expect("served once a permit is free");
        assert_eq!(receipt.message_seq, 3);
        holder.shutdown().await;
        caller.shutdown().await;
    }
}
