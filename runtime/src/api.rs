//! The HTTP API under `/v1` (axum): JSON in and out, SSE for events, a WebSocket
//! per session for events and operations, one error shape with stable codes. The
//! wire types are `sessiond_client`'s. `router(state)` builds it without a socket,
//! so tests call it directly.
//!
//! # Layout
//! - `operation`: the HTTP form of every session operation (`crate::ops`)
//! - `sessions`: create; `projects`: lists, by-key, preview, retention
//! - `events`, `project_events`: the SSE streams; `ws`: the session WebSocket
//! - `health`: liveness, readiness, node info; `openapi`: the OpenAPI document
//! - `error`: errors to HTTP, in one place; `extract`: extractors in that shape
//! - `validate`: input rules; `views`: the wire views of server records

pub mod error;
pub mod extract;
pub mod openapi;
pub mod validate;
pub mod views;

pub(crate) mod operation;

mod events;
mod health;
mod project_events;
mod projects;
mod sessions;
mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::node::Node;
use error::ApiError;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The node serving requests.
    pub node: Node,
    /// Open WebSockets. An upgraded connection leaves the HTTP server's graceful
    /// shutdown, so the server waits on these instead, and each socket gets its
    /// close frame before the process exits.
    pub sockets: TaskTracker,
}

impl AppState {
    /// The state for `node`, with no socket open.
    pub fn new(node: Node) -> Self {
        Self {
            node,
            sockets: TaskTracker::new(),
        }
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    let max_body = state.node.config().limits.max_body_bytes;
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::metrics::render))
        .route("/v1/node", get(health::node))
        .route("/v1/openapi.json", get(openapi::serve))
        .route(
            "/v1/projects/{project}/sessions",
            post(sessions::create).get(projects::list),
        )
        .route(
            "/v1/projects/{project}/sessions/by-key/{key}",
            get(projects::by_key),
        )
        .route("/v1/projects/{project}/events", get(project_events::sse))
        .route(
            "/v1/projects/{project}/retention",
            get(projects::retention).put(projects::set_retention),
        )
        // A static segment wins over `{id}`, so this is no session id.
        .route("/v1/sessions/preview", post(projects::preview))
        .route("/v1/sessions/{id}/events", get(events::sse))
        .route("/v1/sessions/{id}/ws", get(ws::upgrade));
    // Every session operation's route, from the one list of operations.
    let router = crate::ops::OPERATIONS
        .iter()
        .fold(router, |router, op| op.route(router));
    router
        .fallback(|| async { ApiError::from(Error::NotFound("no such route".into())) })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(error::log_failures))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}
