//! Errors: the stable codes the API answers with, its error body, and what a
//! client call can fail with.

use serde::{Deserialize, Serialize};

/// The stable code of an API error. Clients branch on this, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The session, run, route or resource does not exist (404).
    NotFound,
    /// The request is malformed or breaks a rule (400).
    InvalidRequest,
    /// The request conflicts with the current state: a key already taken, a full
    /// queue, a busy session (409).
    Conflict,
    /// The session is protected: delete and reset are refused until a patch sets
    /// `protected: false` (409).
    Protected,
    /// The body or a field is too large (413).
    PayloadTooLarge,
    /// The route exists with another method (405).
    MethodNotAllowed,
    /// The server cannot serve now (store unreachable, session moving, node
    /// stopping or overloaded); retry (503).
    Unavailable,
    /// No answer within the deadline; the operation may or may not have been
    /// applied (504).
    Timeout,
    /// A bug on the server; the answer's `error_id` is in its log (500).
    Internal,
    /// A code this client does not know (a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code a server of this version answers (all but `Unknown`).
    pub const SENT: [ErrorCode; 9] = [
        Self::NotFound,
        Self::InvalidRequest,
        Self::Conflict,
        Self::Protected,
        Self::PayloadTooLarge,
        Self::MethodNotAllowed,
        Self::Unavailable,
        Self::Timeout,
        Self::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::InvalidRequest => "invalid_request",
            Self::Conflict => "conflict",
            Self::Protected => "protected",
            Self::PayloadTooLarge => "payload_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }

    /// The HTTP status the API answers this code with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::InvalidRequest => 400,
            Self::Conflict | Self::Protected => 409,
            Self::PayloadTooLarge => 413,
            Self::MethodNotAllowed => 405,
            Self::Unavailable => 503,
            Self::Timeout => 504,
            Self::Internal | Self::Unknown => 500,
        }
    }

    /// Whether the same request may succeed if sent again later (the server was
    /// busy, moving the session, or did not answer in time).
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Unavailable | Self::Timeout)
    }
}

/// Written by hand, not derived: `Unknown` is the client's name for a code it does
/// not know (`#[serde(other)]`), never an answer of the server, so the schema lists
/// the codes a server answers and says that a newer one may answer others.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Self::SENT.map(Self::as_str)))
            .description(Some(
                "The stable code of an API error: clients branch on this, never on the \
                 message. A newer server may answer a code not listed here: handle it by its \
                 HTTP status (the Rust client reads it as `Unknown`).",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ErrorCode {}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error shape of the API: `{"error": {"code", "message", "error_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code, message and id of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable code: what a client branches on.
    pub code: ErrorCode,
    /// What happened, for people. Never carries store or driver internals.
    pub message: String,
    /// Names this error in the server's log (the log line carries the same id and
    /// the internal detail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
}

/// What a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error.
    #[error("{code} ({status}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable code.
        code: ErrorCode,
        /// What happened.
        message: String,
        /// The id the server's log line carries.
        error_id: Option<String>,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the server at {url}")]
    Transport {
        /// The server.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered something that is not the API's shape.
    #[error("unexpected answer from the server ({status}): {detail}")]
    Unexpected {
        /// The HTTP status (0 on a WebSocket).
        status: u16,
        /// What was wrong with it.
        detail: String,
    },
    /// The WebSocket failed.
    #[error("websocket: {0}")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// No answer within the client's deadline (the operation may or may not have
    /// been applied).
    #[error("no answer to {what} within {after:?}")]
    TimedOut {
        /// The operation.
        what: &'static str,
        /// How long the client waited.
        after: std::time::Duration,
    },
    /// The client was given something it cannot use (a bad URL, an unencodable
    /// request).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The API's code, when the server answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The error of an API error body answered with `status`.
    pub fn from_body(status: u16, body: ErrorBody) -> Self {
        Self::Api {
            status,
            code: body.error.code,
            message: body.error.message,
            error_id: body.error.error_id,
        }
    }
}

/// Result of client calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_unknown_ones_are_kept_apart() {
        for code in ErrorCode::SENT {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), code);
        }
        let newer: ErrorCode = serde_json::from_str("\"rate_limited\"").unwrap();
        assert_eq!(newer, ErrorCode::Unknown);
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"protected","message":"no"}}"#).unwrap();
        assert_eq!(body.error.code, ErrorCode::Protected);
        assert_eq!(body.error.error_id, None);
    }
}
