//! Drain: on a graceful stop, wait (up to the drain timeout) for the resident
//! sessions' runs to finish before they stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Node;
use crate::config::Config;

/// The drain part: whether a stop has begun, what ends the long-lived responses
/// when it does, and how long runs may go on.
pub(super) struct Drain {
    /// Set when a stop begins: no new activations.
    draining: AtomicBool,
    /// Ends event streams when a stop begins.
    stopping: CancellationToken,
    timeout: Duration,
}

impl Drain {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            draining: AtomicBool::new(false),
            stopping: CancellationToken::new(),
            timeout: config.drain_timeout,
        }
    }

    /// A stop begins: no activation from now on, event streams end.
    pub(super) fn begin(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.stopping.cancel();
    }

    /// Whether a stop has begun.
    pub(super) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Fires when a stop begins.
    pub(super) fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }
}

impl Node {
    /// Waits, up to the drain timeout, until no resident session has a run or a
    /// queued prompt it would start (a paused session's queue waits for its resume,
    /// on whichever node; leases keep being renewed meanwhile). Runs still going
    /// after it are cancelled by the stop and marked interrupted by the next owner.
    pub(super) async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + self.inner.drain.timeout;
        let mut reported = None;
        loop {
            // Registered before the look, so a run ending during it still wakes us.
            let settled = self.inner.ctx.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            // Kept by the supervisors, so an actor restarted after a crash is in.
            let handles = self.inner.ctx.residents.all();
            let mut busy = 0;
            for h in &handles {
                if !h.is_settled().await.unwrap_or(true) {
                    busy += 1;
                }
            }
            if busy == 0 {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(busy, "drain deadline passed; stopping sessions with runs");
                return;
            }
            if reported != Some(busy) {
                tracing::info!(busy, "draining: waiting for runs to finish");
                reported = Some(busy);
            }
            // A run ending or a session stopping wakes this; the periodic look
            // covers an actor that died without stopping (a panic).
            let look_again = (tokio::time::Instant::now() + DRAIN_LOOK_AGAIN).min(deadline);
            tokio::select! {
                () = &mut settled => {}
                () = tokio::time::sleep_until(look_again) => {}
            }
        }
    }
}

/// How often a drain looks at the resident sessions without being woken.
pub(super) const DRAIN_LOOK_AGAIN: Duration = Duration::from_secs(1);
