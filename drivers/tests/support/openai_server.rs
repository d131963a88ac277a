//! A fake OpenAI-compatible server for driver tests: real HTTP on 127.0.0.1:0 and real
//! SSE framing (`data: ...\n\n`). It answers `POST /v1/chat/completions` with scripted
//! replies, records every request, and reports streams the client walked away from.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How a streamed reply ends after its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// `data: [DONE]`, then the end of the body.
    Done,
    /// The connection is cut (the body fails mid-way).
    Cut,
    /// The body ends cleanly without `[DONE]`.
    Eof,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// 200 with an SSE stream of these `data:` payloads, the first at once and the
    /// others (and the end) `pace` apart.
    Stream {
        /// The payloads (see [`content`], [`reasoning`], [`finish`], [`usage`]).
        events: Vec<String>,
        /// Delay between two events.
        pace: Duration,
        /// How the body ends.
        end: StreamEnd,
    },
    /// An error status with an OpenAI error body.
    Error {
        /// The status.
        status: u16,
        /// The error's message.
        message: String,
        /// A `Retry-After` header, in seconds.
        retry_after: Option<u64>,
    },
}

impl Reply {
    /// A quick stream ending with `[DONE]`.
    pub(crate) fn stream(events: Vec<String>) -> Self {
        Self::Stream {
            events,
            pace: Duration::from_millis(5),
            end: StreamEnd::Done,
        }
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// Its headers.
    pub(crate) headers: HeaderMap,
    /// Its JSON body.
    pub(crate) body: Value,
    /// When it arrived.
    pub(crate) at: Instant,
}

struct Shared {
    /// Replies in order; the last one is repeated.
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    dropped: mpsc::UnboundedSender<()>,
}

/// A running fake server.
pub(crate) struct FakeServer {
    /// `http://127.0.0.1:PORT/v1`.
    pub(crate) base_url: String,
    shared: Arc<Shared>,
    dropped: mpsc::UnboundedReceiver<()>,
}

impl FakeServer {
    /// Starts a server answering with `replies` in order (the last one repeats).
    pub(crate) async fn start(replies: Vec<Reply>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            replies: Mutex::new(replies.into()),
            requests: Mutex::new(Vec::new()),
            dropped: tx,
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{addr}/v1"),
            shared,
            dropped: rx,
        }
    }

    /// Every request so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits until a stream was dropped before its end (the client went away).
    pub(crate) async fn stream_dropped(&mut self, within: Duration) -> bool {
        matches!(
            tokio::time::timeout(within, self.dropped.recv()).await,
            Ok(Some(()))
        )
    }
}

/// Tells the test when a stream is dropped before it ended.
struct DropSignal {
    tx: mpsc::UnboundedSender<()>,
    ended: bool,
}

impl Drop for DropSignal {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.tx.send(());
        }
    }
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.requests.lock().unwrap().push(Recorded {
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
    });
    let reply = {
        let mut replies = shared.replies.lock().unwrap();
        match replies.len() {
            0 => panic!("no reply scripted"),
            1 => replies[0].clone(),
            _ => replies.pop_front().unwrap(),
        }
    };
    match reply {
        Reply::Error {
            status,
            message,
            retry_after,
        } => {
            let mut r = Response::builder()
                .status(StatusCode::from_u16(status).unwrap())
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(s) = retry_after {
                r = r.header(header::RETRY_AFTER, s.to_string());
            }
            let body = json!({"error": {"message": message, "type": "test"}});
            r.body(Body::from(body.to_string())).unwrap()
        }
        Reply::Stream { events, pace, end } => {
            let guard = DropSignal {
                tx: shared.dropped.clone(),
                ended: false,
            };
            let body = async_stream::stream! {
                // Moved in whole (a closure would capture only `guard.ended`): it drops
                // with the body, when hyper gives up on the client.
                let mut guard = guard;
                for (i, data) in events.into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(pace).await;
                    }
                    yield Ok::<_, std::io::Error>(Bytes::from(format!("data: {data}\n\n")));
                }
                tokio::time::sleep(pace).await;
                guard.ended = true;
                match end {
                    StreamEnd::Done => yield Ok(Bytes::from_static(b"data: [DONE]\n\n")),
                    StreamEnd::Cut => yield Err(std::io::Error::other("connection cut")),
                    StreamEnd::Eof => {}
                }
            };
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(body))
                .unwrap()
        }
    }
}

fn chunk(delta: Value, finish_reason: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    })
    .to_string()
}

/// A chunk of answer text.
pub(crate) fn content(text: &str) -> String {
    chunk(json!({"content": text}), None)
}

/// A chunk of reasoning in `reasoning_content` (DeepSeek, vLLM style).
pub(crate) fn reasoning(text: &str) -> String {
    chunk(json!({"reasoning_content": text}), None)
}

/// The last content chunk, with `finish_reason: stop`.
pub(crate) fn finish() -> String {
    chunk(json!({}), Some("stop"))
}

/// The usage chunk of `stream_options.include_usage`.
pub(crate) fn usage(prompt_tokens: u64, completion_tokens: u64) -> String {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    })
    .to_string()
}
