//! Handlers of the session's lifecycle requests: steer, abort, pause and resume,
//! patch, reset, compact, delete, and the stall notice of a run. Decisions live in
//! `state` and `lifecycle`; these commit them and answer.

use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};
use sessiond_store::{BusEvent, ChangeReason, DeleteOutcome, RunId, SessionMeta, now_ms};

use super::lifecycle::{CompactReport, SessionPatch};
use super::state::{ActiveRun, AfterRun, SessionState};
use super::{AbortReply, SendReceipt, Session, SessionMsg};
use crate::error::{Result, SessionError};

/// Cancels a run and arms its deadline: past `after` the run is force-ended (a
/// deadline already armed, shorter or not, stays).
fn cancel_with_deadline(me: &ActorRef<SessionMsg>, run: &mut ActiveRun, after: Duration) {
    run.aborting = true;
    run.token.cancel();
    if run.force_timer.is_none() {
        let run_id = run.run_id;
        run.force_timer = Some(me.send_after(after, move || SessionMsg::ForceEnd { run_id }));
    }
}

impl Session {
    pub(super) async fn on_steer(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        prompt: String,
        idempotency_key: Option<String>,
        reply: RpcReplyPort<Result<SendReceipt>>,
    ) {
        let Some(reply) = self
            .replay_key(state, idempotency_key.as_deref(), reply)
            .await
        else {
            return;
        };
        match state.run.as_mut() {
            None => {
                self.accept(
                    me,
                    state,
                    prompt,
                    true,
                    None,
                    idempotency_key,
                    ChangeReason::Steer,
                    reply,
                )
                .await;
            }
            Some(run) => {
                let interrupted = run.run_id;
                cancel_with_deadline(me, run, self.ctx.settings.steer_deadline);
                if let Some(key) = &idempotency_key {
                    // A retry while this steer waits must not steer twice.
                    state.remember_key(key.clone(), None);
                }
                state.after_run.push_back(AfterRun::Steer {
                    prompt,
                    idempotency_key,
                    interrupted,
                    reply,
                });
            }
        }
    }

    pub(super) fn on_abort(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        run_id: Option<RunId>,
        reply: RpcReplyPort<Result<AbortReply>>,
    ) {
        match state.run.as_mut() {
            Some(run) if run_id.is_none_or(|id| id == run.run_id) => {
                cancel_with_deadline(me, run, self.ctx.settings.abort_grace);
                run.abort_waiters.push(reply);
            }
            _ => {
                let _ = reply.send(Ok(AbortReply::NoActiveRun));
            }
        }
    }

    /// Runs the steers and resets that waited for the run to end.
    pub(super) async fn run_after_run_ops(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) {
        while state.run.is_none()
            && let Some(op) = state.after_run.pop_front()
        {
            match op {
                AfterRun::Steer {
                    prompt,
                    idempotency_key,
                    interrupted,
                    reply,
                } => {
                    self.accept(
                        me,
                        state,
                        prompt,
                        true,
                        Some(interrupted),
                        idempotency_key,
                        ChangeReason::Steer,
                        reply,
                    )
                    .await;
                }
                AfterRun::Reset { reply } => {
                    let answer = self.reset_now(me, state).await;
                    let _ = reply.send(answer);
                }
            }
        }
    }

    pub(super) async fn on_set_paused(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        paused: bool,
        reply: RpcReplyPort<Result<SessionMeta>>,
    ) {
        let now = now_ms();
        let write = if paused {
            state.pause(now)
        } else {
            state.resume(now)
        };
        if let Some(write) = write {
            if let Err(e) = self.commit(me, state, write).await {
                let _ = reply.send(Err(e));
                return;
            }
            self.changed(state, ChangeReason::Patch);
        }
        let _ = reply.send(Ok(state.meta.clone()));
        if !paused {
            self.start_next(me, state).await;
        }
    }

    pub(super) async fn on_patch(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        patch: SessionPatch,
        reply: RpcReplyPort<Result<SessionMeta>>,
    ) {
        let old_driver = state.meta.driver.clone();
        let (write, driver_changed) = state.patch(patch, now_ms());
        if driver_changed {
            // The old driver lets go of what it kept for the session (an agent
            // process); the new one starts fresh on the next run.
            if let Some(old) = self.ctx.drivers.get(&old_driver) {
                old.release_session(state.meta.id);
            }
            state._driver_release = self.ctx.drivers.get(&state.meta.driver).map(|driver| {
                super::state::DriverRelease {
                    driver,
                    session: state.meta.id,
                }
            });
        }
        let answer = self
            .commit(me, state, write)
            .await
            .map(|()| state.meta.clone());
        if answer.is_ok() {
            self.changed(state, ChangeReason::Patch);
        }
        let _ = reply.send(answer);
    }

    pub(super) async fn on_reset(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        reply: RpcReplyPort<Result<SessionMeta>>,
    ) {
        if state.meta.protected {
            let _ = reply.send(Err(SessionError::Protected(state.meta.id)));
            return;
        }
        match state.run.as_mut() {
            None if state.after_run.is_empty() => {
                let answer = self.reset_now(me, state).await;
                let _ = reply.send(answer);
            }
            Some(run) => {
                cancel_with_deadline(me, run, self.ctx.settings.steer_deadline);
                state.after_run.push_back(AfterRun::Reset { reply });
            }
            None => state.after_run.push_back(AfterRun::Reset { reply }),
        }
    }

    async fn reset_now(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<SessionMeta> {
        let ttl = self.ctx.settings.archive_ttl.as_millis() as u64;
        let write = state.reset(ttl, now_ms());
        // A fresh transcript needs a fresh agent conversation too.
        if let Some(driver) = self.ctx.drivers.get(&state.meta.driver) {
            driver.release_session(state.meta.id);
        }
        self.commit(me, state, write).await?;
        self.changed(state, ChangeReason::Reset);
        Ok(state.meta.clone())
    }

    /// Archives all but the last `keep_last` messages (see `SessionState::compact`).
    pub(super) async fn compact(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        keep_last: u64,
    ) -> Result<CompactReport> {
        let ttl = self.ctx.settings.archive_ttl.as_millis() as u64;
        let (write, report) = state.compact(keep_last, ttl, now_ms());
        if let Some(write) = write {
            self.commit(me, state, write).await?;
            self.changed(state, ChangeReason::Compact);
        }
        Ok(report)
    }

    pub(super) async fn on_delete(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        archive: bool,
        reason: ChangeReason,
        reply: RpcReplyPort<Result<()>>,
    ) {
        if state.meta.protected {
            let _ = reply.send(Err(SessionError::Protected(state.meta.id)));
            return;
        }
        if reason == ChangeReason::Retention && !state.is_idle() {
            // Became busy since retention looked: it is not finished any more.
            let _ = reply.send(Err(SessionError::Conflict(format!(
                "session {} is busy",
                state.meta.id
            ))));
            return;
        }
        // The run ends without a recorded end: the session is going away.
        if let Some(mut run) = state.run.take() {
            run.token.cancel();
            for w in run.abort_waiters.drain(..) {
                let _ = w.send(Ok(AbortReply::Aborted { run_id: run.run_id }));
            }
        }
        for op in state.after_run.drain(..) {
            let gone = || SessionError::NotFound(format!("session {} (deleted)", state.meta.id));
            match op {
                AfterRun::Steer { reply, .. } => {
                    let _ = reply.send(Err(gone()));
                }
                AfterRun::Reset { reply } => {
                    let _ = reply.send(Err(gone()));
                }
            }
        }
        state.queue.clear();
        // Writes already handed over go first, or they would land on nothing.
        self.ctx.writer.flush().await.await;
        let ttl = archive.then_some(self.ctx.settings.archive_ttl.as_millis() as u64);
        let m = &state.meta;
        let answer = match self
            .ctx
            .store
            .delete_session(&m.tenant, m.id, state.fence, ttl)
            .await
        {
            Ok(DeleteOutcome::Deleted) => Ok(()),
            Ok(DeleteOutcome::Missing) => Err(SessionError::NotFound(format!("session {}", m.id))),
            Ok(DeleteOutcome::Fenced) => Err(SessionError::Unavailable(format!(
                "session {} was taken over by another node; retry",
                m.id
            ))),
            Err(e) => Err(e.into()),
        };
        let deleted = answer.is_ok();
        let _ = reply.send(answer);
        if deleted {
            self.changed(state, reason);
            // The lease went with the session: nothing to release.
            state._lease = None;
            self.let_go(state).await;
            me.stop(Some("deleted".into()));
        }
    }

    pub(super) fn on_stalled(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        run_id: RunId,
        idle: Duration,
        abort: bool,
    ) {
        let Some(run) = state.run.as_mut().filter(|r| r.run_id == run_id) else {
            return;
        };
        let idle_ms = idle.as_millis() as u64;
        if abort {
            if !run.aborting {
                tracing::warn!(session_id = %state.meta.id, %run_id, idle_ms, "run stalled, aborting it");
                run.cancel_note = Some(format!(
                    "run aborted: no driver activity for {} s",
                    idle.as_secs()
                ));
                cancel_with_deadline(me, run, self.ctx.settings.abort_grace);
            }
            return;
        }
        tracing::warn!(session_id = %state.meta.id, %run_id, idle_ms, "run stalled");
        self.ctx.notify_session(
            &state.meta.tenant,
            state.meta.id,
            &BusEvent::Stalled { run_id, idle_ms },
        );
        self.changed(state, ChangeReason::Stalled);
    }
}
