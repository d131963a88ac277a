//! Creating a session, and what the session operations (`crate::ops`) read: the
//! session as stored, the archive, the event stream, and the driver a permission
//! answer goes to.

use futures::Stream;
use sessiond_actors::AnswerError;
use sessiond_client::model::SendResponse;
use sessiond_client::ops::SendPrompt;
use sessiond_store::{
    ChangeReason, CreateOutcome, IdempotencyRecord, IdempotencyScope, Message, ProjectId,
    SessionId, SessionMeta, SessionStatus, TenantId, Usage, now_ms,
};

use super::{DEFAULT_DRIVER, NewSession, Node};
use crate::error::{Error, Result};
use crate::events::{SessionEvent, session_events};

/// An idempotency key must be well formed before it reaches the store (where it
/// becomes part of a key name).
fn check_key(key: Option<&str>) -> Result<()> {
    match key {
        Some(k) if !sessiond_store::valid_idempotency_key(k) => Err(Error::InvalidRequest(
            "idempotency_key must be 1 to 128 characters of A-Z a-z 0-9 . _ : -".into(),
        )),
        _ => Ok(()),
    }
}

/// How long a create's idempotency key is remembered.
const CREATE_KEY_TTL_MS: u64 = 24 * 3600 * 1000;

impl Node {
    /// Creates a session; with `prompt`, also sends it. With an idempotency key, a
    /// repeat (within 24 h) returns the first session and sends nothing again.
    pub async fn create_session(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        new: NewSession,
        prompt: Option<String>,
    ) -> Result<(SessionMeta, Option<SendResponse>)> {
        check_key(new.idempotency_key.as_deref())?;
        let mut new = new;
        if let Some(parent) = new.parent_id {
            self.inherit(tenant, project, parent, &mut new).await?;
        }
        let driver = new
            .driver
            .clone()
            .unwrap_or_else(|| DEFAULT_DRIVER.to_string());
        self.drivers()
            .validate(&driver, &new.driver_options)
            .map_err(Error::InvalidRequest)?;
        let mut id = SessionId::generate();
        if let Some(key) = &new.idempotency_key {
            // The key names the session id before the session exists, so a retry
            // after any failure creates (or finds) that very session.
            let record = IdempotencyRecord {
                key: key.clone(),
                answer: id.to_string(),
                ttl_ms: CREATE_KEY_TTL_MS,
            };
            let scope = IdempotencyScope::Project(project.clone());
            if let Some(first) = self
                .backend()
                .sessions
                .claim_idempotency(tenant, &scope, &record)
                .await?
            {
                id = first.parse().map_err(|e| {
                    Error::Internal(format!("stored idempotent create answer unreadable: {e}"))
                })?;
            }
        }
        let now = now_ms();
        let meta = SessionMeta {
            id,
            tenant: tenant.clone(),
            project: project.clone(),
            key: new.key,
            parent_id: new.parent_id,
            label: new.label,
            driver,
            driver_options: new.driver_options,
            model: new.model,
            system_prompt: new.system_prompt,
            status: SessionStatus::Idle,
            last_run: None,
            usage: Usage::default(),
            error: None,
            config: new.config,
            driver_state: Default::default(),
            last_seq: 0,
            archived_upto: 0,
            paused: false,
            queued: Vec::new(),
            queue_tracked: true,
            protected: new.protected,
            created_at_ms: now,
            updated_at_ms: now,
            last_activity_ms: now,
        };
        match self.backend().sessions.create_session(&meta).await? {
            CreateOutcome::Created => {}
            CreateOutcome::KeyTaken(other) => {
                let key = meta.key.as_ref().map(|k| k.as_str()).unwrap_or_default();
                return Err(Error::Conflict(format!(
                    "session key '{key}' is already used by session {other} in project {project}"
                )));
            }
        }
        self.inner
            .ctx
            .changed(tenant, project, id, ChangeReason::Create);
        let receipt = match prompt {
            Some(p) => {
                // The create's key covers its prompt too (in the new session's
                // own scope): a retried create sends nothing twice.
                let send = SendPrompt {
                    prompt: p,
                    idempotency_key: new.idempotency_key,
                };
                Some(self.execute(tenant, id, send).await?)
            }
            None => None,
        };
        let meta = self.load(tenant, id).await?;
        Ok((meta, receipt))
    }

    /// Fills what a child session does not give from its parent.
    async fn inherit(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        parent_id: SessionId,
        new: &mut NewSession,
    ) -> Result<()> {
        let parent = self
            .backend()
            .sessions
            .load_session(tenant, parent_id)
            .await?
            .ok_or_else(|| {
                Error::InvalidRequest(format!("parent_id: session {parent_id} not found"))
            })?;
        if parent.project != *project {
            return Err(Error::InvalidRequest(format!(
                "parent_id: session {parent_id} is in project {}; a child lives in its parent's project",
                parent.project
            )));
        }
        if new.driver.is_none() {
            new.driver = Some(parent.driver.clone());
            if new.driver_options.is_empty() {
                new.driver_options = parent.driver_options.clone();
            }
        } else if new.driver.as_deref() == Some(parent.driver.as_str())
            && new.driver_options.is_empty()
        {
            new.driver_options = parent.driver_options.clone();
        }
        if new.model.is_none() {
            new.model = parent.model.clone();
        }
        let (c, p) = (&mut new.config, &parent.config);
        if c.thinking.is_none() {
            c.thinking = p.thinking;
        }
        if c.max_turns.is_none() {
            c.max_turns = p.max_turns;
        }
        if c.cwd.is_none() {
            c.cwd = p.cwd.clone();
        }
        if c.env.is_empty() {
            c.env = p.env.clone();
        }
        if c.auto_compact_tokens.is_none() {
            c.auto_compact_tokens = p.auto_compact_tokens;
            c.auto_compact_keep = p.auto_compact_keep;
        }
        Ok(())
    }

    /// The session as stored (committed state).
    pub async fn get_session(&self, tenant: &TenantId, id: SessionId) -> Result<SessionMeta> {
        self.load(tenant, id).await
    }

    /// Answers a permission request through this node's driver of the session.
    pub(crate) async fn answer_permission_here(
        &self,
        tenant: &TenantId,
        id: SessionId,
        request_id: &str,
        answer: serde_json::Value,
    ) -> Result<()> {
        let meta = self.load(tenant, id).await?;
        let driver = self.drivers().get(&meta.driver).ok_or_else(|| {
            Error::Unavailable(format!(
                "driver '{}' is not configured on this node",
                meta.driver
            ))
        })?;
        driver
            .answer_permission(id, request_id, answer)
            .map_err(|e| match e {
                AnswerError::NotPending(m) => Error::NotFound(m),
                AnswerError::Invalid(m) => Error::InvalidRequest(m),
                AnswerError::Unsupported => Error::Conflict(format!(
                    "the session's driver '{}' asks no permissions",
                    meta.driver
                )),
            })
    }

    /// A page of the session's archive: the messages compact, reset and
    /// `DELETE ?archive=true` moved out of the transcript, kept for
    /// `archive_ttl`. A deleted session's archive stays readable until then.
    pub async fn archive(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let page = self
            .backend()
            .sessions
            .read_archive(tenant, id, after_seq, limit)
            .await?;
        if page.is_empty() {
            // Tell an empty page (nothing archived yet, or past the end) from an
            // unknown session; a deleted session with an archive is known.
            let sessions = &self.backend().sessions;
            let known = sessions.load_session(tenant, id).await?.is_some()
                || !sessions.read_archive(tenant, id, 0, 1).await?.is_empty();
            if !known {
                return Err(Error::NotFound(format!(
                    "session {id}: no such session and no archive of it"
                )));
            }
        }
        Ok(page)
    }

    /// The session's events after `after_seq` (checks the session exists first).
    pub async fn events(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
    ) -> Result<impl Stream<Item = Result<SessionEvent>> + Send + 'static + use<>> {
        let meta = self.load(tenant, id).await?;
        if after_seq > meta.last_seq {
            // A client can only have seen seqs that exist; a larger one would hide
            // the messages up to it.
            return Err(Error::InvalidRequest(format!(
                "resume point {after_seq} is beyond the session's last seq {}",
                meta.last_seq
            )));
        }
        Ok(session_events(
            self.backend().clone(),
            tenant.clone(),
            id,
            after_seq,
        ))
    }
}
