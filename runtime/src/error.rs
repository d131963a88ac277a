//! The runtime's error type. Each kind has a stable [`ErrorCode`]; it becomes HTTP
//! (or a WebSocket reply, or a forwarded answer) in exactly one place, `api::error`.
//! Kinds that wrap an internal failure (the store, a write, a bug) keep it as their
//! `#[source]`, for the log line; clients see the kind's own message and an error
//! id that the log line carries too.

use std::sync::Arc;

use sessiond_actors::SessionError;
use sessiond_client::ErrorCode;
use sessiond_store::{IdError, StoreError};

/// What a node operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The session, run or route does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or breaks a rule.
    #[error("{0}")]
    InvalidRequest(String),
    /// The request conflicts with current state (a key already taken, a full
    /// queue, a busy session).
    #[error("{0}")]
    Conflict(String),
    /// The session is protected: delete and reset are refused.
    #[error("{0}")]
    Protected(String),
    /// The request body or a field is too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The node cannot serve now (session moving or stopping, node stopping or
    /// busy); retry. The message is ours and safe to show.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed; the detail stays in the log.
    #[error("the store is unavailable; retry")]
    Store(#[source] Arc<StoreError>),
    /// A session's write could not be persisted; the detail stays in the log.
    #[error("the session's write could not be persisted; retry")]
    Write(#[source] sessiond_actors::writer::WriteError),
    /// No answer within the deadline.
    #[error("{0}")]
    Timeout(String),
    /// A bug: something that should not happen did. The text is for the log.
    #[error("internal error: {0}")]
    Internal(String),
    /// The node holding the session answered a forwarded request with this error
    /// (its public message; the holder's log has the detail under `error_id`).
    #[error("{message}")]
    Remote {
        /// The holder's code.
        code: ErrorCode,
        /// The holder's public message.
        message: String,
        /// The id the holder logged it under.
        error_id: Option<String>,
    },
}

impl Error {
    /// The stable code clients match on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Protected(_) => ErrorCode::Protected,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Unavailable(_) | Self::Store(_) | Self::Write(_) => ErrorCode::Unavailable,
            Self::Timeout(_) => ErrorCode::Timeout,
            Self::Internal(_) => ErrorCode::Internal,
            Self::Remote { code, .. } => *code,
        }
    }

    /// What a client may be told: the message of every kind but `Internal`, whose
    /// text is for the log only.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            SessionError::Invalid(m) => Self::InvalidRequest(m),
            SessionError::Conflict(m) => Self::Conflict(m),
            e @ SessionError::QueueFull(_) => Self::Conflict(e.to_string()),
            e @ SessionError::Protected(_) => Self::Protected(e.to_string()),
            SessionError::Unavailable(m) | SessionError::Stopped(m) => Self::Unavailable(m),
            SessionError::Store(e) => Self::Store(e),
            SessionError::Write(e) => Self::Write(e),
            SessionError::Timeout(m) => Self::Timeout(format!("{m} timed out")),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        SessionError::from(e).into()
    }
}

impl From<IdError> for Error {
    fn from(e: IdError) -> Self {
        Self::InvalidRequest(e.to_string())
    }
}

/// Result of node operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
