//! Liveness, readiness and what the node holds.

use axum::Json;
use axum::extract::State;

use super::AppState;
use super::error::ApiResult;
use sessiond_client::model::{Health, NodeView};

use super::views::node_view;

fn health(state: &AppState) -> Health {
    Health {
        status: "ok".into(),
        node_id: state.node.id().to_string(),
        store: state.node.backend().kind.to_string(),
    }
}

/// `GET /healthz`: the process serves HTTP.
pub(super) async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(health(&state))
}

/// `GET /readyz`: the store answers too.
pub(super) async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.node.ready().await?;
    Ok(Json(health(&state)))
}

/// `GET /v1/node`: this node's id, store and session counts (resident here, stored
/// for its tenant).
pub(super) async fn node(State(state): State<AppState>) -> ApiResult<Json<NodeView>> {
    let info = state.node.info(&state.node.config().tenant).await?;
    Ok(Json(node_view(info)))
}
