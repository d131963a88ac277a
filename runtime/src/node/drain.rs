//! Drain: on a graceful stop, wait (up to the drain timeout) for the resident
//! sessions' runs to finish before they stop.

use std::time::Duration;

use sessiond_actors::{ProjectHandle, SessionHandle};

use super::Node;

impl Node {
    /// Waits, up to the drain timeout, until no resident session has a run or a
    /// queued prompt it would start (a paused session's queue waits for its resume,
    /// on whichever node; leases keep being renewed meanwhile). Runs still going
    /// after it are cancelled by the stop and marked interrupted by the next owner.
    pub(super) async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + self.inner.config.drain_timeout;
        let mut reported = None;
        loop {
            // Registered before the look, so a run ending during it still wakes us.
            let settled = self.inner.ctx.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            // From the supervisors: they know an actor restarted after a crash,
            // which the node's map (filled by activations) does not.
            let projects: Vec<ProjectHandle> =
                self.inner.projects.lock().await.values().cloned().collect();
            let mut handles: Vec<SessionHandle> = Vec::new();
            for p in &projects {
                match p.residents().await {
                    Ok(live) => handles.extend(live),
                    Err(e) => tracing::debug!(error = %e, "a project did not list its sessions"),
                }
            }
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
