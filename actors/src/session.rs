//! The session actor: owns a session's transcript tail, prompt queue, current run and
//! the run's cancellation. Everything slow (commits, the driver) happens off the
//! handler: results come back as messages, so the actor stays responsive to abort.

mod handle;
mod run;
mod state;

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use sessiond_store::{
    LeaseGrant, LeaseRef, Message, RunId, SessionId, SessionMeta, TenantId, now_ms,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use handle::SessionHandle;
pub use state::SessionState;

use crate::context::SessionContext;
use crate::driver::{DriverEvent, DriverOutcome};
use crate::error::{Result, SessionError, StartRefused};
use crate::writer::WriteError;
use state::ActiveRun;

/// The answer to a send: the prompt is durable as message `message_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// The run the prompt starts (now, or after the queued ones).
    pub run_id: RunId,
    /// Seq of the prompt's user message.
    pub message_seq: u64,
    /// Whether it waits behind another run.
    pub queued: bool,
}

/// The answer to an abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum AbortReply {
    /// The run ended (cancelled, or force-ended past the grace period).
    Aborted {
        /// The run.
        run_id: RunId,
    },
    /// Nothing was running (or not the run named).
    NoActiveRun,
}

/// The session actor (configuration only; all mutable data is in [`SessionState`]).
#[derive(Debug, Clone)]
pub struct Session {
    ctx: SessionContext,
}

impl Session {
    /// A session actor over the node's shared context.
    pub fn new(ctx: SessionContext) -> Self {
        Self { ctx }
    }
}

/// What a session actor starts from.
#[derive(Debug, Clone)]
pub struct SessionArgs {
    /// The session as last read; `post_start` reads it again once the lease is held,
    /// as a previous owner may have written since.
    pub meta: SessionMeta,
}

/// Messages of the session actor.
#[derive(Debug)]
pub enum SessionMsg {
    /// Appends a prompt (answered once it is durable) and runs it, after any
    /// queued ones.
    Send {
        /// The prompt.
        prompt: String,
        /// Answered with the receipt once the prompt is committed.
        reply: RpcReplyPort<Result<SendReceipt>>,
    },
    /// Cancels the active run (or the named one); answered when it has ended.
    Abort {
        /// Only this run, if given.
        run_id: Option<RunId>,
        /// Answered when the run has ended and its end is committed.
        reply: RpcReplyPort<Result<AbortReply>>,
    },
    /// The session as this actor sees it.
    Get {
        /// Answered with the meta.
        reply: RpcReplyPort<SessionMeta>,
    },
    /// A prompt's user message was committed (or failed to be).
    PromptCommitted {
        /// The prompt's run.
        run_id: RunId,
        /// The commit's fate.
        result: std::result::Result<u64, WriteError>,
    },
    /// An event of the run `run_id`; `ack` is answered once it is handed to the writer
    /// (so a slow store slows the driver down).
    Driver {
        /// The run it belongs to.
        run_id: RunId,
        /// What the driver reported.
        event: DriverEvent,
        /// Answered when the event is handled.
        ack: oneshot::Sender<()>,
    },
    /// The run task of `run_id` finished.
    RunEnded {
        /// The run.
        run_id: RunId,
        /// How.
        outcome: DriverOutcome,
    },
    /// A write of this session failed for good: the actor stops (the store is the
    /// truth; the next request reactivates the session from it).
    WriteFailed(WriteError),
    /// The node could not renew this session's lease: stop at once.
    LeaseLost,
}

impl Actor for Session {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    // pre_start runs in the spawning task (the project supervisor): no I/O here.
    async fn pre_start(
        &self,
        _me: ActorRef<SessionMsg>,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        Ok(SessionState::new(args.meta, 0))
    }

    async fn post_start(
        &self,
        me: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        let tenant = state.meta.tenant.clone();
        let id = state.meta.id;
        let refuse = |e: SessionError| -> ActorProcessingErr { Box::new(StartRefused(e)) };
        let ctx = &self.ctx;
        let fence = match ctx
            .leases
            .acquire(&tenant, id, &ctx.node, ctx.settings.lease_ttl)
            .await
        {
            Ok(LeaseGrant::Granted { fence }) => fence,
            Ok(LeaseGrant::Held { owner }) => {
                return Err(refuse(SessionError::Unavailable(format!(
                    "session {id} is active on node {owner}"
                ))));
            }
            Err(e) => return Err(refuse(e.into())),
        };
        // Renewed from now on, so a slow load cannot outlive the lease.
        let me2 = me.clone();
        let lease_entry = ctx.lease_book.hold(
            LeaseRef {
                tenant: tenant.clone(),
                session: id,
                fence,
            },
            Arc::new(move || {
                let _ = me2.cast(SessionMsg::LeaseLost);
            }),
        );
        let meta = match ctx.store.load_session(&tenant, id).await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(refuse(SessionError::NotFound(format!("session {id}")))),
            Err(e) => return Err(refuse(e.into())),
        };
        let after = meta.last_run.as_ref().map_or(0, |r| r.prompt_seq);
        let log = read_all(ctx, &tenant, id, after).await.map_err(refuse)?;
        *state = SessionState::new(meta, fence);
        state._lease = Some(lease_entry);
        state._driver_release =
            ctx.drivers
                .get(&state.meta.driver)
                .map(|driver| state::DriverRelease {
                    driver,
                    session: id,
                });
        if let Some(write) = state.restore(&log, now_ms()) {
            ctx.writer
                .commit(write)
                .await
                .map_err(|e| refuse(SessionError::Unavailable(e.to_string())))?;
        }
        self.start_next(&me, state).await;
        Ok(())
    }

    // Runs on a graceful stop only (not on panic or kill: then the lease expires).
    async fn post_stop(
        &self,
        _me: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        // The run ends with the actor; its task sees the token at once.
        if let Some(run) = &state.run {
            run.token.cancel();
        }
        // Give the lease back so another node can take the session at once, but only
        // after this session's queued writes are in: a new owner's fence would turn
        // them away.
        if state._lease.take().is_some() {
            self.ctx.writer.flush().await.await;
            let lease = LeaseRef {
                tenant: state.meta.tenant.clone(),
                session: state.meta.id,
                fence: state.fence,
            };
            if let Err(e) = self.ctx.leases.release(&self.ctx.node, &lease).await {
                tracing::warn!(session_id = %state.meta.id, error = %e, "lease release failed; it will expire");
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionMsg::Send { prompt, reply } => self.on_send(&me, state, prompt, reply).await,
            SessionMsg::Abort { run_id, reply } => on_abort(state, run_id, reply),
            SessionMsg::Get { reply } => {
                let _ = reply.send(state.meta.clone());
            }
            SessionMsg::PromptCommitted { run_id, result } => match result {
                Ok(_) => {
                    state.prompt_committed(run_id);
                    self.start_next(&me, state).await;
                }
                Err(e) => stop_on_write_failure(&me, state, e),
            },
            SessionMsg::Driver { run_id, event, ack } => {
                self.on_driver_event(&me, state, run_id, event).await;
                let _ = ack.send(());
            }
            SessionMsg::RunEnded { run_id, outcome } => {
                self.on_run_ended(&me, state, run_id, outcome).await
            }
            SessionMsg::WriteFailed(e) => stop_on_write_failure(&me, state, e),
            SessionMsg::LeaseLost => {
                tracing::warn!(session_id = %state.meta.id, "lease lost, stopping session");
                me.stop(Some("lease lost".into()));
            }
        }
        Ok(())
    }
}

impl Session {
    async fn on_send(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        prompt: String,
        reply: RpcReplyPort<Result<SendReceipt>>,
    ) {
        let (write, receipt) = state.accept_prompt(prompt, now_ms());
        let me = me.clone();
        let on_commit = Box::new(move |result: std::result::Result<u64, WriteError>| {
            let answer = match &result {
                Ok(_) => Ok(receipt),
                Err(e) => Err(SessionError::Unavailable(e.to_string())),
            };
            let _ = reply.send(answer);
            let _ = me.cast(SessionMsg::PromptCommitted {
                run_id: receipt.run_id,
                result,
            });
        });
        self.ctx.writer.submit(write, on_commit).await;
    }

    /// Starts the next durable prompt when nothing runs.
    async fn start_next(&self, me: &ActorRef<SessionMsg>, state: &mut SessionState) {
        let Some((plan, write)) = state.next_run(now_ms()) else {
            return;
        };
        self.submit(me, write).await;
        let token = CancellationToken::new();
        metrics::counter!("sessiond_runs_started_total").increment(1);
        let task = run::spawn(
            self.ctx.clone(),
            me.clone(),
            &state.meta,
            plan.clone(),
            token.clone(),
        );
        state.run = Some(ActiveRun {
            run_id: plan.run_id,
            _guard: token.clone().drop_guard(),
            token,
            task: Some(task),
            usage: Default::default(),
            aborting: false,
            abort_waiters: Vec::new(),
            events: 0,
        });
    }

    async fn on_driver_event(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        run_id: RunId,
        event: DriverEvent,
    ) {
        let Some(run) = state.run.as_mut().filter(|r| r.run_id == run_id) else {
            return;
        };
        run.events += 1;
        match event {
            DriverEvent::Message {
                role,
                content,
                tool,
            } => {
                if let Some(write) = state.driver_message(run_id, role, content, tool, now_ms()) {
                    self.submit(me, write).await;
                }
            }
            DriverEvent::Usage(u) => run.usage.add(&u),
            DriverEvent::Activity => {}
            DriverEvent::State(driver_state) => {
                let write = state.set_driver_state(driver_state, now_ms());
                self.submit(me, write).await;
            }
        }
    }

    async fn on_run_ended(
        &self,
        me: &ActorRef<SessionMsg>,
        state: &mut SessionState,
        run_id: RunId,
        outcome: DriverOutcome,
    ) {
        let Some((write, waiters)) = state.end_run(run_id, outcome, now_ms()) else {
            return;
        };
        if let Some(outcome) = state.meta.last_run.as_ref().and_then(|r| r.outcome) {
            metrics::counter!("sessiond_runs_ended_total", "outcome" => outcome.as_str())
                .increment(1);
        }
        let me2 = me.clone();
        let on_commit = Box::new(move |result: std::result::Result<u64, WriteError>| {
            for w in waiters {
                let answer = match &result {
                    Ok(_) => Ok(AbortReply::Aborted { run_id }),
                    Err(e) => Err(SessionError::Unavailable(e.to_string())),
                };
                let _ = w.send(answer);
            }
            if let Err(e) = result {
                let _ = me2.cast(SessionMsg::WriteFailed(e));
            }
        });
        self.ctx.writer.submit(write, on_commit).await;
        self.start_next(me, state).await;
    }

    /// Hands a write to the writer; a failure comes back as `WriteFailed`.
    async fn submit(&self, me: &ActorRef<SessionMsg>, write: sessiond_store::SessionWrite) {
        let me = me.clone();
        self.ctx
            .writer
            .submit(
                write,
                Box::new(move |r| {
                    if let Err(e) = r {
                        let _ = me.cast(SessionMsg::WriteFailed(e));
                    }
                }),
            )
            .await;
    }
}

fn on_abort(
    state: &mut SessionState,
    run_id: Option<RunId>,
    reply: RpcReplyPort<Result<AbortReply>>,
) {
    match state.run.as_mut() {
        Some(run) if run_id.is_none_or(|id| id == run.run_id) => {
            run.aborting = true;
            run.token.cancel();
            run.abort_waiters.push(reply);
        }
        _ => {
            let _ = reply.send(Ok(AbortReply::NoActiveRun));
        }
    }
}

fn stop_on_write_failure(me: &ActorRef<SessionMsg>, state: &SessionState, e: WriteError) {
    tracing::error!(session_id = %state.meta.id, error = %e, "write failed, stopping session");
    me.stop(Some(format!("write failed: {e}")));
}

/// The whole log after `after`, in pages.
async fn read_all(
    ctx: &SessionContext,
    tenant: &TenantId,
    id: SessionId,
    after: u64,
) -> Result<Vec<Message>> {
    const PAGE: usize = 1000;
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let page = ctx.store.read_log(tenant, id, cursor, PAGE).await?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            cursor = last.seq;
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}
