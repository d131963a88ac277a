//! The drivers' error type, for what a driver's own API refuses (the run itself ends
//! with a [`DriverOutcome`](sessiond_actors::DriverOutcome), not an error).

/// What a driver's API call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Nothing such waits (a permission request answered already, or whose run ended).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or breaks a rule (an option that was not offered).
    #[error("{0}")]
    InvalidRequest(String),
}

/// Result of the drivers' API calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
