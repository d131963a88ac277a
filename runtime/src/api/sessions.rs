//! Session routes: create, get, send, history, archive, abort, permission answers. The
//! lifecycle routes (steer, pause, patch, ...) are in `lifecycle`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sessiond_store::{ProjectId, SessionConfig, SessionId, SessionKey};

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiBytes, ApiJson, ApiPath, ApiQuery};
use super::model::*;
use super::validate;
use crate::error::Error;
use crate::node::NewSession;

/// Parses a session id from the path.
pub(super) fn session_id(raw: &str) -> Result<SessionId, Error> {
    raw.parse()
        .map_err(|_| Error::InvalidRequest(format!("invalid session id '{raw}': expected a UUID")))
}

fn new_session(state: &AppState, req: &CreateSessionRequest) -> Result<NewSession, Error> {
    let limits = &state.node.config().limits;
    if let Some(l) = &req.label {
        validate::label(limits, l)?;
    }
    if let Some(sp) = &req.system_prompt {
        validate::system_prompt(limits, sp)?;
    }
    if let Some(p) = &req.prompt {
        validate::prompt(limits, p)?;
    }
    let env = req.env.clone().unwrap_or_default();
    validate::env(&env)?;
    if let Some(cwd) = &req.cwd {
        validate::cwd(cwd)?;
    }
    validate::max_turns(req.max_turns)?;
    validate::auto_compact_keep(req.auto_compact_keep)?;
    validate::idempotency_key(req.idempotency_key.as_deref())?;
    Ok(NewSession {
        key: req.key.clone().map(SessionKey::new).transpose()?,
        label: req.label.clone(),
        driver: req.driver.clone(),
        driver_options: req.driver_options.clone().unwrap_or_default(),
        model: req.model.clone(),
        system_prompt: req.system_prompt.clone(),
        config: SessionConfig {
            env,
            cwd: req.cwd.clone(),
            thinking: req.thinking,
            max_turns: req.max_turns,
            // 0 means off, as in a patch; stored as "not set" because the session
            // compacts whenever the context reaches a set threshold.
            auto_compact_tokens: req.auto_compact_tokens.filter(|&t| t > 0),
            auto_compact_keep: req.auto_compact_keep,
        },
        parent_id: req.parent_id.map(SessionId::from_uuid),
        idempotency_key: req.idempotency_key.clone(),
    })
}

/// `POST /v1/projects/{project}/sessions`.
pub(super) async fn create(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
    ApiJson(req): ApiJson<CreateSessionRequest>,
) -> ApiResult<(StatusCode, Json<SessionEnvelope>)> {
    let project = ProjectId::new(project).map_err(Error::from)?;
    let new = new_session(&state, &req)?;
    let tenant = &state.node.config().tenant;
    let (meta, run) = state
        .node
        .create_session(tenant, &project, new, req.prompt)
        .await?;
    let body = SessionEnvelope {
        session: SessionView::from(&meta),
        run: run.map(SendResponse::from),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v1/sessions/{id}`.
pub(super) async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SessionEnvelope>> {
    let id = session_id(&id)?;
    let meta = state
        .node
        .get_session(&state.node.config().tenant, id)
        .await?;
    Ok(Json(envelope(&meta)))
}

/// A session with no run started by the answering call.
pub(super) fn envelope(meta: &sessiond_store::SessionMeta) -> SessionEnvelope {
    SessionEnvelope {
        session: SessionView::from(meta),
        run: None,
    }
}

/// The checks every prompt passes (send and steer, HTTP and WebSocket).
pub(super) fn check_prompt(state: &AppState, req: &SendRequest) -> Result<(), Error> {
    validate::prompt(&state.node.config().limits, &req.prompt)?;
    validate::idempotency_key(req.idempotency_key.as_deref())
}

/// `POST /v1/sessions/{id}/messages`.
pub(super) async fn send(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SendRequest>,
) -> ApiResult<(StatusCode, Json<SendResponse>)> {
    let receipt = send_prompt(&state, session_id(&id)?, req).await?;
    Ok((StatusCode::ACCEPTED, Json(receipt)))
}

/// Checks and sends a prompt: the send of the HTTP route and of the WebSocket.
pub(super) async fn send_prompt(
    state: &AppState,
    id: SessionId,
    req: SendRequest,
) -> Result<SendResponse, Error> {
    check_prompt(state, &req)?;
    let receipt = state
        .node
        .send(
            &state.node.config().tenant,
            id,
            req.prompt,
            req.idempotency_key,
        )
        .await?;
    Ok(receipt.into())
}

/// Default history page size.
const DEFAULT_PAGE: usize = 100;

/// `GET /v1/sessions/{id}/messages?after_seq=&limit=`.
pub(super) async fn history(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryResponse>> {
    let p = PageRequest::checked(&state, &id, &q)?;
    let tenant = &state.node.config().tenant;
    let log = state
        .node
        .history(tenant, p.id, p.after_seq, p.limit)
        .await?;
    Ok(page_response(&log))
}

/// `GET /v1/sessions/{id}/archive?after_seq=&limit=`: what compact, reset and
/// `DELETE ?archive=true` moved out of the transcript, as long as it is kept.
pub(super) async fn archive(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryResponse>> {
    let p = PageRequest::checked(&state, &id, &q)?;
    let tenant = &state.node.config().tenant;
    let page = state
        .node
        .archive(tenant, p.id, p.after_seq, p.limit)
        .await?;
    Ok(page_response(&page))
}

/// A checked page request of a transcript read (the transcript or the archive).
struct PageRequest {
    id: SessionId,
    after_seq: u64,
    limit: usize,
}

impl PageRequest {
    /// The session id parsed and the page size checked against the node's limit.
    fn checked(state: &AppState, id: &str, q: &HistoryQuery) -> Result<Self, Error> {
        let id = session_id(id)?;
        let max = state.node.config().limits.max_history_page;
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > max {
            return Err(Error::InvalidRequest(format!(
                "limit must be between 1 and {max}"
            )));
        }
        Ok(Self {
            id,
            after_seq: q.after_seq.unwrap_or(0),
            limit,
        })
    }
}

fn page_response(messages: &[sessiond_store::Message]) -> Json<HistoryResponse> {
    Json(HistoryResponse {
        messages: messages.iter().map(MessageView::from).collect(),
    })
}

/// `POST /v1/sessions/{id}/abort`; the body (`{run_id?}`) is optional.
pub(super) async fn abort(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    body: ApiBytes,
) -> ApiResult<Json<AbortResponse>> {
    let id = session_id(&id)?;
    let req: AbortRequest = body.json_or_default()?;
    Ok(Json(abort_run(&state, id, req).await?))
}

/// Aborts the active run (or only `req.run_id`): the abort of the HTTP route and
/// of the WebSocket.
pub(super) async fn abort_run(
    state: &AppState,
    id: SessionId,
    req: AbortRequest,
) -> Result<AbortResponse, Error> {
    let run_id = req.run_id.map(sessiond_store::RunId::from_uuid);
    let reply = state
        .node
        .abort(&state.node.config().tenant, id, run_id)
        .await?;
    Ok(reply.into())
}

/// `POST /v1/sessions/{id}/permissions/{request_id}` with the driver's answer
/// (acp: `{"outcome": "selected", "option_id": ...}` or `{"outcome": "cancelled"}`).
pub(super) async fn answer_permission(
    State(state): State<AppState>,
    ApiPath((id, request_id)): ApiPath<(String, String)>,
    ApiJson(answer): ApiJson<serde_json::Value>,
) -> ApiResult<Json<PermissionAnswered>> {
    let id = session_id(&id)?;
    state
        .node
        .answer_permission(&state.node.config().tenant, id, &request_id, answer)
        .await?;
    Ok(Json(PermissionAnswered {
        status: "answered".into(),
        request_id,
    }))
}
