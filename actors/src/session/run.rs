//! The run task: loads the history, drives the driver, forwards its events to the
//! session actor one at a time (each acknowledged, so backpressure reaches the
//! driver) and reports the end. A cancelled driver gets `abort_grace` to stop, then
//! is dropped and the run force-ended.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use ractor::ActorRef;
use sessiond_store::SessionMeta;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::state::RunPlan;
use super::{SessionMsg, read_all};
use crate::context::SessionContext;
use crate::driver::{DriverEvent, DriverEvents, DriverOutcome, RunRequest};

pub(super) fn spawn(
    ctx: SessionContext,
    actor: ActorRef<SessionMsg>,
    meta: &SessionMeta,
    plan: RunPlan,
    token: CancellationToken,
    force: CancellationToken,
) -> JoinHandle<()> {
    let meta = meta.clone();
    tokio::spawn(async move {
        let run_id = plan.run_id;
        // A panicking driver is a bug in the driver, not in the session: the run
        // fails and the session goes on (without this the run would never end).
        let outcome = AssertUnwindSafe(drive(&ctx, &actor, meta, plan, &token, &force))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown panic");
                tracing::error!(%run_id, panic = what, "driver panicked");
                DriverOutcome::Failed(format!("driver panicked: {what}"))
            });
        let _ = actor.cast(SessionMsg::RunEnded { run_id, outcome });
    })
}

async fn drive(
    ctx: &SessionContext,
    actor: &ActorRef<SessionMsg>,
    meta: SessionMeta,
    plan: RunPlan,
    token: &CancellationToken,
    force: &CancellationToken,
) -> DriverOutcome {
    let Some(driver) = ctx.drivers.get(&meta.driver) else {
        return DriverOutcome::Failed(format!(
            "driver '{}' is not configured on this node",
            meta.driver
        ));
    };
    // Everything this session handed to the writer before the run started (the
    // previous run's last messages) is committed before the history is read.
    // A store that hangs here must not hang the run past an abort's deadline.
    let setup = async {
        ctx.writer.flush().await.await;
        read_all(ctx, &meta.tenant, meta.id, 0).await
    };
    let loaded = tokio::select! {
        biased;
        () = force.cancelled() => return DriverOutcome::Cancelled,
        loaded = setup => loaded,
    };
    let history = match loaded {
        Ok(log) => plan.history(log),
        Err(e) => return DriverOutcome::Failed(format!("cannot load history: {e}")),
    };
    let request = RunRequest {
        session_id: meta.id,
        run_id: plan.run_id,
        history,
        prompt: plan.prompt,
        model: meta.model,
        system_prompt: meta.system_prompt,
        options: meta.driver_options,
        config: meta.config,
        driver_state: meta.driver_state,
    };
    let (tx, mut rx) = mpsc::channel(ctx.settings.driver_event_buffer);
    let run = driver.run(request, DriverEvents::new(tx), token.clone());
    tokio::pin!(run);
    // The actor fires `force` at the deadline of an abort or steer. This fallback
    // covers a run whose actor is gone (it cannot fire anything any more).
    let s = &ctx.settings;
    let fallback = s.abort_grace.max(s.steer_deadline);
    let force_end = async {
        tokio::select! {
            () = force.cancelled() => {}
            () = async {
                token.cancelled().await;
                tokio::time::sleep(fallback).await;
            } => {}
        }
    };
    tokio::pin!(force_end);
    let mut stall = StallWatch::new(s.stall_after, s.stall_abort_after);
    let mut events_open = true;
    let outcome = loop {
        tokio::select! {
            biased;
            // First: a driver that ignores cancellation and keeps streaming must not
            // starve the deadline.
            () = &mut force_end => {
                tracing::warn!(run_id = %plan.run_id, "driver ignored cancellation, force-ending the run");
                break DriverOutcome::Cancelled;
            }
            ev = rx.recv(), if events_open => match ev {
                Some(ev) => {
                    stall.activity();
                    if !forward(actor, plan.run_id, ev).await {
                        token.cancel();
                        return DriverOutcome::Cancelled;
                    }
                }
                None => events_open = false,
            },
            outcome = &mut run => break outcome,
            abort = stall.next() => {
                let idle = stall.idle();
                let msg = SessionMsg::Stalled { run_id: plan.run_id, idle, abort };
                if actor.cast(msg).is_err() {
                    token.cancel();
                    return DriverOutcome::Cancelled;
                }
            }
        }
    };
    // Events sent before the driver returned are part of the run.
    while let Ok(ev) = rx.try_recv() {
        if !forward(actor, plan.run_id, ev).await {
            break;
        }
    }
    outcome
}

/// Hands an event to the actor and waits until it is handled; false if the actor is gone.
async fn forward(
    actor: &ActorRef<SessionMsg>,
    run_id: sessiond_store::RunId,
    event: DriverEvent,
) -> bool {
    let (ack, done) = oneshot::channel();
    if actor
        .cast(SessionMsg::Driver { run_id, event, ack })
        .is_err()
    {
        return false;
    }
    done.await.is_ok()
}

/// The stall timers of a run: `stalled` once per quiet spell past `after`, and the
/// abort past `abort_after` (measured from the last driver event, or the start).
struct StallWatch {
    after: Duration,
    abort_after: Option<Duration>,
    last: Instant,
    reported: bool,
    abort_sent: bool,
}

impl StallWatch {
    fn new(after: Duration, abort_after: Option<Duration>) -> Self {
        Self {
            after,
            abort_after,
            last: Instant::now(),
            reported: false,
            abort_sent: false,
        }
    }

    /// The driver did something: the quiet spell is over.
    fn activity(&mut self) {
        self.last = Instant::now();
        self.reported = false;
    }

    fn idle(&self) -> Duration {
        self.last.elapsed()
    }

    /// Resolves when the next notice is due: `false` for `stalled`, `true` for the
    /// abort. Pending forever when both are done for this spell.
    async fn next(&mut self) -> bool {
        let report = (!self.reported).then(|| self.last + self.after);
        let abort = self
            .abort_after
            .filter(|_| !self.abort_sent)
            .map(|d| self.last + d);
        let (at, is_abort) = match (report, abort) {
            (Some(r), Some(a)) if a < r => (a, true),
            (Some(r), _) => (r, false),
            (None, Some(a)) => (a, true),
            (None, None) => return std::future::pending().await,
        };
        tokio::time::sleep_until(at).await;
        if is_abort {
            self.abort_sent = true;
        } else {
            self.reported = true;
        }
        is_abort
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stall_watch_reports_once_per_quiet_spell_then_aborts() {
        let mut w = StallWatch::new(Duration::from_secs(10), Some(Duration::from_secs(25)));
        let t0 = Instant::now();
        assert!(!w.next().await);
        assert_eq!(t0.elapsed(), Duration::from_secs(10));
        // Activity starts a new spell: reported again 10 s later.
        w.activity();
        assert!(!w.next().await);
        assert_eq!(t0.elapsed(), Duration::from_secs(20));
        // Then the abort, 25 s after the last activity.
        assert!(w.next().await);
        assert_eq!(t0.elapsed(), Duration::from_secs(35));
        // Nothing more is due.
        let more = tokio::time::timeout(Duration::from_secs(3600), w.next()).await;
        assert!(more.is_err());
    }
}
