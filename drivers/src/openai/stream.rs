//! Reading the SSE stream (`data: {chunk}` events, then `data: [DONE]`) into the
//! reply: answer text, reasoning text and usage.

use std::time::Duration;

use eventsource_stream::EventStreamError;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value};
use sessiond_actors::{DriverEvent, DriverEvents};
use sessiond_store::Role;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ReasoningField;
use super::http::{Sse, chain, error_text};

/// Least time between two `Activity` events while data streams.
const ACTIVITY_EVERY: Duration = Duration::from_secs(2);

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    /// `[DONE]`, or the end of the body after a `finish_reason`.
    Done,
    /// Cut, unreadable, or an error chunk from the server; why, for people.
    Interrupted(String),
    /// The run's token fired.
    Cancelled,
    /// The session stopped listening to the run.
    Closed,
}

/// What the stream produced so far.
#[derive(Debug)]
pub(super) struct Reply {
    reasoning: ReasoningField,
    /// Reasoning not yet handed over.
    thinking: String,
    /// The answer so far.
    pub(super) text: String,
    /// `(prompt_tokens, completion_tokens)` of the latest usage chunk.
    pub(super) usage: Option<(u64, u64)>,
    /// A choice reported a `finish_reason`.
    finished: bool,
}

/// One `chat.completion.chunk`; every field optional, servers differ.
#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<ChunkUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Map<String, Value>>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl Reply {
    /// An empty reply reading reasoning from `reasoning`.
    pub(super) fn new(reasoning: ReasoningField) -> Self {
        Self {
            reasoning,
            thinking: String::new(),
            text: String::new(),
            usage: None,
            finished: false,
        }
    }

    /// Takes one event's data. Returns the reasoning to hand over now (the answer
    /// started after it), or the server's error when the chunk is one.
    pub(super) fn feed(&mut self, data: &str) -> Result<Option<String>, String> {
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(e) => {
                // Keep-alive oddities of some proxies; the answer goes on.
                tracing::debug!(error = %e, "skipping an unreadable stream chunk");
                return Ok(None);
            }
        };
        if let Some(e) = &chunk.error {
            return Err(error_text(e));
        }
        if let Some(u) = chunk.usage {
            self.usage = Some((u.prompt_tokens, u.completion_tokens));
        }
        let choices = chunk.choices.unwrap_or_default();
        let Some(choice) = choices.into_iter().find(|c| c.index == 0) else {
            return Ok(None);
        };
        self.finished |= choice.finish_reason.is_some();
        let Some(delta) = choice.delta else {
            return Ok(None);
        };
        if let Some(r) = self.reasoning_of(&delta) {
            self.thinking.push_str(r);
        }
        match delta.get("content").and_then(Value::as_str) {
            Some(c) if !c.is_empty() => {
                let done = self.take_thinking();
                self.text.push_str(c);
                Ok(done)
            }
            _ => Ok(None),
        }
    }

    /// The reasoning not yet handed over, if any.
    pub(super) fn take_thinking(&mut self) -> Option<String> {
        let t = std::mem::take(&mut self.thinking);
        (!t.trim().is_empty()).then_some(t)
    }

    fn reasoning_of<'a>(&self, delta: &'a Map<String, Value>) -> Option<&'a str> {
        let field = |k: &str| {
            delta
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        match &self.reasoning {
            ReasoningField::Auto => field("reasoning_content").or_else(|| field("reasoning")),
            ReasoningField::Ignore => None,
            ReasoningField::Field(f) => field(f),
        }
    }
}

/// Reads `sse` to its end into `reply`, handing over reasoning as it completes and
/// reporting activity. Every wait also watches `cancel`.
pub(super) async fn pump(
    sse: &mut Sse,
    reply: &mut Reply,
    events: &DriverEvents,
    cancel: &CancellationToken,
) -> End {
    let mut last_activity: Option<Instant> = None;
    loop {
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => return End::Cancelled,
            n = sse.next() => n,
        };
        let event = match next {
            None if reply.finished => return End::Done,
            None => return End::Interrupted("the server closed the stream before [DONE]".into()),
            Some(Err(e)) => return End::Interrupted(describe(e)),
            Some(Ok(e)) => e,
        };
        let data = event.data.trim();
        if data == "[DONE]" {
            return End::Done;
        }
        match reply.feed(data) {
            Err(e) => return End::Interrupted(format!("server error: {e}")),
            Ok(Some(thinking)) => {
                if let Err(end) =
                    emit(events, super::message(Role::Thinking, thinking), cancel).await
                {
                    return end;
                }
            }
            Ok(None) => {}
        }
        if last_activity.is_none_or(|t| t.elapsed() >= ACTIVITY_EVERY) {
            if let Err(end) = emit(events, DriverEvent::Activity, cancel).await {
                return end;
            }
            last_activity = Some(Instant::now());
        }
    }
}

/// Sends an event unless the run is cancelled or closed first.
async fn emit(
    events: &DriverEvents,
    ev: DriverEvent,
    cancel: &CancellationToken,
) -> Result<(), End> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(End::Cancelled),
        r = events.send(ev) => r.map_err(|_| End::Closed),
    }
}

fn describe(e: EventStreamError<reqwest::Error>) -> String {
    match e {
        EventStreamError::Transport(e) => chain(e),
        EventStreamError::Utf8(_) => "the stream is not valid utf-8".into(),
        EventStreamError::Parser(e) => format!("unreadable stream: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(c: &str) -> String {
        serde_json::json!({"choices": [{"index": 0, "delta": {"content": c}}]}).to_string()
    }

    fn reasoning(field: &str, r: &str) -> String {
        serde_json::json!({"choices": [{"index": 0, "delta": {field: r}}]}).to_string()
    }

    #[test]
    fn reasoning_is_handed_over_when_the_answer_starts() {
        let mut r = Reply::new(ReasoningField::Auto);
        assert_eq!(r.feed(&reasoning("reasoning_content", "let me ")), Ok(None));
        assert_eq!(r.feed(&reasoning("reasoning", "think")), Ok(None));
        assert_eq!(r.feed(&content("4")), Ok(Some("let me think".into())));
        assert_eq!(r.feed(&content("2")), Ok(None));
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#;
        assert_eq!(r.feed(usage), Ok(None));
        assert_eq!((r.text.as_str(), r.usage), ("42", Some((3, 5))));
        assert_eq!(r.take_thinking(), None);
    }

    #[test]
    fn reasoning_field_can_be_chosen_or_ignored() {
        let mut r = Reply::new(ReasoningField::Field("thoughts".into()));
        r.feed(&reasoning("reasoning_content", "no")).unwrap();
        r.feed(&reasoning("thoughts", "yes")).unwrap();
        assert_eq!(r.take_thinking().as_deref(), Some("yes"));
        let mut r = Reply::new(ReasoningField::Ignore);
        r.feed(&reasoning("reasoning_content", "no")).unwrap();
        assert_eq!(r.take_thinking(), None);
    }

    #[test]
    fn finish_reason_error_chunks_and_junk() {
        let mut r = Reply::new(ReasoningField::Auto);
        assert_eq!(r.feed("not json"), Ok(None));
        assert!(!r.finished);
        r.feed(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#)
            .unwrap();
        assert!(r.finished);
        let err = r#"{"error":{"message":"overloaded"}}"#;
        assert_eq!(r.feed(err), Err("overloaded".into()));
    }
}
