//! A WebSocket client of a session for the tests: commands out, JSON frames in,
//! every wait bounded by the harness deadline.

use std::collections::VecDeque;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::{Api, DEADLINE};

/// An open socket on `/v1/sessions/{id}/ws`.
pub struct Ws {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while looking for a reply: replies and events race, so the
    /// events a reply wait passes over are kept, in order, for the next reads.
    backlog: VecDeque<Value>,
}

/// The server's refusal of an upgrade: status and JSON body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
}

impl Ws {
    /// Opens the socket of session `id` with `query` (`""` or `"?after_seq=N"`).
    pub async fn try_connect(api: &Api, id: &str, query: &str) -> Result<Ws, Refused> {
        let base = api.base.replacen("http://", "ws://", 1);
        let url = format!("{base}/v1/sessions/{id}/ws{query}");
        let connecting = tokio_tungstenite::connect_async(url);
        match tokio::time::timeout(DEADLINE, connecting).await {
            Ok(Ok((inner, _))) => Ok(Ws {
                inner,
                backlog: VecDeque::new(),
            }),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let body = resp.body().clone().unwrap_or_default();
                Err(Refused {
                    status: resp.status().as_u16(),
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                })
            }
            Ok(Err(e)) => panic!("websocket connect failed: {e}"),
            Err(_) => panic!("websocket connect took longer than {DEADLINE:?}"),
        }
    }

    /// Opens the socket resuming after `after_seq`.
    pub async fn connect(api: &Api, id: &str, after_seq: u64) -> Ws {
        Self::try_connect(api, id, &format!("?after_seq={after_seq}"))
            .await
            .expect("websocket upgrade")
    }

    /// Sends a raw frame.
    pub async fn send(&mut self, frame: Message) {
        tokio::time::timeout(DEADLINE, self.inner.send(frame))
            .await
            .expect("a frame sent within the deadline")
            .expect("socket open");
    }

    /// Sends `{"id", "op", ...args}`.
    pub async fn command(&mut self, id: &str, op: &str, args: Value) {
        let mut frame = json!({"id": id, "op": op});
        if let Value::Object(args) = args {
            frame.as_object_mut().unwrap().extend(args);
        }
        self.send(Message::text(frame.to_string())).await;
    }

    /// The next frame that is not a ping or pong. One deadline for the whole
    /// wait: the server's keep-alive pings must not extend it.
    pub async fn next_raw(&mut self) -> Message {
        let wait = async {
            loop {
                let frame = self
                    .inner
                    .next()
                    .await
                    .expect("socket open")
                    .expect("a readable frame");
                if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
                    return frame;
                }
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .expect("a frame within the deadline")
    }

    /// The payload of the next pong, skipping other frames.
    pub async fn pong(&mut self) -> Vec<u8> {
        let wait = async {
            loop {
                let frame = self.inner.next().await.expect("socket open");
                if let Message::Pong(payload) = frame.expect("a readable frame") {
                    return payload.to_vec();
                }
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .expect("a pong within the deadline")
    }

    /// The next JSON text frame (first those passed over by [`Ws::reply`]).
    pub async fn next(&mut self) -> Value {
        if let Some(frame) = self.backlog.pop_front() {
            return frame;
        }
        self.read().await
    }

    async fn read(&mut self) -> Value {
        match self.next_raw().await {
            Message::Text(text) => serde_json::from_str(&text).expect("a JSON frame"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Frames up to and including the first for which `done` says true, all
    /// within one deadline.
    pub async fn until(&mut self, mut done: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let mut frames = Vec::new();
        let wait = async {
            loop {
                let frame = self.next().await;
                let last = done(&frame);
                frames.push(frame);
                if last {
                    return;
                }
            }
        };
        if tokio::time::timeout(DEADLINE, wait).await.is_err() {
            panic!("no matching frame within {DEADLINE:?}; got {frames:#?}");
        }
        frames
    }

    /// The reply with `id` (`None`: a reply with `id: null`); the frames read
    /// before it stay for [`Ws::next`].
    pub async fn reply(&mut self, id: Option<&str>) -> Value {
        let want = id.map_or(Value::Null, |i| Value::String(i.into()));
        let is_it = |f: &Value| f["event"] == "reply" && f["id"] == want;
        if let Some(at) = self.backlog.iter().position(is_it) {
            return self.backlog.remove(at).unwrap();
        }
        let wait = async {
            loop {
                let frame = self.read().await;
                if is_it(&frame) {
                    return frame;
                }
                self.backlog.push_back(frame);
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("no reply {want} within {DEADLINE:?}"))
    }

    /// The reply with `id`, asserting success; returns its `data`.
    pub async fn ok(&mut self, id: &str) -> Value {
        let reply = self.reply(Some(id)).await;
        assert_eq!(reply["ok"], true, "reply {id}: {reply}");
        assert!(reply.get("error").is_none(), "{reply}");
        reply["data"].clone()
    }

    /// The reply with `id`, asserting an error with `code`.
    pub async fn refused(&mut self, id: Option<&str>, code: &str) -> Value {
        let reply = self.reply(id).await;
        assert_eq!(reply["ok"], false, "{reply}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{reply}"
        );
        assert!(reply.get("data").is_none(), "{reply}");
        reply
    }

    /// Closes with `code` and returns the code of the server's answer.
    pub async fn close(&mut self, code: u16) -> u16 {
        let frame = tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: "bye".into(),
        };
        tokio::time::timeout(DEADLINE, self.inner.close(Some(frame)))
            .await
            .expect("close sent within the deadline")
            .expect("socket open");
        self.close_code().await
    }

    /// Reads frames until the server's close frame; returns its code.
    pub async fn close_code(&mut self) -> u16 {
        let wait = async {
            loop {
                match self.next_raw().await {
                    Message::Close(Some(frame)) => return frame.code.into(),
                    Message::Close(None) => panic!("a close frame without a code"),
                    _ => continue,
                }
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .expect("a close frame within the deadline")
    }
}

/// The `message` frames among `frames`, asserting each carries its seq as `id`.
pub fn messages(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f["event"] == "message")
        .map(|f| {
            assert_eq!(
                f["id"],
                f["data"]["seq"].to_string(),
                "message id is its seq"
            );
            f["data"].clone()
        })
        .collect()
}

/// The seqs of message payloads.
pub fn seqs(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

/// True for the frame announcing the session `status` at `last_seq`.
pub fn is_status(frame: &Value, status: &str, last_seq: u64) -> bool {
    frame["event"] == "status"
        && frame["data"]["status"] == status
        && frame["data"]["last_seq"] == last_seq
}
