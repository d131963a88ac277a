//! The one place errors become HTTP: status by code, one JSON shape
//! (`sessiond_client::ErrorBody`), no internals. Each error gets an id; the
//! response carries it and the log line written for it (by [`log_failures`] over
//! HTTP, by the WebSocket's reply) carries it with the internal detail.

use std::error::Error as _;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sessiond_client::ErrorCode;
use sessiond_client::model::{ErrorBody, ErrorDetail};

use crate::error::Error;

/// An API error response. Built from [`Error`] and from extractor rejections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    error_id: String,
    /// The whole error chain, for the log line only.
    detail: Option<Arc<str>>,
}

impl ApiError {
    fn new(code: ErrorCode, message: String, detail: Option<String>) -> Self {
        Self {
            code,
            message,
            error_id: uuid::Uuid::now_v7().simple().to_string(),
            detail: detail.map(Arc::from),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The id the response and the log line carry.
    pub fn error_id(&self) -> &str {
        &self.error_id
    }

    /// 405 for a route that exists with another method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            ErrorCode::MethodNotAllowed,
            "method not allowed on this route".into(),
            None,
        )
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                error_id: Some(self.error_id.clone()),
            },
        }
    }

    /// Writes the log line of this error: server-side failures at `warn` with their
    /// internal detail, a client's mistakes at `debug`. Both carry the error id.
    pub fn log(&self, route: &str) {
        let detail = self.detail.as_deref().unwrap_or(&self.message);
        if self.code.http_status() >= 500 {
            tracing::warn!(error_id = %self.error_id, code = %self.code, route, detail, "request failed");
        } else {
            tracing::debug!(error_id = %self.error_id, code = %self.code, route, detail, "request refused");
        }
    }
}

/// The error and its sources, `: `-joined, for a log line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if let Error::Remote {
            code,
            message,
            error_id: Some(id),
        } = &e
        {
            // The holder's id: its log line has the detail.
            return Self {
                code: *code,
                message: message.clone(),
                error_id: id.clone(),
                detail: Some(Arc::from(format!(
                    "answered by the node holding the session: {message}"
                ))),
            };
        }
        let detail = (e.source().is_some() || matches!(e, Error::Internal(_))).then(|| chain(&e));
        Self::new(e.code(), e.public_message(), detail)
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
pub(crate) fn lower_first(text: String) -> String {
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
        let mut response = (self.status(), Json(self.body())).into_response();
        if self.code == ErrorCode::PayloadTooLarge {
            // The rest of the body was never read: the connection cannot carry another
            // request, so say so rather than let a client reuse it and fail.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        // For `log_failures`: the response is where the error's detail meets the
        // request's route.
        response.extensions_mut().insert(self);
        response
    }
}

/// Logs every error response once, with its id (see [`ApiError::log`]).
pub(crate) async fn log_failures(
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if let Some(error) = response.extensions().get::<ApiError>() {
        let route = matched.as_ref().map_or("unmatched", |m| m.as_str());
        error.log(route);
    }
    response
}

/// Result of handlers.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
