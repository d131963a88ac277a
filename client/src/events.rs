//! Event streams: a session's SSE stream that reconnects on its own and resumes
//! with `Last-Event-ID` (no gap, no repeat), and a project's live stream.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::Client;
use crate::error::{Error, ErrorBody, Result};
use crate::model::{LaggedView, MessageView, SessionChangedView, StalledView, StatusView};

/// One event of a session's stream (the SSE event's name and data).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A committed message (`message`; its SSE id is its seq).
    Message(MessageView),
    /// The session's status (`status`): first the current one, then each change.
    Status(StatusView),
    /// The stream fell behind and re-read the log (`lagged`); nothing is missed.
    Lagged(LaggedView),
    /// The active run showed no driver activity for a while (`stalled`).
    Stalled(StalledView),
    /// The server's stream failed (`error`); the stream reconnects after it.
    Error(ErrorBody),
}

/// One event of a project's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ProjectEvent {
    /// A session was created, changed or removed (`sessions.changed`).
    Changed(SessionChangedView),
    /// A session's new status (`status`).
    Status(Box<StatusView>),
    /// The server's stream failed (`error`): list the project again and reconnect.
    Error(ErrorBody),
}

type SseStream = Pin<
    Box<
        dyn Stream<
                Item = std::result::Result<
                    eventsource_stream::Event,
                    eventsource_stream::EventStreamError<reqwest::Error>,
                >,
            > + Send,
    >,
>;

/// Failed connection attempts in a row after which a stream gives up.
const MAX_RECONNECTS: u32 = 30;
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A session's events, resumed after every drop from the last message seen
/// (`Last-Event-ID`): every committed message once, in seq order.
pub struct EventStream {
    client: Client,
    id: String,
    last_seq: Option<u64>,
    open: Option<Open>,
    /// Connections in a row that ended before they delivered a message or a
    /// status (a server that answers and fails at once): each waits longer.
    empty_drops: u32,
    ended: bool,
}

/// An open connection: its events, and when its last bytes arrived (keep-alive
/// comments included, which the event parser does not show).
struct Open {
    events: SseStream,
    last_bytes: Arc<Mutex<tokio::time::Instant>>,
    delivered: bool,
}

/// A connection that received not even a keep-alive (sent every 15 s) for this
/// long is taken for dead and replaced.
const IDLE: Duration = Duration::from_secs(45);

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("id", &self.id)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(client: Client, id: &str, after_seq: Option<u64>) -> Self {
        Self {
            client,
            id: id.to_string(),
            last_seq: after_seq,
            open: None,
            empty_drops: 0,
            ended: false,
        }
    }

    /// The seq of the last message this stream yielded (or the starting point).
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// The next event; reconnects (with backoff) when the connection drops.
    /// `None` once the stream gave up after an error it returned (a refusal such
    /// as 404, or too many failed reconnects).
    pub async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if self.ended {
                return None;
            }
            let Some(open) = self.open.as_mut() else {
                let (client, id, last) = (self.client.clone(), self.id.clone(), self.last_seq);
                // A refusal (404, 400) ends the stream; a transient failure (the
                // server away, 503, 504) is retried with backoff.
                let reconnect = ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(MAX_BACKOFF)
                    .with_max_times(MAX_RECONNECTS as usize)
                    .with_jitter();
                let opened = (|| connect(&client, &id, last))
                    .retry(reconnect)
                    .sleep(tokio::time::sleep)
                    .when(|e: &Error| e.code().is_none_or(|c| c.is_transient()))
                    .await;
                match opened {
                    Ok(open) => self.open = Some(open),
                    Err(e) => {
                        self.ended = true;
                        return Some(Err(e));
                    }
                }
                continue;
            };
            let next = tokio::select! {
                next = open.events.next() => next,
                () = idle(&open.last_bytes) => None,
            };
            match next {
                Some(Ok(ev)) => match parse_session_event(&ev.event, &ev.data) {
                    Ok(Some(event)) => {
                        match &event {
                            Event::Message(m) => {
                                self.last_seq = Some(m.seq);
                                open.delivered = true;
                            }
                            Event::Status(_) => open.delivered = true,
                            _ => {}
                        }
                        if open.delivered {
                            self.empty_drops = 0;
                        }
                        return Some(Ok(event));
                    }
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                },
                // Dropped, silent, or ended by the server after an `error` event:
                // resume, after a pause when it delivered nothing.
                Some(Err(_)) | None => {
                    let delivered = open.delivered;
                    self.open = None;
                    if !delivered {
                        self.empty_drops += 1;
                        if self.empty_drops > MAX_RECONNECTS {
                            self.ended = true;
                            return Some(Err(Error::Unexpected {
                                status: 200,
                                detail: format!(
                                    "the event stream ended {MAX_RECONNECTS} times in a row without an event"
                                ),
                            }));
                        }
                        let wait = Duration::from_millis(100 << self.empty_drops.min(6));
                        tokio::time::sleep(wait.min(MAX_BACKOFF)).await;
                    }
                }
            }
        }
    }

    /// The events as a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Result<Event>> + Send {
        futures::stream::unfold(self, |mut s| async move { s.next().await.map(|e| (e, s)) })
    }
}

/// Resolves once `last_bytes` is [`IDLE`] old.
async fn idle(last_bytes: &Mutex<tokio::time::Instant>) {
    loop {
        let since = *last_bytes.lock().unwrap_or_else(|p| p.into_inner());
        let until = since + IDLE;
        if tokio::time::Instant::now() >= until {
            return;
        }
        tokio::time::sleep_until(until).await;
    }
}

/// Opens a session's SSE stream, resuming after `last_seq`.
async fn connect(client: &Client, id: &str, last_seq: Option<u64>) -> Result<Open> {
    let url = client.url(&["v1", "sessions", id, "events"]);
    let mut req = client
        .request(reqwest::Method::GET, url)
        .header("accept", "text/event-stream");
    if let Some(seq) = last_seq {
        req = req.header("last-event-id", seq.to_string());
    }
    let resp = client.execute(req).await?;
    let last_bytes = Arc::new(Mutex::new(tokio::time::Instant::now()));
    let seen = last_bytes.clone();
    let bytes = resp.bytes_stream().inspect(move |_| {
        *seen.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
    });
    Ok(Open {
        events: Box::pin(bytes.eventsource()),
        last_bytes,
        delivered: false,
    })
}

fn data<T: DeserializeOwned>(event: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Unexpected {
        status: 200,
        detail: format!("{event} event: {e}"),
    })
}

/// Parses one SSE event of a session's stream; `None` for an event this client
/// does not know (a newer server), which is skipped.
pub fn parse_session_event(event: &str, text: &str) -> Result<Option<Event>> {
    Ok(Some(match event {
        "message" => Event::Message(data(event, text)?),
        "status" => Event::Status(data(event, text)?),
        "lagged" => Event::Lagged(data(event, text)?),
        "stalled" => Event::Stalled(data(event, text)?),
        "error" => Event::Error(data(event, text)?),
        _ => return Ok(None),
    }))
}

/// A project's live events. Notices carry no id: after a drop there is nothing to
/// resume, so [`ProjectEventStream::next`] returns `None` and the caller lists the
/// project again and reopens it.
pub struct ProjectEventStream {
    open: SseStream,
}

impl std::fmt::Debug for ProjectEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectEventStream").finish_non_exhaustive()
    }
}

impl ProjectEventStream {
    /// Opens the stream; it is subscribed once this returns.
    pub(crate) async fn open(client: &Client, project: &str) -> Result<Self> {
        let url = client.url(&["v1", "projects", project, "events"]);
        let req = client
            .request(reqwest::Method::GET, url)
            .header("accept", "text/event-stream");
        let resp = client.execute(req).await?;
        Ok(Self {
            open: Box::pin(resp.bytes_stream().eventsource()),
        })
    }

    /// The next event; `None` when the connection ended.
    pub async fn next(&mut self) -> Option<Result<ProjectEvent>> {
        loop {
            let ev = match self.open.next().await? {
                Ok(ev) => ev,
                Err(_) => return None,
            };
            let parsed = match ev.event.as_str() {
                "sessions.changed" => data(&ev.event, &ev.data).map(ProjectEvent::Changed),
                "status" => data(&ev.event, &ev.data).map(|s| ProjectEvent::Status(Box::new(s))),
                "error" => data(&ev.event, &ev.data).map(ProjectEvent::Error),
                _ => continue,
            };
            return Some(parsed);
        }
    }
}
