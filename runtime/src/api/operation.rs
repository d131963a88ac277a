//! The HTTP form of every session operation: one generic handler decodes the
//! request into the operation's type, as its `Route` says (path fields, a JSON
//! body, an optional body, or the query string), runs it on the node's one path
//! and answers with the route's success status.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use serde_json::{Map, Value};
use sessiond_client::ops::{Input, Method};
use sessiond_store::SessionId;

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiBytes, ApiPath};
use crate::error::Error;
use crate::ops::{Serve, decode};

/// Parses a session id from the path.
pub(crate) fn session_id(raw: &str) -> Result<SessionId, Error> {
    raw.parse()
        .map_err(|_| Error::InvalidRequest(format!("invalid session id '{raw}': expected a UUID")))
}

/// Adds the route of `O` to `router`.
pub(crate) fn route<O: Serve>(router: axum::Router<AppState>) -> axum::Router<AppState> {
    let filter = match O::ROUTE.method {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Patch => MethodFilter::PATCH,
        Method::Delete => MethodFilter::DELETE,
    };
    let path = format!("/v1/sessions/{{id}}{}", O::ROUTE.path);
    router.route(&path, on(filter, handle::<O>))
}

/// Decodes an operation from its HTTP request: the session id and the path's
/// other fields, then the JSON body's or the query's fields, as the operation's
/// route says. What the handler runs, and what tests check against the client's
/// encoding.
pub(crate) fn decode_http<O: Serve>(
    params: Vec<(String, String)>,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(SessionId, O), Error> {
    let mut id = None;
    let mut fields = Map::new();
    for (name, value) in params {
        if name == "id" {
            id = Some(session_id(&value)?);
        } else {
            fields.insert(name, Value::String(value));
        }
    }
    let id = id.ok_or_else(|| Error::Internal("session route without an id".into()))?;
    let body_fields = match O::ROUTE.input {
        Input::None => None,
        Input::Query => {
            let op = serde_urlencoded::from_str::<O>(query.unwrap_or(""))
                .map_err(|e| Error::InvalidRequest(format!("invalid query: {e}")))?;
            return Ok((id, op));
        }
        Input::OptionalBody if body.iter().all(u8::is_ascii_whitespace) => None,
        Input::Body | Input::OptionalBody => {
            if O::ROUTE.input == Input::Body && !is_json(headers) {
                return Err(Error::InvalidRequest(
                    "expected a JSON body with Content-Type: application/json".into(),
                ));
            }
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(fields)) => Some(fields),
                Ok(_) => {
                    return Err(Error::InvalidRequest(
                        "invalid JSON body: expected a JSON object".into(),
                    ));
                }
                Err(e) => {
                    return Err(Error::InvalidRequest(format!(
                        "invalid JSON body: failed to parse the request body as JSON: {e}"
                    )));
                }
            }
        }
    };
    let mut all = body_fields.unwrap_or_default();
    all.extend(fields);
    let op = decode::<O>(all).map_err(|e| match O::ROUTE.input {
        Input::Body | Input::OptionalBody => Error::InvalidRequest(format!(
            "invalid JSON body: failed to deserialize the JSON body into the target type: {}",
            strip_op(&e)
        )),
        _ => e,
    })?;
    Ok((id, op))
}

/// Whether the request says its body is JSON (`application/json`, or a
/// `+json` type).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .is_some_and(|mime| {
            mime.eq_ignore_ascii_case("application/json")
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

/// The serde text of a decode error, without the operation's name (the route
/// names it already).
fn strip_op(e: &Error) -> String {
    let text = e.to_string();
    match text.split_once("': ") {
        Some((_, rest)) => rest.to_string(),
        None => text,
    }
}

async fn handle<O: Serve>(
    State(state): State<AppState>,
    ApiPath(params): ApiPath<Vec<(String, String)>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    let (id, op) = decode_http::<O>(params, query.as_deref(), &headers, &body)?;
    let tenant = state.node.config().tenant.clone();
    let reply = state.node.execute(&tenant, id, op).await?;
    let status = StatusCode::from_u16(O::ROUTE.success).unwrap_or(StatusCode::OK);
    if status == StatusCode::NO_CONTENT {
        return Ok(status.into_response());
    }
    Ok((status, Json(reply)).into_response())
}
