//! A session's WebSocket (`GET /v1/sessions/{id}/ws`): operations sent as frames
//! and answered by `reply` frames, and the session's events (the SSE stream's
//! payloads) on the same connection. docs/websocket.md is the protocol.

use std::collections::VecDeque;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Client;
use crate::error::{Error, ErrorBody, Result};
use crate::http::fields;
use crate::model::ServerFrame;
use crate::ops::Operation;

/// An open WebSocket of one session.
pub struct SessionSocket {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Event frames read while waiting for a reply, kept in order for
    /// [`SessionSocket::next_frame`].
    backlog: VecDeque<ServerFrame>,
    next_id: u64,
    client: Client,
}

impl std::fmt::Debug for SessionSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSocket")
            .field("backlog", &self.backlog.len())
            .finish_non_exhaustive()
    }
}

fn ws_error(e: tungstenite::Error) -> Error {
    Error::WebSocket(Box::new(e))
}

impl SessionSocket {
    /// Opens the socket of session `id`, replaying messages after `after_seq`. A
    /// refused upgrade (unknown session, bad resume point) is [`Error::Api`].
    pub(crate) async fn connect(client: &Client, id: &str, after_seq: Option<u64>) -> Result<Self> {
        let mut url = client.url(&["v1", "sessions", id, "ws"]);
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| Error::Usage(format!("cannot make a WebSocket URL of {url}")))?;
        if let Some(seq) = after_seq {
            url.set_query(Some(&format!("after_seq={seq}")));
        }
        let mut request = url.as_str().into_client_request().map_err(ws_error)?;
        if let Some(token) = client.token() {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Error::Usage("the token is not a valid header value".into()))?;
            request.headers_mut().insert("authorization", value);
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((inner, _)) => Ok(Self {
                inner,
                backlog: VecDeque::new(),
                next_id: 0,
                client: client.clone(),
            }),
            Err(tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let body = resp.body().clone().unwrap_or_default();
                Err(match serde_json::from_slice::<ErrorBody>(&body) {
                    Ok(b) => Error::from_body(status, b),
                    Err(_) => Error::Unexpected {
                        status,
                        detail: String::from_utf8_lossy(&body).into_owned(),
                    },
                })
            }
            Err(e) => Err(ws_error(e)),
        }
    }

    /// Runs `op` over the socket and returns its typed reply; events that arrive
    /// meanwhile wait for [`SessionSocket::next_frame`].
    pub async fn call<O: Operation>(&mut self, op: &O) -> Result<O::Reply> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let mut frame = fields(op)?;
        frame.insert("id".into(), Value::String(id.clone()));
        frame.insert("op".into(), Value::String(O::NAME.into()));
        self.inner
            .send(Message::text(Value::Object(frame).to_string()))
            .await
            .map_err(ws_error)?;
        let deadline = self.timeout_for(O::DEADLINE);
        tokio::time::timeout(deadline, self.reply_to::<O>(&id))
            .await
            .map_err(|_| Error::TimedOut {
                what: O::NAME,
                after: deadline,
            })?
    }

    /// Reads frames until the reply to frame `id`; the events read meanwhile wait
    /// in the backlog.
    async fn reply_to<O: Operation>(&mut self, id: &str) -> Result<O::Reply> {
        loop {
            match self.read().await? {
                // A frame refused before its id could be read (too large) is
                // answered with `id: null`; replies come in order, so it is ours.
                Some(ServerFrame::Reply(reply))
                    if reply.id.is_none() || reply.id.as_deref() == Some(id) =>
                {
                    if let Some(error) = reply.error {
                        let status = error.code.http_status();
                        return Err(Error::from_body(status, ErrorBody { error }));
                    }
                    let data = reply.data.unwrap_or(Value::Null);
                    return serde_json::from_value(data).map_err(|e| Error::Unexpected {
                        status: 0,
                        detail: format!("{} reply: {e}", O::NAME),
                    });
                }
                Some(other) => self.backlog.push_back(other),
                None => {
                    return Err(Error::Unexpected {
                        status: 0,
                        detail: "the socket closed before the reply".into(),
                    });
                }
            }
        }
    }

    /// The next frame (an event, or a reply to a frame sent raw); `None` once the
    /// socket closed.
    pub async fn next_frame(&mut self) -> Result<Option<ServerFrame>> {
        if let Some(frame) = self.backlog.pop_front() {
            return Ok(Some(frame));
        }
        self.read().await
    }

    fn timeout_for(&self, deadline: crate::ops::Deadline) -> std::time::Duration {
        self.client.timeout_for(deadline)
    }

    /// Closes the socket with a normal close frame.
    pub async fn close(mut self) -> Result<()> {
        self.inner.close(None).await.map_err(ws_error)
    }

    async fn read(&mut self) -> Result<Option<ServerFrame>> {
        loop {
            let msg = match self.inner.next().await {
                None => return Ok(None),
                Some(Err(tungstenite::Error::ConnectionClosed)) => return Ok(None),
                Some(Err(e)) => return Err(ws_error(e)),
                Some(Ok(msg)) => msg,
            };
            match msg {
                Message::Text(text) => {
                    let unreadable = |e: serde_json::Error| Error::Unexpected {
                        status: 0,
                        detail: format!("unreadable frame: {e}"),
                    };
                    let value: Value = serde_json::from_str(text.as_str()).map_err(unreadable)?;
                    // A newer server's kind of frame: not this client's to read.
                    if value["event"]
                        .as_str()
                        .is_some_and(|e| !ServerFrame::KNOWN.contains(&e))
                    {
                        continue;
                    }
                    return serde_json::from_value(value).map(Some).map_err(unreadable);
                }
                Message::Close(_) => return Ok(None),
                _ => continue,
            }
        }
    }
}
