//! The run task: loads the history, drives the driver, forwards its events to the
//! session actor one at a time (each acknowledged, so backpressure reaches the
//! driver) and reports the end. A cancelled driver gets `abort_grace` to stop, then
//! is dropped and the run force-ended.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use ractor::ActorRef;
use sessiond_store::SessionMeta;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
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
) -> JoinHandle<()> {
    let meta = meta.clone();
    tokio::spawn(async move {
        let run_id = plan.run_id;
        // A panicking driver is a bug in the driver, not in the session: the run
        // fails and the session goes on (without this the run would never end).
        let outcome = AssertUnwindSafe(drive(&ctx, &actor, meta, plan, &token))
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
) -> DriverOutcome {
    let Some(driver) = ctx.drivers.get(&meta.driver) else {
        return DriverOutcome::Failed(format!(
            "driver '{}' is not configured on this node",
            meta.driver
        ));
    };
    // Everything this session handed to the writer before the run started (the
    // previous run's last messages) is committed before the history is read.
    ctx.writer.flush().await.await;
    let history = match read_all(ctx, &meta.tenant, meta.id, 0).await {
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
    let grace = ctx.settings.abort_grace;
    let force_end = async {
        token.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::pin!(force_end);
    let mut events_open = true;
    let outcome = loop {
        tokio::select! {
            biased;
            ev = rx.recv(), if events_open => match ev {
                Some(ev) => {
                    if !forward(actor, plan.run_id, ev).await {
                        token.cancel();
                        return DriverOutcome::Cancelled;
                    }
                }
                None => events_open = false,
            },
            outcome = &mut run => break outcome,
            () = &mut force_end => {
                tracing::warn!(run_id = %plan.run_id, "driver ignored cancellation, force-ending the run");
                break DriverOutcome::Cancelled;
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
