//! One prompt turn: `session/prompt`, the updates and permission requests that
//! arrive while it runs, and cancellation (`session/cancel`, then the process group
//! once the grace period is over).

use std::collections::HashMap;
use std::time::Duration;

use agent_client_protocol::v1::Responder;
use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, PromptRequest, PromptResponse, RequestPermissionOutcome,
    RequestPermissionRequest, RequestPermissionResponse, StopReason, TextContent,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use sessiond_actors::{DriverEvent, DriverEvents, DriverOutcome};
use sessiond_store::{Role, SessionId, ToolInfo};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::permission::{self, PendingPermissions, PermissionAnswer, PermissionPolicy};
use super::process::{AgentProcess, Inbound};
use super::updates::Transcriber;

/// Updates and requests in flight between the connection and the run.
const INBOX: usize = 64;
/// Updates that add nothing to the transcript yet report activity at most this often.
const ACTIVITY_GAP: Duration = Duration::from_secs(1);
/// While a permission request waits for a person, activity is reported this often, so
/// the run does not look stalled.
const WAITING_ACTIVITY: Duration = Duration::from_secs(5);

/// Everything a turn needs.
pub(super) struct Turn<'a> {
    pub(super) agent: &'a mut AgentProcess,
    pub(super) session_id: SessionId,
    pub(super) policy: PermissionPolicy,
    pub(super) cancel_grace: Duration,
    pub(super) permissions: &'a PendingPermissions,
    pub(super) events: &'a DriverEvents,
}

/// How a turn ended.
pub(super) struct TurnEnd {
    pub(super) outcome: DriverOutcome,
    /// Whether the agent process can serve the next run.
    pub(super) keep: bool,
}

/// The run's side of the transcript: buffered text, throttled activity.
struct Output<'a> {
    events: &'a DriverEvents,
    transcriber: Transcriber,
    last_sent: Option<Instant>,
    /// The session stopped listening: the run must end.
    closed: bool,
}

impl Output<'_> {
    async fn send(&mut self, event: DriverEvent) {
        if self.closed {
            return;
        }
        match self.events.send(event).await {
            Ok(()) => self.last_sent = Some(Instant::now()),
            Err(_) => self.closed = true,
        }
    }

    async fn update(&mut self, update: agent_client_protocol::v1::schema::SessionUpdate) {
        let events = self.transcriber.update(update);
        if events.is_empty() && self.last_sent.is_none_or(|t| t.elapsed() >= ACTIVITY_GAP) {
            self.send(DriverEvent::Activity).await;
        }
        for event in events {
            self.send(event).await;
        }
    }

    async fn flush(&mut self) {
        if let Some(event) = self.transcriber.flush() {
            self.send(event).await;
        }
    }

    async fn system(&mut self, content: String, tool: Option<ToolInfo>) {
        self.send(DriverEvent::Message {
            role: Role::System,
            content,
            tool,
        })
        .await;
    }
}

/// A person's answer to one request, or `None` when it was forgotten.
type AnswerWait = BoxFuture<'static, (String, Option<PermissionAnswer>)>;

/// Permission requests of this turn that wait for a person. Whatever still waits
/// when it is dropped (the turn ended, or its future was dropped) is answered
/// `cancelled`.
struct Asked<'a> {
    permissions: &'a PendingPermissions,
    responders: HashMap<String, Responder<RequestPermissionResponse>>,
    answers: FuturesUnordered<AnswerWait>,
}

impl Asked<'_> {
    /// Answers every waiting request `cancelled`.
    fn cancel_all(&mut self) {
        for (id, responder) in self.responders.drain() {
            self.permissions.forget(&id);
            respond(responder, RequestPermissionOutcome::Cancelled);
        }
        self.answers.clear();
    }
}

impl Drop for Asked<'_> {
    fn drop(&mut self) {
        self.cancel_all();
    }
}

impl Turn<'_> {
    /// Prompts the agent and reports until the turn ends.
    pub(super) async fn run(self, prompt: String, cancel: &CancellationToken) -> TurnEnd {
        let agent = &*self.agent;
        let (tx, mut inbox) = mpsc::channel(INBOX);
        agent.attach(tx);
        let mut out = Output {
            events: self.events,
            transcriber: Transcriber::new(agent.cost_seen_usd),
            last_sent: None,
            closed: false,
        };
        let mut asked = Asked {
            permissions: self.permissions,
            responders: HashMap::new(),
            answers: FuturesUnordered::new(),
        };
        // Set by cancel: when the process group is killed if the turn has not ended.
        let mut kill_at: Option<Instant> = None;
        let mut waiting = tokio::time::interval(WAITING_ACTIVITY);
        waiting.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let prompt = vec![ContentBlock::Text(TextContent::new(prompt))];
        let request = PromptRequest::new(agent.acp_session.clone(), prompt);
        let response = agent.cx.send_request(request).block_task();
        tokio::pin!(response);

        let (end, note) = loop {
            if out.closed && kill_at.is_none() {
                kill_at = Some(self.begin_cancel(&mut asked));
            }
            tokio::select! {
                biased;
                Some(inbound) = inbox.recv() => {
                    self.inbound(inbound, &mut out, &mut asked, kill_at.is_some()).await;
                }
                result = &mut response => {
                    // Whatever the agent sent before its response is in the inbox.
                    self.drain(&mut inbox, &mut out, &mut asked).await;
                    break self.finish(result, kill_at.is_some()).await;
                }
                () = cancel.cancelled(), if kill_at.is_none() => {
                    kill_at = Some(self.begin_cancel(&mut asked));
                }
                Some((id, answer)) = asked.answers.next() => {
                    if let Some(responder) = asked.responders.remove(&id) {
                        let answer = answer.unwrap_or(PermissionAnswer::Cancelled);
                        let text = format!("permission request {id} answered: {}", answer.describe());
                        out.system(text, None).await;
                        respond(responder, answer.into_outcome());
                    }
                }
                () = tokio::time::sleep_until(kill_at.unwrap_or_else(Instant::now)), if kill_at.is_some() => {
                    warn!(
                        session_id = %self.session_id,
                        pid = agent.pid,
                        "agent ignored session/cancel, killing its process group"
                    );
                    agent.kill();
                    self.drain(&mut inbox, &mut out, &mut asked).await;
                    break (TurnEnd { outcome: DriverOutcome::Cancelled, keep: false }, None);
                }
                status = agent.exited() => {
                    self.drain(&mut inbox, &mut out, &mut asked).await;
                    let outcome = if kill_at.is_some() {
                        DriverOutcome::Cancelled
                    } else {
                        DriverOutcome::Failed(format!("agent process exited: {status}"))
                    };
                    break (TurnEnd { outcome, keep: false }, None);
                }
                _ = waiting.tick(), if !asked.responders.is_empty() => {
                    out.send(DriverEvent::Activity).await;
                }
            }
        };

        agent.detach();
        asked.cancel_all();
        out.flush().await;
        if let Some(note) = note {
            out.system(note, None).await;
        }
        self.agent.cost_seen_usd = out.transcriber.cost_seen_usd();
        end
    }

    /// Sends `session/cancel` and answers the pending permission requests `cancelled`
    /// (as ACP asks); returns when the process group is to be killed.
    fn begin_cancel(&self, asked: &mut Asked<'_>) -> Instant {
        let agent = &*self.agent;
        debug!(session_id = %self.session_id, "cancelling the agent's turn");
        if let Err(e) = agent
            .cx
            .send_notification(CancelNotification::new(agent.acp_session.clone()))
        {
            debug!(session_id = %self.session_id, error = %e.message, "cannot send session/cancel");
        }
        asked.cancel_all();
        Instant::now() + self.cancel_grace
    }

    /// Handles what is left in the inbox of a turn that is over.
    async fn drain(
        &self,
        inbox: &mut mpsc::Receiver<Inbound>,
        out: &mut Output<'_>,
        asked: &mut Asked<'_>,
    ) {
        while let Ok(inbound) = inbox.try_recv() {
            self.inbound(inbound, out, asked, true).await;
        }
    }

    /// Handles an update or a permission request; `ending`: the turn is being
    /// cancelled or is over, so requests are answered `cancelled`.
    async fn inbound(
        &self,
        inbound: Inbound,
        out: &mut Output<'_>,
        asked: &mut Asked<'_>,
        ending: bool,
    ) {
        let (request, responder) = match inbound {
            Inbound::Update(update) => return out.update(*update).await,
            Inbound::Permission(request) => *request,
        };
        if ending {
            return respond(responder, RequestPermissionOutcome::Cancelled);
        }
        out.flush().await;
        let title = permission::request_title(&request);
        let call_id = request.tool_call.tool_call_id.to_string();
        let tool = move |input| ToolInfo {
            call_id: Some(call_id),
            name: Some("permission".into()),
            input: Some(input),
            ..ToolInfo::default()
        };
        match permission::decide(self.policy, &request.options) {
            Some(answer) => {
                let text = format!(
                    "permission for '{title}' answered by the {} policy: {}",
                    self.policy.as_str(),
                    answer.describe()
                );
                out.system(text, Some(tool(permission::request_json(None, &request))))
                    .await;
                respond(responder, answer.into_outcome());
            }
            None => self.ask(request, responder, out, asked, &title, tool).await,
        }
    }

    /// Registers a request for a person and tells the transcript about it.
    async fn ask(
        &self,
        request: RequestPermissionRequest,
        responder: Responder<RequestPermissionResponse>,
        out: &mut Output<'_>,
        asked: &mut Asked<'_>,
        title: &str,
        tool: impl FnOnce(serde_json::Value) -> ToolInfo,
    ) {
        let (id, answer) = self.permissions.register(self.session_id, &request.options);
        let options: Vec<String> = request
            .options
            .iter()
            .map(|o| o.option_id.to_string())
            .collect();
        let text = format!(
            "permission pending for '{title}': request {id}, options {}",
            options.join(", ")
        );
        out.system(
            text,
            Some(tool(permission::request_json(Some(&id), &request))),
        )
        .await;
        let wait_id = id.clone();
        asked
            .answers
            .push(async move { (wait_id, answer.await.ok()) }.boxed());
        asked.responders.insert(id, responder);
    }

    /// The outcome of the prompt's response, and a note for the transcript.
    async fn finish(
        &self,
        result: Result<PromptResponse, agent_client_protocol::Error>,
        cancelled: bool,
    ) -> (TurnEnd, Option<String>) {
        let end = |outcome| TurnEnd {
            outcome,
            keep: true,
        };
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                let error = self.agent.failure("agent error", &e).await;
                let keep = self.agent.is_alive();
                let outcome = if cancelled {
                    DriverOutcome::Cancelled
                } else {
                    DriverOutcome::Failed(error)
                };
                return (TurnEnd { outcome, keep }, None);
            }
        };
        if cancelled {
            return (end(DriverOutcome::Cancelled), None);
        }
        match response.stop_reason {
            StopReason::EndTurn => (end(DriverOutcome::Completed), None),
            StopReason::MaxTokens => (
                end(DriverOutcome::Completed),
                Some("the agent stopped: it reached its token limit (max_tokens)".into()),
            ),
            StopReason::MaxTurnRequests => (
                end(DriverOutcome::Completed),
                Some(
                    "the agent stopped: it reached its limit of model requests (max_turn_requests)"
                        .into(),
                ),
            ),
            StopReason::Refusal => (
                end(DriverOutcome::Failed(
                    "the agent refused to continue (stop reason: refusal)".into(),
                )),
                None,
            ),
            StopReason::Cancelled => (end(DriverOutcome::Cancelled), None),
            other => {
                debug!(session_id = %self.session_id, stop_reason = ?other, "unknown stop reason, taken as completed");
                (end(DriverOutcome::Completed), None)
            }
        }
    }
}

/// Answers a permission request; a failure only means the agent is gone.
fn respond(responder: Responder<RequestPermissionResponse>, outcome: RequestPermissionOutcome) {
    if let Err(e) = responder.respond(RequestPermissionResponse::new(outcome)) {
        debug!(error = %e.message, "cannot answer a permission request");
    }
}
