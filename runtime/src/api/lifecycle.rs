//! Lifecycle routes of one session: steer, pause, resume, patch, reset, delete,
//! compact. Each checks its input here and hands the change to the node, which
//! routes it through the session's actor. The checking-and-handing-over is a
//! function of its own (`steer_prompt`, `set_paused`, ...) that the WebSocket
//! calls too, so both transports answer alike.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sessiond_store::SessionId;

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::model::*;
use super::sessions::{check_prompt, envelope, session_id};
use super::validate;
use crate::error::Error;

/// `POST /v1/sessions/{id}/steer`: ends the active run, then runs this prompt
/// before any queued one.
pub(super) async fn steer(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SendRequest>,
) -> ApiResult<(StatusCode, Json<SteerResponse>)> {
    let receipt = steer_prompt(&state, session_id(&id)?, req).await?;
    Ok((StatusCode::ACCEPTED, Json(receipt)))
}

/// Checks and steers a prompt (HTTP and WebSocket).
pub(super) async fn steer_prompt(
    state: &AppState,
    id: SessionId,
    req: SendRequest,
) -> Result<SteerResponse, Error> {
    check_prompt(state, &req)?;
    let receipt = state
        .node
        .steer(
            &state.node.config().tenant,
            id,
            req.prompt,
            req.idempotency_key,
        )
        .await?;
    Ok(receipt.into())
}

/// `POST /v1/sessions/{id}/pause` (no body).
pub(super) async fn pause(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SessionEnvelope>> {
    Ok(Json(set_paused(&state, session_id(&id)?, true).await?))
}

/// `POST /v1/sessions/{id}/resume` (no body).
pub(super) async fn resume(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SessionEnvelope>> {
    Ok(Json(set_paused(&state, session_id(&id)?, false).await?))
}

/// Pauses (`true`) or resumes (`false`) the session (HTTP and WebSocket).
pub(super) async fn set_paused(
    state: &AppState,
    id: SessionId,
    paused: bool,
) -> Result<SessionEnvelope, Error> {
    let meta = state
        .node
        .set_paused(&state.node.config().tenant, id, paused)
        .await?;
    Ok(envelope(&meta))
}

/// The rules of create, for the fields a patch may change (the node checks a new
/// driver and its options). An empty `cwd` clears it, so only a non-empty one must
/// be a path.
fn check_patch(state: &AppState, req: &PatchSessionRequest) -> Result<(), Error> {
    let limits = &state.node.config().limits;
    if let Some(l) = &req.label {
        validate::label(limits, l)?;
    }
    if let Some(sp) = &req.system_prompt {
        validate::system_prompt(limits, sp)?;
    }
    if let Some(env) = &req.env {
        validate::env(env)?;
    }
    if let Some(cwd) = req.cwd.as_deref().filter(|c| !c.is_empty()) {
        validate::cwd(cwd)?;
    }
    validate::max_turns(req.max_turns)?;
    validate::auto_compact_keep(req.auto_compact_keep)
}

/// `PATCH /v1/sessions/{id}`: changes settings; `{}` changes nothing and answers
/// the session.
pub(super) async fn patch(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PatchSessionRequest>,
) -> ApiResult<Json<SessionEnvelope>> {
    Ok(Json(patch_session(&state, session_id(&id)?, req).await?))
}

/// Checks and applies a patch (HTTP and WebSocket).
pub(super) async fn patch_session(
    state: &AppState,
    id: SessionId,
    req: PatchSessionRequest,
) -> Result<SessionEnvelope, Error> {
    check_patch(state, &req)?;
    let meta = state
        .node
        .patch(&state.node.config().tenant, id, req.into())
        .await?;
    Ok(envelope(&meta))
}

/// `POST /v1/sessions/{id}/reset` (no body): a fresh transcript, the old one
/// archived.
pub(super) async fn reset(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SessionEnvelope>> {
    Ok(Json(reset_session(&state, session_id(&id)?).await?))
}

/// Resets the session (HTTP and WebSocket).
pub(super) async fn reset_session(
    state: &AppState,
    id: SessionId,
) -> Result<SessionEnvelope, Error> {
    let meta = state.node.reset(&state.node.config().tenant, id).await?;
    Ok(envelope(&meta))
}

/// `DELETE /v1/sessions/{id}?archive=`: 204 once the session is gone.
pub(super) async fn delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let id = session_id(&id)?;
    state
        .node
        .delete(&state.node.config().tenant, id, q.archive.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sessions/{id}/compact`: archives all but the last `keep_last`
/// messages.
pub(super) async fn compact(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CompactRequest>,
) -> ApiResult<Json<CompactResponse>> {
    Ok(Json(compact_session(&state, session_id(&id)?, req).await?))
}

/// Checks `keep_last` and compacts (HTTP and WebSocket).
pub(super) async fn compact_session(
    state: &AppState,
    id: SessionId,
    req: CompactRequest,
) -> Result<CompactResponse, Error> {
    let keep = validate::within("keep_last", req.keep_last, 0..=validate::MAX_KEEP_LAST)?;
    let report = state
        .node
        .compact(&state.node.config().tenant, id, keep)
        .await?;
    Ok(report.into())
}
