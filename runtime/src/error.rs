//! The runtime's error type. It becomes HTTP in exactly one place (`api::error`).

use sessiond_actors::SessionError;
use sessiond_store::{IdError, StoreError};

/// What a node operation can fail with; each variant has a stable API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The session, run or route does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or breaks a rule.
    #[error("{0}")]
    InvalidRequest(String),
    /// The request conflicts with current state (a key already taken, ...).
    #[error("{0}")]
    Conflict(String),
    /// The request body or a field is too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The node cannot serve now (store unreachable, session stopping); retry.
    #[error("{0}")]
    Unavailable(String),
    /// No answer within the deadline.
    #[error("{0}")]
    Timeout(String),
    /// A bug: something that should not happen did.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::InvalidRequest(_) => "invalid_request",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Unavailable(_) => "unavailable",
            Self::Timeout(_) => "timeout",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            SessionError::Invalid(m) => Self::InvalidRequest(m),
            SessionError::Conflict(m) => Self::Conflict(m),
            SessionError::Unavailable(m) | SessionError::Stopped(m) => Self::Unavailable(m),
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
