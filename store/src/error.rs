//! The store's error type.

use crate::codec::CodecError;

/// What a store call can fail with. Outcomes a caller must handle as normal results
/// (a fenced write, a taken lease) are not errors: see `CommitOutcome`, `LeaseGrant`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The write conflicts with what is stored (a session key already taken, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend cannot be reached or failed; the call may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data cannot be read.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A record could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(format!("redis: {e}"))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Unavailable(format!("sqlite: {e}"))
    }
}

/// Result of store calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
