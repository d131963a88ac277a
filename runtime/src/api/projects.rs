//! Routes over many sessions: a project's list, a key's session, the preview of
//! many sessions, a project's retention policy.

use axum::Json;
use axum::extract::State;
use sessiond_client::model::*;
use sessiond_store::{ProjectId, RetentionPolicy, SessionId, SessionKey, SessionStatus};

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::validate;
use super::views::{envelope, preview_view, retention_view, session_view};
use crate::error::Error;
use crate::node::{ListQuery, SessionPage};
use crate::ops::list_limit;

const MAX_PREVIEW_IDS: usize = 64;
/// Default messages per previewed session.
const DEFAULT_PREVIEW_LIMIT: usize = 5;
/// Most messages per previewed session.
const MAX_PREVIEW_LIMIT: usize = 100;
/// Default characters kept of a previewed message.
const DEFAULT_PREVIEW_CHARS: usize = 2000;
/// Most characters kept of a previewed message.
const MAX_PREVIEW_CHARS: usize = 100_000;

fn project_id(raw: String) -> Result<ProjectId, Error> {
    Ok(ProjectId::new(raw)?)
}

/// Parses a status filter. Not through serde: the record's enum maps any unknown
/// name to `Unknown`, which would quietly match nothing instead of saying why.
fn status_filter(raw: &str) -> Result<SessionStatus, Error> {
    Ok(match raw {
        "idle" => SessionStatus::Idle,
        "running" => SessionStatus::Running,
        "paused" => SessionStatus::Paused,
        "error" => SessionStatus::Error,
        "interrupted" => SessionStatus::Interrupted,
        other => {
            return Err(Error::InvalidRequest(format!(
                "status '{other}' is not one of idle, running, paused, error, interrupted"
            )));
        }
    })
}

fn list_response(page: SessionPage) -> Json<SessionListResponse> {
    Json(SessionListResponse {
        sessions: page.sessions.iter().map(session_view).collect(),
        next_cursor: page.next_cursor,
    })
}

/// `GET /v1/projects/{project}/sessions?status=&label=&limit=&cursor=`.
pub(super) async fn list(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListSessionsQuery>,
) -> ApiResult<Json<SessionListResponse>> {
    let project = project_id(project)?;
    let query = ListQuery {
        status: q.status.as_deref().map(status_filter).transpose()?,
        label: q.label,
        parent_id: None,
        limit: list_limit(q.limit)?,
        cursor: q.cursor,
    };
    let page = state
        .node
        .list_sessions(&state.node.config().tenant, &project, query)
        .await?;
    Ok(list_response(page))
}

/// `GET /v1/projects/{project}/sessions/by-key/{key}`.
pub(super) async fn by_key(
    State(state): State<AppState>,
    ApiPath((project, key)): ApiPath<(String, String)>,
) -> ApiResult<Json<SessionEnvelope>> {
    let project = project_id(project)?;
    let key = SessionKey::new(key).map_err(Error::from)?;
    let meta = state
        .node
        .resolve_key(&state.node.config().tenant, &project, &key)
        .await?;
    Ok(Json(envelope(&meta)))
}

/// `GET /v1/sessions/{id}/children?limit=&cursor=`: the parent's project listed
/// for its children.
pub(super) async fn preview(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<Json<PreviewResponse>> {
    if req.ids.is_empty() || req.ids.len() > MAX_PREVIEW_IDS {
        return Err(Error::InvalidRequest(format!(
            "ids must hold 1 to {MAX_PREVIEW_IDS} session ids (got {})",
            req.ids.len()
        ))
        .into());
    }
    let limit = validate::within(
        "limit",
        req.limit.unwrap_or(DEFAULT_PREVIEW_LIMIT),
        1..=MAX_PREVIEW_LIMIT,
    )?;
    let max_chars = validate::within(
        "max_chars",
        req.max_chars.unwrap_or(DEFAULT_PREVIEW_CHARS),
        1..=MAX_PREVIEW_CHARS,
    )?;
    let ids: Vec<SessionId> = req.ids.into_iter().map(SessionId::from_uuid).collect();
    let previews = state
        .node
        .preview(&state.node.config().tenant, &ids, limit, max_chars)
        .await?;
    Ok(Json(PreviewResponse {
        previews: previews.iter().map(preview_view).collect(),
    }))
}

/// `GET /v1/projects/{project}/retention`: the project's policy, or the node's
/// default when it set none.
pub(super) async fn retention(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
) -> ApiResult<Json<RetentionView>> {
    let project = project_id(project)?;
    let policy = state
        .node
        .retention(&state.node.config().tenant, &project)
        .await?;
    Ok(Json(retention_view(policy)))
}

/// `PUT /v1/projects/{project}/retention`: sets the policy (a missing field takes
/// the node's default) and applies it at once.
pub(super) async fn set_retention(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    ApiJson(req): ApiJson<RetentionRequest>,
) -> ApiResult<Json<RetentionView>> {
    let project = project_id(project)?;
    let default = state.node.config().session.default_retention;
    let policy = RetentionPolicy {
        max_sessions: validate::within(
            "max_sessions",
            req.max_sessions.unwrap_or(default.max_sessions),
            RetentionPolicy::MAX_SESSIONS,
        )?,
        max_age_days: validate::within(
            "max_age_days",
            req.max_age_days.unwrap_or(default.max_age_days),
            RetentionPolicy::MAX_AGE_DAYS,
        )?,
    };
    let policy = state
        .node
        .set_retention(&state.node.config().tenant, &project, policy)
        .await?;
    Ok(Json(retention_view(policy)))
}
