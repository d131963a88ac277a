//! `GET /v1/sessions/{id}/ws`: a WebSocket carrying the session's events (the SSE
//! stream's payloads, one JSON text frame each) and its commands, each answered by
//! a `reply` frame. docs/websocket.md is the protocol's reference.
//!
//! Three tasks serve a socket: the event pump (events to the outbox), the command
//! worker (commands run in order, replies to the outbox) and the writer (outbox to
//! the socket). The supervisor here reads client frames and decides when and how
//! the socket ends, so a slow command never holds up events and vice versa.
//!
//! # Layout
//! - this file: the upgrade, checked like the SSE route before switching
//!   protocols, and the supervisor
//! - `command`: reading a client frame, running commands like the HTTP routes
//! - `outbox`: the bounded queue toward the client, its writer, the slow-client rule

mod command;
mod outbox;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures::{Stream, StreamExt};
use sessiond_store::SessionId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery};
use sessiond_client::model::{EventsQuery, LaggedView, ServerFrame, StalledView};

use super::operation::session_id;
use super::views::{message_view, status_view};
use crate::error::{Error, Result};
use crate::events::SessionEvent;
use command::Job;
use outbox::{Outbox, Pushed};

/// Commands read but not yet run. When it is full the supervisor stops reading
/// the socket, so a client that floods commands is slowed by TCP, not by memory.
const COMMAND_QUEUE: usize = 32;

/// The upgrade handler: a bad id, resume point or upgrade, or an unknown session,
/// answers in the error shape before any protocol switch.
pub(super) async fn upgrade(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    ws: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let id = session_id(&id)?;
    let ws = ws?;
    let events = state
        .node
        .events(&state.node.config().tenant, id, q.after_seq.unwrap_or(0))
        .await?;
    // Frames up to the body limit are read and answered (too large: an error
    // reply); twice that is where reading stops and the socket closes, so one
    // frame cannot hold more memory than that.
    let hard_limit = 2 * state.node.config().limits.max_body_bytes;
    // Counted from now, not from the switch: a stop in between still waits.
    let open = state.sockets.token();
    Ok(ws
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| async move {
            serve(socket, state, id, events).await;
            drop(open);
        }))
}

/// Why a socket ends, and so how it is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The node stops: 1001, the client reconnects (to another node).
    Stopping,
    /// The client left without a close frame.
    ClientGone,
    /// The client sent a close frame: it is answered.
    ClientClosed,
    /// A frame could not be read (not WebSocket, or past the hard size limit).
    Unreadable(String),
    /// The outbox stayed full for the stall deadline: 1008.
    SlowClient,
    /// The event stream yielded an error, already sent as an `error` frame: 1011.
    StreamFailed,
    /// The event stream ended (its bus closed): 1001, the client reconnects.
    StreamEnded,
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    id: SessionId,
    events: impl Stream<Item = Result<SessionEvent>> + Send + 'static,
) {
    // Counted with the SSE streams: both hold a subscription to the session.
    let _gauge = crate::metrics::StreamGauge::open();
    let (sink, mut source) = socket.split();
    let (outbox, queued) = Outbox::new(outbox::CAPACITY);
    let writer = outbox::spawn_writer(sink, queued);
    let (jobs, pending) = mpsc::channel::<Job>(COMMAND_QUEUE);
    let done = CancellationToken::new();
    let worker = tokio::spawn(command::serve(
        state.clone(),
        id,
        pending,
        outbox.clone(),
        done.clone(),
    ));
    let mut pump = tokio::spawn(pump(events, outbox.clone()));
    let stopping = state.node.stopping();
    let max_frame = state.node.config().limits.max_body_bytes;
    let end = loop {
        tokio::select! {
            // Overflow first: a pump that gave up on a full queue also ends.
            biased;
            () = outbox.overflowed() => break End::SlowClient,
            () = stopping.cancelled() => break End::Stopping,
            end = &mut pump => break end.unwrap_or(End::StreamEnded),
            // Room for a command before reading one: see COMMAND_QUEUE.
            (room, frame) = async { (jobs.reserve().await, source.next().await) } => {
                let Ok(room) = room else { break End::ClientGone };
                match frame {
                    None => break End::ClientGone,
                    Some(Err(e)) => break End::Unreadable(e.to_string()),
                    Some(Ok(Message::Close(_))) => break End::ClientClosed,
                    Some(Ok(Message::Text(text))) => room.send(Job::parse(&text, max_frame)),
                    Some(Ok(Message::Binary(_))) => room.send(Job::refused(Error::InvalidRequest(
                        "binary frames are not part of the protocol: send JSON text frames".into(),
                    ))),
                    // The protocol layer answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                }
            }
        }
    };
    done.cancel();
    pump.abort();
    let close = match &end {
        End::Stopping => Some(outbox::close_frame(close_code::AWAY, "node stopping")),
        End::StreamEnded => Some(outbox::close_frame(close_code::AWAY, "event stream ended")),
        End::StreamFailed => Some(outbox::close_frame(
            close_code::ERROR,
            "event stream failed",
        )),
        End::SlowClient => {
            tracing::warn!(session_id = %id, stall = ?outbox::STALL,
                "websocket client does not read its frames, closing");
            Some(outbox::close_frame(
                close_code::POLICY,
                "client does not read its frames",
            ))
        }
        End::Unreadable(e) => {
            tracing::debug!(session_id = %id, error = %e, "unreadable websocket frame");
            Some(outbox::close_frame(
                close_code::PROTOCOL,
                &format!("unreadable frame: {e}"),
            ))
        }
        End::ClientClosed | End::ClientGone => None,
    };
    // The supervisor's own handles must go, or the writer would wait for them.
    drop((outbox, jobs));
    writer.finish(close).await;
    // The running command, if any, finishes on its own (see `command::serve`).
    drop(worker);
}

/// Feeds the event stream to the outbox until it fails, ends, or the socket does.
async fn pump(events: impl Stream<Item = Result<SessionEvent>>, outbox: Outbox) -> End {
    let mut events = std::pin::pin!(events);
    while let Some(item) = events.next().await {
        let failed = item.is_err();
        match outbox.push(&event_frame(item)).await {
            Pushed::Queued => {}
            Pushed::Overflowed => return End::SlowClient,
            Pushed::Closed => return End::ClientGone,
        }
        // An error item ends the stream, as in SSE: the client resumes.
        if failed {
            return End::StreamFailed;
        }
    }
    End::StreamEnded
}

/// The frame of one event item: the SSE event's name and data.
fn event_frame(item: Result<SessionEvent>) -> ServerFrame {
    match item {
        Ok(SessionEvent::Message(m)) => ServerFrame::Message {
            id: m.seq.to_string(),
            data: message_view(&m),
        },
        Ok(SessionEvent::Status(s)) => ServerFrame::Status {
            data: status_view(&s),
        },
        Ok(SessionEvent::Lagged { after_seq }) => ServerFrame::Lagged {
            data: LaggedView { after_seq },
        },
        Ok(SessionEvent::Stalled { run_id, idle_ms }) => ServerFrame::Stalled {
            data: StalledView {
                run_id: run_id.as_uuid(),
                idle_ms,
            },
        },
        Err(e) => {
            let error = ApiError::from(e);
            error.log("/v1/sessions/{id}/ws");
            ServerFrame::Error { data: error.body() }
        }
    }
}
