//! The actor's side of a run: starting the next prompt, the driver's events as
//! they come, and the end of the run (commit, waiters, auto-compact, the next
//! prompt). The run itself is a task (`run`).

use ractor::ActorRef;
use sessiond_store::{
    ChangeReason, DEFAULT_AUTO_COMPACT_KEEP, ProjectEvent, RunId, SessionMeta, now_ms,
};
use tokio_util::sync::CancellationToken;

use super::state::{ActiveRun, SessionState};
use super::{AbortReply, Session, SessionMsg, run};
use crate::driver::{DriverEvent, DriverOutcome};
use crate::error::SessionError;
use crate::writer::WriteError;

impl Session {
    /// Starts the next durable prompt when nothing runs.
    pub(super) async fn start_next(&self, me: &ActorRef<SessionMsg>, state: &mut SessionState) {
        let Some((plan, write)) = state.next_run(now_ms()) else {
            return;
        };
        self.submit(me, state, write).await;
        let token = CancellationToken::new();
        metrics::counter!("sessiond_runs_started_total").increment(1);
        let mut run = ActiveRun::new(plan.run_id, token.clone(), None);
        run.task = Some(run::spawn(
            self.ctx.clone(),
            me.clone(),
            &state.meta,
            plan,
            token,
            run.force.clone(),
        ));
        state.run = Some(run);
    }

    pub(super) async fn on_driver_event(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        run_id: RunId,
        event: DriverEvent,
    ) {
        let crash = self.ctx.settings.test_hooks && crash_hook(&state.meta);
        let Some(run) = state.run.as_mut().filter(|r| r.run_id == run_id) else {
            return;
        };
        run.events += 1;
        if crash && run.events == 1 {
            // The scripted driver's `crash_actor` test hook: a bug in the actor
            // itself, so supervision can be shown to restart it from the store.
            panic!("crash_actor: session actor crashed on the first event of run {run_id}");
        }
        match event {
            DriverEvent::Message {
                role,
                content,
                tool,
            } => {
                if let Some(write) = state.driver_message(run_id, role, content, tool, now_ms()) {
                    self.submit(me, state, write).await;
                }
            }
            DriverEvent::Usage(u) => run.usage.add(&u),
            DriverEvent::Activity => {}
            DriverEvent::State(driver_state) => {
                let write = state.set_driver_state(driver_state, now_ms());
                self.submit(me, state, write).await;
            }
        }
    }

    pub(super) async fn on_run_ended(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        run_id: RunId,
        outcome: DriverOutcome,
    ) {
        let Some((write, waiters)) = state.end_run(run_id, outcome, now_ms()) else {
            return;
        };
        let outcome = state.meta.last_run.as_ref().and_then(|r| r.outcome);
        if let Some(outcome) = outcome {
            metrics::counter!("sessiond_runs_ended_total", "outcome" => outcome.as_str())
                .increment(1);
        }
        let me2 = me.clone();
        let announce = state.status_to_announce(write.meta.as_ref());
        let ctx = self.ctx.clone();
        let aborted = !waiters.is_empty();
        let ids = (
            state.meta.tenant.clone(),
            state.meta.project.clone(),
            state.meta.id,
        );
        // Retention reads statuses in the store, so it hears of the finished run
        // once the run's end is committed (here), and only when nothing waits.
        let finished = state.queue.is_empty() && state.after_run.is_empty();
        let project = state.project.clone().filter(|_| finished);
        let on_commit = Box::new(move |result: std::result::Result<u64, WriteError>| {
            if result.is_ok() {
                if aborted {
                    ctx.changed(&ids.0, &ids.1, ids.2, ChangeReason::Abort);
                }
                if let Some((tenant, project, status)) = &announce {
                    ctx.announce(tenant, project, ProjectEvent::Status(status.clone()));
                }
                if let Some(project) = project {
                    let _ = project.cast(crate::project::ProjectMsg::SessionFinished);
                }
            }
            for w in waiters {
                let answer = match &result {
                    Ok(_) => Ok(AbortReply::Aborted { run_id }),
                    Err(e) => Err(SessionError::Write(e.clone())),
                };
                let _ = w.send(answer);
            }
            if let Err(e) = result {
                let _ = me2.cast(SessionMsg::WriteFailed(e));
            }
        });
        self.ctx.writer.submit(write, on_commit).await;
        self.run_after_run_ops(me, state).await;
        if state.wants_auto_compact() {
            let keep = state
                .meta
                .config
                .auto_compact_keep
                .unwrap_or(DEFAULT_AUTO_COMPACT_KEEP);
            if let Err(e) = self.compact(me, state, keep).await {
                tracing::warn!(session_id = %state.meta.id, error = %e, "auto-compact failed");
            }
        }
        self.start_next(me, state).await;
    }
}

/// Whether the session's driver options ask for the `crash_actor` test hook.
fn crash_hook(meta: &SessionMeta) -> bool {
    meta.driver_options.get("crash_actor") == Some(&serde_json::Value::Bool(true))
}
