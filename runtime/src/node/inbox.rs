//! The node's inbox on the bus: requests forwarded by other nodes (each served on
//! its own task) and the answers to this node's forwards. Kept subscribed for the
//! node's life.

use std::sync::Weak;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::forward::{Envelope, decode};
use super::{Inner, Node};

/// Keeps this node's inbox subscribed while the node runs: a subscription that
/// cannot be made or that ends (the bus closed it) is made again, with backoff,
/// rather than leaving the node deaf to forwards while it holds sessions.
pub(super) async fn keep_inbox(
    node: Weak<Inner>,
    forwarder: super::forward::Forwarder,
    stop: CancellationToken,
) {
    let mut pause = Duration::from_millis(100);
    loop {
        match forwarder.subscribe().await {
            Ok(sub) => {
                pause = Duration::from_millis(100);
                inbox(node.clone(), sub, stop.clone()).await;
                if stop.is_cancelled() || node.strong_count() == 0 {
                    return;
                }
                tracing::warn!("this node's inbox subscription ended; subscribing again");
            }
            Err(e) => tracing::error!(
                error = %e,
                "cannot subscribe to this node's inbox (forwards to it time out meanwhile); retrying"
            ),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Serves this node's inbox: forwarded requests (each on its own task) and the
/// answers to this node's forwards.
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
            Envelope::Response { id, result } => n.inner.forwarder.answered(id, result),
            request @ Envelope::Request { .. } => {
                tokio::spawn(async move { n.serve_forwarded(request).await });
            }
        }
    }
}
