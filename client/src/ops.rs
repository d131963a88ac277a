//! Session operations: one type per operation, each in its own file, with its
//! request fields, its reply type, its route, its deadline, whether it changes the
//! session and whether sending it again is safe ([`Operation`]).
//!
//! The server decodes an HTTP request, a WebSocket frame or a request forwarded
//! from another node into these same types and runs them on one path, so a rule
//! (a check, a deadline, a retry) holds on every transport at once.
//!
//! # Layout
//! One file per operation: `get`, `send`, `steer`, `abort`, `pause`, `resume`,
//! `patch`, `reset`, `compact`, `delete`, `history`, `archive`, `children`,
//! `answer_permission`. [`ALL`] lists their names.

mod abort;
mod answer_permission;
mod archive;
mod children;
mod compact;
mod delete;
mod get;
mod history;
mod patch;
mod pause;
mod reset;
mod resume;
mod send;
mod steer;

pub use abort::Abort;
pub use answer_permission::AnswerPermission;
pub use archive::Archive;
pub use children::Children;
pub use compact::Compact;
pub use delete::DeleteSession;
pub use get::GetSession;
pub use history::History;
pub use patch::PatchSession;
pub use pause::Pause;
pub use reset::Reset;
pub use resume::Resume;
pub use send::SendPrompt;
pub use steer::SteerPrompt;

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The names of every operation (the WebSocket frame's `op`), in the order the
/// docs list them.
pub const ALL: [&str; 14] = [
    GetSession::NAME,
    SendPrompt::NAME,
    SteerPrompt::NAME,
    Abort::NAME,
    Pause::NAME,
    Resume::NAME,
    PatchSession::NAME,
    Reset::NAME,
    Compact::NAME,
    DeleteSession::NAME,
    History::NAME,
    Archive::NAME,
    Children::NAME,
    AnswerPermission::NAME,
];

/// An operation on one session.
pub trait Operation:
    Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// Its name: the `op` of a WebSocket frame, the tag of a forwarded request, the
    /// label of its logs and metrics.
    const NAME: &'static str;
    /// Its HTTP route.
    const ROUTE: Route;
    /// How long the server may take to answer it.
    const DEADLINE: Deadline;
    /// Whether it changes the session: such an operation runs on the session's
    /// actor, on the node that holds the session (forwarded there); one that does
    /// not is served from the store by any node.
    const MUTATES: bool;
    /// What it answers.
    type Reply: Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static;

    /// Whether sending it again after an attempt whose answer was lost can do no
    /// harm (the first attempt may have been applied).
    fn retry_safe(&self) -> bool;
}

/// How an operation travels over HTTP: `method` on `/v1/sessions/{id}` + `path`.
/// A `{field}` in `path` is taken from (and given to) the operation's field of
/// that name; the other fields travel as `input` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path after `/v1/sessions/{id}` (`""`, `"/messages"`, ...).
    pub path: &'static str,
    /// Where the fields go.
    pub input: Input,
    /// The status of a success (200, 202, 204).
    pub success: u16,
}

/// An HTTP method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// Where an operation's fields travel over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Nowhere: the operation has no field (a body is ignored).
    None,
    /// A JSON object body (`Content-Type: application/json`).
    Body,
    /// A JSON object body that may be left out (then every field takes its default).
    OptionalBody,
    /// The query string.
    Query,
}

/// How long the server gives an operation before it answers `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The call deadline (`session.call_timeout_ms`, 30 s by default).
    Call,
    /// The call deadline plus the time an active run may take to end
    /// (`session.steer_deadline_ms`): steer and reset wait for it.
    RunEnd,
    /// The call deadline plus the abort grace (`session.abort_grace_ms`).
    Abort,
}
