//! `POST /v1/projects/{project}/sessions`: creating a session (the operations on
//! a session are `crate::ops`, served by `operation`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sessiond_client::model::{CreateSessionRequest, SessionEnvelope};
use sessiond_store::{ProjectId, SessionConfig, SessionId, SessionKey};

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath};
use super::validate;
use super::views::session_view;
use crate::error::Error;
use crate::node::NewSession;

/// The key whose session is protected unless the create says otherwise (as
/// OpenClaw protects its main session).
pub(super) const PROTECTED_KEY: &str = "main";

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
        protected: req
            .protected
            .unwrap_or(req.key.as_deref() == Some(PROTECTED_KEY)),
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
        session: session_view(&meta),
        run,
    };
    Ok((StatusCode::CREATED, Json(body)))
}
