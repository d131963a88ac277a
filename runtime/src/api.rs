//! The HTTP API under `/v1` (axum): JSON in and out, SSE for events, one error
//! shape with stable codes. `router(state)` builds it without a socket, so tests
//! call it directly.

pub mod error;
pub mod extract;
pub mod model;
pub mod validate;

mod events;
mod health;
mod sessions;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::error::Error;
use crate::node::Node;
use error::ApiError;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The node serving requests.
    pub node: Node,
}

/// All routes.
pub fn router(state: AppState) -> Router {
    let max_body = state.node.config().limits.max_body_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::metrics::render))
        .route("/v1/projects/{project}/sessions", post(sessions::create))
        .route("/v1/sessions/{id}", get(sessions::get))
        .route(
            "/v1/sessions/{id}/messages",
            post(sessions::send).get(sessions::history),
        )
        .route("/v1/sessions/{id}/abort", post(sessions::abort))
        .route("/v1/sessions/{id}/events", get(events::sse))
        .route(
            "/v1/sessions/{id}/permissions/{request_id}",
            post(sessions::answer_permission),
        )
        .fallback(|| async { ApiError::from(Error::NotFound("no such route".into())) })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}
