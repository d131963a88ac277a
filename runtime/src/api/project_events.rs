//! `GET /v1/projects/{project}/events`: Server-Sent Events about a project's
//! sessions, live only. `sessions.changed` says a session was created, changed or
//! removed (and why); `status` carries a session's new status. Notices are
//! at-most-once and carry no id: there is nothing to resume, so a client that
//! reconnects lists the project again.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use sessiond_store::{ProjectEvent, ProjectId};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::ApiPath;
use super::views::{changed_view, status_view};
use crate::error::Error;

/// The SSE event of one item; `None` for a kind this version does not know.
fn to_sse(item: &crate::error::Result<ProjectEvent>) -> Option<Event> {
    let event = match item {
        Ok(ProjectEvent::Changed { session_id, reason }) => Event::default()
            .event("sessions.changed")
            .json_data(changed_view(*session_id, *reason)),
        Ok(ProjectEvent::Status(s)) => Event::default().event("status").json_data(status_view(s)),
        Ok(ProjectEvent::Unknown) => return None,
        Err(e) => Event::default().event("error").json_data({
            let error = ApiError::from(e.clone());
            error.log("/v1/projects/{project}/events");
            error.body()
        }),
    };
    Some(event.unwrap_or_else(|_| Event::default().event("error").data("unserializable event")))
}

/// The SSE handler. The subscription is live once the response starts, so a
/// client that has the 200 sees every later change.
pub(super) async fn sse(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let project = ProjectId::new(project).map_err(Error::from)?;
    let events = state
        .node
        .project_events(&state.node.config().tenant, &project)
        .await?;
    // An error item (the subscription was lost) ends the stream after it is sent.
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
        .filter_map(move |item| {
            // Held by the stream: the gauge drops when the client goes.
            let _open = &gauge;
            futures::future::ready(to_sse(&item).map(Ok))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
