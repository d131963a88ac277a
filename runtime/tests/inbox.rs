//! A node's inbox (forwarded commands reach it there) is subscribed again when the
//! subscription cannot be made at first: two nodes in process on one memory store,
//! the holder's bus refusing its first subscribe.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sessiond_runtime::node::{Drivers, NewSession};
use sessiond_runtime::{Config, Node};
use sessiond_store::backend::memory::memory;
use sessiond_store::testing::wait_until;
use sessiond_store::{BusSubscription, Channel, EventBus, NodeId, ProjectId, StoreError};

/// A bus whose first subscription to a node inbox fails, as when Redis is briefly
/// unreachable while the node starts.
struct FirstInboxSubscribeFails {
    inner: Arc<dyn EventBus>,
    failed: AtomicBool,
    /// Set once an inbox subscription succeeded after the failure.
    recovered: Arc<AtomicBool>,
}

#[async_trait]
impl EventBus for FirstInboxSubscribeFails {
    async fn publish(&self, channel: &Channel, payload: Bytes) -> sessiond_store::Result<()> {
        self.inner.publish(channel, payload).await
    }

    async fn subscribe(&self, channel: &Channel) -> sessiond_store::Result<BusSubscription> {
        let inbox = channel.as_str().starts_with("sd:node:");
        if inbox && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("bus away for a moment".into()));
        }
        let sub = self.inner.subscribe(channel).await?;
        if inbox {
            self.recovered.store(true, Ordering::SeqCst);
        }
        Ok(sub)
    }
}

fn config(id: &str) -> Config {
    let mut config = Config::for_tests();
    config.node_id = Some(NodeId::new(id).unwrap());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_that_could_not_subscribe_at_start_is_subscribed_again() {
    let shared = memory();
    let mut flaky = shared.clone();
    let recovered = Arc::new(AtomicBool::new(false));
    flaky.bus = Arc::new(FirstInboxSubscribeFails {
        inner: shared.bus.clone(),
        failed: AtomicBool::new(false),
        recovered: recovered.clone(),
    });
    let holder = Node::with_backend(config("holder"), flaky, Drivers::with_scripted());
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
    // Pub/sub keeps nothing for later: the forward is sent once the holder
    // listens again (without the retry it never does).
    wait_until(
        "the inbox subscribed again",
        Duration::from_secs(30),
        || {
            let recovered = recovered.clone();
            async move { recovered.load(Ordering::SeqCst).then_some(()) }
        },
    )
    .await;
    // The caller does not hold the session: its send is forwarded to the holder's
    // inbox.
    let send = sessiond_client::ops::SendPrompt {
        prompt: "through the inbox".into(),
        idempotency_key: None,
    };
    let receipt = caller
        .execute(&tenant, meta.id, send)
        .await
        .expect("the holder answered the forward");
    assert!(receipt.message_seq > 1);
    holder.shutdown().await;
    caller.shutdown().await;
}
