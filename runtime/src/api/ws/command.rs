//! Client frames: reading one into a session operation, and the worker that runs
//! a socket's operations one after another on the node's one path (the same as
//! the HTTP routes and forwarded requests).

use serde_json::Value;
use sessiond_client::model::{Reply, ServerFrame};
use sessiond_store::SessionId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::outbox::{Outbox, Pushed};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::error::Error;
use crate::ops::Decoded;

/// One client frame, ready for the worker: an operation, or the reason it cannot
/// run (answered in order with the rest).
#[derive(Debug)]
pub(super) struct Job {
    id: Option<String>,
    op: Result<Box<dyn Decoded>, Error>,
}

impl Job {
    /// A frame refused before it was read (binary, too large): `id` is unknown.
    pub(super) fn refused(error: Error) -> Self {
        Self {
            id: None,
            op: Err(error),
        }
    }

    /// Reads a text frame of at most `max_bytes`: `{"id", "op", ...fields}`, the
    /// fields being those of the operation's HTTP request (path fields included).
    pub(super) fn parse(text: &str, max_bytes: usize) -> Self {
        if text.len() > max_bytes {
            return Self::refused(Error::PayloadTooLarge(format!(
                "frame is {} bytes; the limit is {max_bytes}",
                text.len()
            )));
        }
        let mut fields = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Self::refused(invalid("a frame must be a JSON object")),
            Err(e) => return Self::refused(invalid(&format!("invalid JSON frame: {e}"))),
        };
        let id = match fields.remove("id") {
            Some(Value::String(id)) => id,
            Some(_) => return Self::refused(invalid("id must be a string")),
            None => return Self::refused(invalid("a command needs an id (a string)")),
        };
        let ops = sessiond_client::ops::ALL.join(", ");
        let op = match fields.remove("op") {
            Some(Value::String(name)) => match crate::ops::by_name(&name) {
                Some(operation) => operation.decode_frame(fields),
                None => Err(invalid(&format!(
                    "unknown op '{name}': expected one of {ops}"
                ))),
            },
            Some(_) => Err(invalid("op must be a string")),
            None => Err(invalid(&format!("a command needs an op: one of {ops}"))),
        };
        Self { id: Some(id), op }
    }

    /// Runs the operation and makes its reply.
    async fn run(self, state: &AppState, session: SessionId) -> ServerFrame {
        let tenant = state.node.config().tenant.clone();
        let outcome = match self.op {
            Ok(op) => op.run(&state.node, &tenant, session).await,
            Err(e) => Err(e),
        };
        let (ok, data, error) = match outcome {
            Ok(data) => (true, Some(data), None),
            Err(e) => {
                let error = ApiError::from(e);
                error.log("websocket");
                (false, None, Some(error.body().error))
            }
        };
        ServerFrame::Reply(Reply {
            id: self.id,
            ok,
            data,
            error,
        })
    }
}

fn invalid(message: &str) -> Error {
    Error::InvalidRequest(message.to_string())
}

/// Runs the socket's operations in the order they came, one at a time, and queues
/// each reply. In order because a socket is one client's conversation: two
/// pipelined sends must reach the session in the order they were written, as
/// they would from an HTTP client that waits for each answer. Once `done` fires
/// no further operation starts; the one running finishes (like an HTTP request
/// whose client left, its effect is not undone), its reply goes nowhere.
pub(super) async fn serve(
    state: AppState,
    session: SessionId,
    mut jobs: mpsc::Receiver<Job>,
    outbox: Outbox,
    done: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            biased;
            () = done.cancelled() => return,
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let reply = job.run(&state, session).await;
        if outbox.push(&reply).await != Pushed::Queued {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_client::ErrorCode;
    use sessiond_client::ops::{Abort, Compact, PatchSession, Pause, SendPrompt};

    fn parse(text: &str) -> Job {
        Job::parse(text, 1024)
    }

    fn error_of(job: &Job) -> (ErrorCode, String) {
        let e = job.op.as_ref().expect_err("an error");
        (e.code(), e.to_string())
    }

    fn op_of<O: 'static>(job: &Job) -> &O {
        let op = job.op.as_ref().expect("an operation");
        op.as_any()
            .downcast_ref::<O>()
            .unwrap_or_else(|| panic!("decoded to {op:?}"))
    }

    #[test]
    fn commands_read_their_args_as_the_http_bodies() {
        let job = parse(r#"{"id":"a","op":"send","prompt":"hi","idempotency_key":"k1"}"#);
        assert_eq!(job.id.as_deref(), Some("a"));
        let req = op_of::<SendPrompt>(&job);
        assert_eq!(req.prompt, "hi");
        assert_eq!(req.idempotency_key.as_deref(), Some("k1"));
        op_of::<Pause>(&parse(r#"{"id":"b","op":"pause"}"#));
        assert_eq!(
            op_of::<Abort>(&parse(r#"{"id":"c","op":"abort"}"#)),
            &Abort { run_id: None }
        );
        assert_eq!(
            op_of::<Compact>(&parse(r#"{"id":"d","op":"compact","keep_last":3}"#)),
            &Compact { keep_last: 3 }
        );
        op_of::<PatchSession>(&parse(r#"{"id":"e","op":"patch","label":"x"}"#));
    }

    #[test]
    fn malformed_frames_are_refused_with_the_id_when_there_is_one() {
        for text in ["nope", "[1]", r#"{"op":"send"}"#, r#"{"id":7,"op":"send"}"#] {
            let job = parse(text);
            assert_eq!(job.id, None, "{text}");
            assert_eq!(error_of(&job).0, ErrorCode::InvalidRequest, "{text}");
        }
        let unknown = parse(r#"{"id":"x","op":"fly"}"#);
        assert_eq!(unknown.id.as_deref(), Some("x"));
        let (code, message) = error_of(&unknown);
        assert_eq!(code, ErrorCode::InvalidRequest);
        assert!(message.contains("unknown op 'fly'"), "{message}");
        for text in [
            r#"{"id":"x"}"#,
            r#"{"id":"x","op":"send"}"#,
            r#"{"id":"x","op":"send","prompt":"hi","extra":1}"#,
            r#"{"id":"x","op":"reset","hard":true}"#,
            r#"{"id":"x","op":"compact","keep_last":-1}"#,
        ] {
            let job = parse(text);
            assert_eq!(job.id.as_deref(), Some("x"), "{text}");
            assert_eq!(error_of(&job).0, ErrorCode::InvalidRequest, "{text}");
        }
        let big = format!(
            r#"{{"id":"x","op":"send","prompt":"{}"}}"#,
            "a".repeat(2000)
        );
        assert_eq!(error_of(&parse(&big)).0, ErrorCode::PayloadTooLarge);
    }
}
