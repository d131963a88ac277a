//! The frames of a session's WebSocket (`GET /v1/sessions/{id}/ws`): commands in,
//! events and replies out, each one JSON text frame. The event payloads are the
//! SSE stream's, so a client can switch transports without new parsing.

use serde::{Deserialize, Serialize};

use super::{MessageView, StatusView};
use crate::error::{ErrorBody, ErrorDetail};

/// A frame the server sends, tagged by `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A committed message.
    Message {
        /// Its seq as text, like the SSE `id:`: the resume point (`?after_seq=`).
        id: String,
        /// The message.
        data: MessageView,
    },
    /// The session's status (first the current one, then each change).
    Status {
        /// The status.
        data: StatusView,
    },
    /// The stream fell behind and re-reads the log from `after_seq`.
    Lagged {
        /// Where the catch-up starts.
        data: LaggedView,
    },
    /// The active run showed no driver activity for a while.
    Stalled {
        /// The quiet run.
        data: StalledView,
    },
    /// The event stream failed; the server closes the socket next (code 1011) and
    /// the client reconnects with `?after_seq=` of the last message it saw.
    Error {
        /// What failed, in the error shape.
        data: ErrorBody,
    },
    /// The answer to one command.
    Reply(Reply),
}

impl ServerFrame {
    /// The `event` names of the frames this version knows; a client skips others
    /// (a newer server's).
    pub const KNOWN: [&'static str; 6] =
        ["message", "status", "lagged", "stalled", "error", "reply"];
}

/// The answer to a command: `data` when `ok`, `error` otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CommandReply))]
pub struct Reply {
    /// The command's `id`; `null` when the frame had none (it could not be read).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub id: Option<String>,
    /// Whether the command succeeded.
    pub ok: bool,
    /// What the command's HTTP route answers (a send receipt, a session envelope, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// Why it failed: the `error` of the API's error shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// The data of a `lagged` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LaggedView {
    /// The last seq sent before the catch-up.
    pub after_seq: u64,
}

/// The data of a `stalled` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StalledView {
    /// The quiet run.
    pub run_id: uuid::Uuid,
    /// How long it has been quiet.
    pub idle_ms: u64,
}

/// A command a client sends: `{"id", "op", ...args}`, the args being the fields
/// of the op's HTTP body (`prompt`, `idempotency_key`, `run_id`, `keep_last`, or
/// a patch's fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientCommand {
    /// The client's correlation string, echoed in the reply.
    pub id: String,
    /// `send`, `steer`, `abort`, `pause`, `resume`, `patch`, `compact` or `reset`.
    pub op: String,
    /// The op's arguments, flattened into the frame.
    #[serde(flatten)]
    pub args: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_names_every_kind_of_frame() {
        let status = json!({"session_id": "s", "status": "idle", "last_seq": 0,
            "last_run": null, "updated_at": "t",
            "usage": {"input_tokens": 0, "output_tokens": 0, "context_tokens": 0, "cost_usd": 0.0}});
        let message = json!({"seq": 1, "id": "m", "run_id": null, "role": "user",
            "content": "", "timestamp": "t"});
        let frames = [
            json!({"event": "message", "id": "1", "data": message}),
            json!({"event": "status", "data": status}),
            json!({"event": "lagged", "data": {"after_seq": 1}}),
            json!({"event": "stalled", "data": {"run_id": "01a1fca6-b0a9-735c-9e7a-bea7febb46e1", "idle_ms": 5}}),
            json!({"event": "error", "data": {"error": {"code": "internal", "message": "x"}}}),
            json!({"event": "reply", "id": "1", "ok": true}),
        ];
        for frame in frames {
            let parsed: ServerFrame = serde_json::from_value(frame.clone()).expect("a frame");
            let back = serde_json::to_value(parsed).unwrap();
            let name = back["event"].as_str().unwrap();
            assert!(ServerFrame::KNOWN.contains(&name), "{name}");
        }
        assert!(serde_json::from_value::<ServerFrame>(json!({"event": "delta"})).is_err());
    }

    #[test]
    fn frames_have_the_documented_shape() {
        let reply = ServerFrame::Reply(Reply {
            id: None,
            ok: false,
            data: None,
            error: Some(ErrorDetail {
                code: crate::ErrorCode::InvalidRequest,
                error_id: None,
                message: "bad".into(),
            }),
        });
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            json!({"event": "reply", "id": null, "ok": false,
                   "error": {"code": "invalid_request", "message": "bad"}})
        );
        let lagged = ServerFrame::Lagged {
            data: LaggedView { after_seq: 7 },
        };
        assert_eq!(
            serde_json::to_value(&lagged).unwrap(),
            json!({"event": "lagged", "data": {"after_seq": 7}})
        );
        let back: ServerFrame = serde_json::from_value(json!(
            {"event": "reply", "id": "a", "ok": true, "data": {"x": 1}}
        ))
        .unwrap();
        assert!(matches!(back, ServerFrame::Reply(Reply { ok: true, .. })));
    }

    #[test]
    fn a_command_flattens_its_args() {
        let cmd = ClientCommand {
            id: "1".into(),
            op: "send".into(),
            args: json!({"prompt": "hi"}).as_object().unwrap().clone(),
        };
        assert_eq!(
            serde_json::to_value(&cmd).unwrap(),
            json!({"id": "1", "op": "send", "prompt": "hi"})
        );
    }
}
