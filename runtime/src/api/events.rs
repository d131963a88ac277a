//! `GET /v1/sessions/{id}/events`: Server-Sent Events. Each committed message is a
//! `message` event whose `id:` is its seq; `Last-Event-ID` (or `?after_seq=`)
//! resumes after that seq with no gap and no duplicate. Status changes are `status`
//! events without an id, so they never move the resume point.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery};
use super::operation::session_id;
use super::views::{message_view, status_view};
use crate::error::Error;
use crate::events::SessionEvent;
use sessiond_client::model::{EventsQuery, LaggedView, StalledView};

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, Error> {
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| Error::InvalidRequest("Last-Event-ID must be a message seq".into())),
    }
}

fn to_sse(item: crate::error::Result<SessionEvent>) -> Event {
    let event = match &item {
        Ok(SessionEvent::Message(m)) => Event::default()
            .event("message")
            .id(m.seq.to_string())
            .json_data(message_view(m)),
        Ok(SessionEvent::Status(s)) => Event::default().event("status").json_data(status_view(s)),
        Ok(SessionEvent::Lagged { after_seq }) => {
            Event::default().event("lagged").json_data(LaggedView {
                after_seq: *after_seq,
            })
        }
        Ok(SessionEvent::Stalled { run_id, idle_ms }) => {
            Event::default().event("stalled").json_data(StalledView {
                run_id: run_id.as_uuid(),
                idle_ms: *idle_ms,
            })
        }
        Err(e) => Event::default().event("error").json_data({
            let error = ApiError::from(e.clone());
            error.log("/v1/sessions/{id}/events");
            error.body()
        }),
    };
    event.unwrap_or_else(|_| Event::default().event("error").data("unserializable event"))
}

/// The SSE handler.
pub(super) async fn sse(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let id = session_id(&id)?;
    let after = last_event_id(&headers)?.or(q.after_seq).unwrap_or(0);
    let events = state
        .node
        .events(&state.node.config().tenant, id, after)
        .await?;
    // An error item ends the stream: the client reconnects with Last-Event-ID.
    let mut failed = false;
    let stopping = state.node.stopping().cancelled_owned();
    let gauge = crate::metrics::StreamGauge::open();
    let stream = events
        .take_until(stopping)
        .take_while(move |item| {
            let go = !failed;
            failed |= item.is_err();
            futures::future::ready(go)
        })
        .map(move |item| {
            // Held by the stream: the gauge drops when the client goes.
            let _open = &gauge;
            Ok(to_sse(item))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
