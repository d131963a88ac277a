//! Client frames: reading one into a command, and the worker that runs a socket's
//! commands one after another through the same functions as the HTTP routes.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sessiond_store::SessionId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::outbox::{Outbox, Pushed};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::model::{
    AbortRequest, CompactRequest, PatchSessionRequest, Reply, SendRequest, ServerFrame,
};
use crate::api::{lifecycle, sessions};
use crate::error::Error;

/// The ops, in the order the docs list them.
const OPS: &str = "send, steer, abort, pause, resume, patch, compact, reset";

/// A command with its arguments checked for shape (the rules on their values are
/// the HTTP route's, applied when it runs).
#[derive(Debug, Clone)]
enum Op {
    Send(SendRequest),
    Steer(SendRequest),
    Abort(AbortRequest),
    Pause,
    Resume,
    // Boxed: a patch is several times larger than the other commands.
    Patch(Box<PatchSessionRequest>),
    Compact(CompactRequest),
    Reset,
}

/// One client frame, ready for the worker: a command, or the reason it cannot
/// run (answered in order with the rest).
#[derive(Debug, Clone)]
pub(super) struct Job {
    id: Option<String>,
    op: Result<Op, Error>,
}

impl Job {
    /// A frame refused before it was read (binary, too large): `id` is unknown.
    pub(super) fn refused(error: Error) -> Self {
        Self {
            id: None,
            op: Err(error),
        }
    }

    /// Reads a text frame of at most `max_bytes`: `{"id", "op", ...args}`.
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
        let op = match fields.remove("op") {
            Some(Value::String(op)) => op_of(&op, fields),
            Some(_) => Err(invalid("op must be a string")),
            None => Err(invalid(&format!("a command needs an op: one of {OPS}"))),
        };
        Self { id: Some(id), op }
    }

    /// Runs the command and makes its reply.
    async fn run(self, state: &AppState, session: SessionId) -> ServerFrame {
        let outcome = match self.op {
            Ok(op) => op.run(state, session).await,
            Err(e) => Err(e),
        };
        let (ok, data, error) = match outcome {
            Ok(data) => (true, Some(data), None),
            Err(e) => (false, None, Some(ApiError::from(e).body().error)),
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

/// The op named `op` with the frame's other fields as its arguments.
fn op_of(op: &str, args: Map<String, Value>) -> Result<Op, Error> {
    Ok(match op {
        "send" => Op::Send(args_of(op, args)?),
        "steer" => Op::Steer(args_of(op, args)?),
        "abort" => Op::Abort(args_of(op, args)?),
        "pause" => no_args(op, args, Op::Pause)?,
        "resume" => no_args(op, args, Op::Resume)?,
        "patch" => Op::Patch(Box::new(args_of(op, args)?)),
        "compact" => Op::Compact(args_of(op, args)?),
        "reset" => no_args(op, args, Op::Reset)?,
        other => {
            return Err(invalid(&format!(
                "unknown op '{other}': expected one of {OPS}"
            )));
        }
    })
}

/// The request types deny unknown fields, so a misspelt argument is an error
/// here as it is in an HTTP body.
fn args_of<T: DeserializeOwned>(op: &str, args: Map<String, Value>) -> Result<T, Error> {
    serde_json::from_value(Value::Object(args))
        .map_err(|e| invalid(&format!("invalid arguments of '{op}': {e}")))
}

fn no_args(op: &str, args: Map<String, Value>, ok: Op) -> Result<Op, Error> {
    match args.keys().next() {
        None => Ok(ok),
        Some(field) => Err(invalid(&format!(
            "invalid arguments of '{op}': it takes none, got '{field}'"
        ))),
    }
}

impl Op {
    /// The HTTP route's function; its answer as JSON.
    async fn run(self, state: &AppState, id: SessionId) -> Result<Value, Error> {
        match self {
            Op::Send(req) => json(sessions::send_prompt(state, id, req).await?),
            Op::Steer(req) => json(lifecycle::steer_prompt(state, id, req).await?),
            Op::Abort(req) => json(sessions::abort_run(state, id, req).await?),
            Op::Pause => json(lifecycle::set_paused(state, id, true).await?),
            Op::Resume => json(lifecycle::set_paused(state, id, false).await?),
            Op::Patch(req) => json(lifecycle::patch_session(state, id, *req).await?),
            Op::Compact(req) => json(lifecycle::compact_session(state, id, req).await?),
            Op::Reset => json(lifecycle::reset_session(state, id).await?),
        }
    }
}

fn json<T: serde::Serialize>(answer: T) -> Result<Value, Error> {
    serde_json::to_value(answer).map_err(|e| Error::Internal(format!("unserializable answer: {e}")))
}

/// Runs the socket's commands in the order they came, one at a time, and queues
/// each reply. In order because a socket is one client's conversation: two
/// pipelined sends must reach the session in the order they were written, as
/// they would from an HTTP client that waits for each answer. Once `done` fires
/// no further command starts; the one running finishes (like an HTTP request
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

    fn parse(text: &str) -> Job {
        Job::parse(text, 1024)
    }

    fn error_of(job: &Job) -> (&'static str, String) {
        let e = job.op.as_ref().expect_err("an error");
        (e.code(), e.to_string())
    }

    #[test]
    fn commands_read_their_args_as_the_http_bodies() {
        let job = parse(r#"{"id":"a","op":"send","prompt":"hi","idempotency_key":"k1"}"#);
        assert_eq!(job.id.as_deref(), Some("a"));
        match job.op {
            Ok(Op::Send(req)) => {
                assert_eq!(req.prompt, "hi");
                assert_eq!(req.idempotency_key.as_deref(), Some("k1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(r#"{"id":"b","op":"pause"}"#).op,
            Ok(Op::Pause)
        ));
        assert!(matches!(
            parse(r#"{"id":"c","op":"abort"}"#).op,
            Ok(Op::Abort(AbortRequest { run_id: None }))
        ));
        assert!(matches!(
            parse(r#"{"id":"d","op":"compact","keep_last":3}"#).op,
            Ok(Op::Compact(CompactRequest { keep_last: 3 }))
        ));
        assert!(matches!(
            parse(r#"{"id":"e","op":"patch","label":"x"}"#).op,
            Ok(Op::Patch(_))
        ));
    }

    #[test]
    fn malformed_frames_are_refused_with_the_id_when_there_is_one() {
        for text in ["nope", "[1]", r#"{"op":"send"}"#, r#"{"id":7,"op":"send"}"#] {
            let job = parse(text);
            assert_eq!(job.id, None, "{text}");
            assert_eq!(error_of(&job).0, "invalid_request", "{text}");
        }
        let unknown = parse(r#"{"id":"x","op":"fly"}"#);
        assert_eq!(unknown.id.as_deref(), Some("x"));
        let (code, message) = error_of(&unknown);
        assert_eq!(code, "invalid_request");
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
            assert_eq!(error_of(&job).0, "invalid_request", "{text}");
        }
        let big = format!(
            r#"{{"id":"x","op":"send","prompt":"{}"}}"#,
            "a".repeat(2000)
        );
        assert_eq!(error_of(&parse(&big)).0, "payload_too_large");
    }
}
