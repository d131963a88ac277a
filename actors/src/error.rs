//! Errors of session and project operations.

use std::sync::Arc;

use sessiond_store::StoreError;

use crate::writer::WriteError;

/// What a session operation can fail with. Delivery failures (the actor is gone or
/// did not answer in time) map to `Unavailable` and `Timeout`; the rest come from
/// the handler.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    /// The session (or run) does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request is malformed or not allowed in this state.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The session is protected: delete and reset are refused until a patch lifts
    /// it.
    #[error(
        "session {0} is protected: patch it with protected=false before deleting or resetting it"
    )]
    Protected(sessiond_store::SessionId),
    /// The prompt queue is full.
    #[error("queue-full: {0} prompts already wait; retry after a run ends")]
    QueueFull(usize),
    /// The session cannot serve now (store down, actor stopped, lease lost); retry.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed (its detail is for the log, not for clients).
    #[error("the store is unavailable")]
    Store(#[source] Arc<StoreError>),
    /// A write of the session could not be persisted (its detail is for the log).
    #[error("the session's write could not be persisted")]
    Write(#[source] WriteError),
    /// No answer within the call's deadline.
    #[error("{0} timed out")]
    Timeout(String),
    /// The actor was gone before it handled the request (passivated, restarted,
    /// stopping): the request had no effect and may be sent again.
    #[error("{0}")]
    Stopped(String),
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Store(Arc::new(other)),
        }
    }
}

/// Maps the fate of an actor call to our errors: a delivery failure (the actor is
/// gone) is `Unavailable`, no answer in time is `Timeout`; `what` names the call.
pub(crate) fn call_result<T, M>(
    result: std::result::Result<ractor::rpc::CallResult<T>, ractor::MessagingErr<M>>,
    what: impl FnOnce() -> String,
) -> Result<T> {
    match result {
        Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
        Ok(ractor::rpc::CallResult::Timeout) => Err(SessionError::Timeout(what())),
        Ok(ractor::rpc::CallResult::SenderError) | Err(_) => {
            Err(SessionError::Stopped(format!("{} stopped; retry", what())))
        }
    }
}

/// Result of session and project operations.
pub type Result<T, E = SessionError> = std::result::Result<T, E>;

/// Why a session actor refused to start: a planned stop, never restarted by the
/// project supervisor (a crash is restarted; this is not a crash).
#[derive(Debug, thiserror::Error)]
#[error("session did not start: {0}")]
pub struct StartRefused(pub SessionError);
