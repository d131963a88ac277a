//! The one place errors become HTTP: status by code, one JSON shape, no internals.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::model::{ErrorBody, ErrorDetail};
use crate::error::Error;

/// An API error response. Built from [`Error`] and from extractor rejections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 405 for a route that exists with another method.
    pub fn method_not_allowed() -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: "method not allowed on this route".into(),
        }
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            // Never leak internals.
            Error::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        Self {
            status,
            code: e.code(),
            message,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let e = match &r {
            JsonRejection::MissingJsonContentType(_) => Error::InvalidRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            ),
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Error::PayloadTooLarge("request body too large".into())
            }
            _ => {
                Error::InvalidRequest(format!("invalid JSON body: {}", lower_first(r.body_text())))
            }
        };
        e.into()
    }
}

/// Framework texts start with a capital; ours do not.
fn lower_first(text: String) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        let e = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge("request body too large".into())
        } else {
            Error::InvalidRequest(format!("unreadable body: {}", lower_first(r.body_text())))
        };
        e.into()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Error::InvalidRequest(format!("invalid query: {}", lower_first(r.body_text()))).into()
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Error::InvalidRequest(format!("invalid path: {}", lower_first(r.body_text()))).into()
    }
}

impl From<WebSocketUpgradeRejection> for ApiError {
    fn from(r: WebSocketUpgradeRejection) -> Self {
        Error::InvalidRequest(format!(
            "expected a WebSocket upgrade: {}",
            lower_first(r.body_text())
        ))
        .into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read: the connection cannot carry another
            // request, so say so rather than let a client reuse it and fail.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// Result of handlers.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
