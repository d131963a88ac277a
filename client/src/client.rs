//! [`Client`]: the HTTP client of the API. [`Client::call`] runs any session
//! operation; the named methods are shorthands for it and for the routes over
//! projects and the node.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorBody, Result};
use crate::events::{EventStream, ProjectEventStream};
use crate::http::encode;
use crate::model::*;
use crate::ops::{self, Deadline, Method, Operation};
use crate::ws::SessionSocket;

/// How long a call waits for its answer by default: above the server's own call
/// deadline (30 s), so the server's `timeout` answer arrives first.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of one sessiond server (any node: a node forwards what it does not
/// hold). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    token: Option<String>,
    timeout: Duration,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> Result<Self> {
        let trimmed = base.trim_end_matches('/');
        if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
            return Err(Error::Usage(format!(
                "server URL must start with http:// or https:// (got '{base}')"
            )));
        }
        let base = Url::parse(trimmed)
            .map_err(|e| Error::Usage(format!("server URL '{base}' is not a URL: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base,
            http,
            token: None,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sends `token` as `Authorization: Bearer` on every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How long a call waits for its answer (steer, reset and abort get their
    /// run-end allowance on top).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` (percent-encoded) under the base URL.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A request to `url`, with the token.
    pub(crate) fn request(&self, method: reqwest::Method, url: Url) -> RequestBuilder {
        let req = self.http.request(method, url);
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// How long a call of an operation with `deadline` waits for its answer.
    pub(crate) fn timeout_for(&self, deadline: Deadline) -> Duration {
        match deadline {
            Deadline::Call => self.timeout,
            Deadline::RunEnd | Deadline::Abort => self.timeout + Duration::from_secs(30),
        }
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Runs `op` on session `session_id` and returns its typed reply.
    pub async fn call<O: Operation>(&self, session_id: &str, op: &O) -> Result<O::Reply> {
        let req = encode(session_id, op)?;
        let segments: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        let mut url = self.url(&segments);
        url.set_query(req.query.as_deref());
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.request(method, url);
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let timeout = self.timeout_for(O::DEADLINE);
        let resp = self.execute(builder.timeout(timeout)).await?;
        if resp.status().as_u16() == 204 {
            return serde_json::from_value(serde_json::Value::Null).map_err(|e| {
                Error::Unexpected {
                    status: 204,
                    detail: e.to_string(),
                }
            });
        }
        decode(resp).await
    }

    /// Sends a request; a non-2xx answer becomes [`Error::Api`].
    pub(crate) async fn execute(&self, req: RequestBuilder) -> Result<Response> {
        let resp = req.send().await.map_err(|source| Error::Transport {
            url: self.base.to_string(),
            source,
        })?;
        check(resp).await
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        let req = self.request(reqwest::Method::GET, self.url(segments));
        decode(self.execute(req.timeout(self.timeout)).await?).await
    }

    async fn get_query<Q: Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &Q,
    ) -> Result<T> {
        let req = self
            .request(reqwest::Method::GET, self.url(segments))
            .query(query);
        decode(self.execute(req.timeout(self.timeout)).await?).await
    }

    async fn with_body<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        body: &B,
    ) -> Result<T> {
        let req = self.request(method, self.url(segments)).json(body);
        decode(self.execute(req.timeout(self.timeout)).await?).await
    }

    /// Creates a session in `project`; with `prompt`, also sends it.
    pub async fn create_session(
        &self,
        project: &str,
        req: &CreateSessionRequest,
    ) -> Result<SessionEnvelope> {
        let path = ["v1", "projects", project, "sessions"];
        self.with_body(reqwest::Method::POST, &path, req).await
    }

    /// A page of a project's sessions, newest activity first.
    pub async fn list_sessions(
        &self,
        project: &str,
        query: &ListSessionsQuery,
    ) -> Result<SessionListResponse> {
        self.get_query(&["v1", "projects", project, "sessions"], query)
            .await
    }

    /// The session holding `key` in `project`.
    pub async fn session_by_key(&self, project: &str, key: &str) -> Result<SessionEnvelope> {
        self.get(&["v1", "projects", project, "sessions", "by-key", key])
            .await
    }

    /// The last messages of many sessions at once.
    pub async fn preview(&self, req: &PreviewRequest) -> Result<PreviewResponse> {
        let path = ["v1", "sessions", "preview"];
        self.with_body(reqwest::Method::POST, &path, req).await
    }

    /// A project's retention policy.
    pub async fn retention(&self, project: &str) -> Result<RetentionView> {
        self.get(&["v1", "projects", project, "retention"]).await
    }

    /// Sets a project's retention policy (applied at once).
    pub async fn set_retention(
        &self,
        project: &str,
        req: &RetentionRequest,
    ) -> Result<RetentionView> {
        let path = ["v1", "projects", project, "retention"];
        self.with_body(reqwest::Method::PUT, &path, req).await
    }

    /// The node answering: id, store, session counts, peers.
    pub async fn node(&self) -> Result<NodeView> {
        self.get(&["v1", "node"]).await
    }

    /// Liveness (`/healthz`).
    pub async fn health(&self) -> Result<Health> {
        self.get(&["healthz"]).await
    }

    /// Readiness (`/readyz`: the store answers).
    pub async fn ready(&self) -> Result<Health> {
        self.get(&["readyz"]).await
    }

    /// The session as committed.
    pub async fn get_session(&self, id: &str) -> Result<SessionEnvelope> {
        self.call(id, &ops::GetSession {}).await
    }

    /// Sends a prompt; returns once it is durable.
    pub async fn send(&self, id: &str, prompt: impl Into<String>) -> Result<SendResponse> {
        let op = ops::SendPrompt {
            prompt: prompt.into(),
            idempotency_key: None,
        };
        self.call(id, &op).await
    }

    /// Ends the active run, then runs `prompt` first.
    pub async fn steer(&self, id: &str, prompt: impl Into<String>) -> Result<SteerResponse> {
        let op = ops::SteerPrompt {
            prompt: prompt.into(),
            idempotency_key: None,
        };
        self.call(id, &op).await
    }

    /// Aborts the active run (or only `run_id`); returns once it ended.
    pub async fn abort(&self, id: &str, run_id: Option<uuid::Uuid>) -> Result<AbortResponse> {
        self.call(id, &ops::Abort { run_id }).await
    }

    /// Pauses the session.
    pub async fn pause(&self, id: &str) -> Result<SessionEnvelope> {
        self.call(id, &ops::Pause {}).await
    }

    /// Resumes the session.
    pub async fn resume(&self, id: &str) -> Result<SessionEnvelope> {
        self.call(id, &ops::Resume {}).await
    }

    /// Changes settings.
    pub async fn patch(&self, id: &str, patch: &ops::PatchSession) -> Result<SessionEnvelope> {
        self.call(id, patch).await
    }

    /// Starts a fresh transcript (the old one archived).
    pub async fn reset(&self, id: &str) -> Result<SessionEnvelope> {
        self.call(id, &ops::Reset {}).await
    }

    /// Archives all but the last `keep_last` messages.
    pub async fn compact(&self, id: &str, keep_last: u64) -> Result<CompactResponse> {
        self.call(id, &ops::Compact { keep_last }).await
    }

    /// Removes the session; with `archive`, its transcript stays in the archive.
    pub async fn delete(&self, id: &str, archive: bool) -> Result<()> {
        let op = ops::DeleteSession {
            archive: archive.then_some(true),
        };
        self.call(id, &op).await
    }

    /// A page of the transcript (forwards, backwards or the tail: see
    /// [`ops::History`]).
    pub async fn history(&self, id: &str, page: &ops::History) -> Result<HistoryResponse> {
        self.call(id, page).await
    }

    /// A page of the session's archive.
    pub async fn archive(&self, id: &str, page: &ops::Archive) -> Result<HistoryResponse> {
        self.call(id, page).await
    }

    /// The sessions spawned from this one.
    pub async fn children(&self, id: &str, page: &ops::Children) -> Result<SessionListResponse> {
        self.call(id, page).await
    }

    /// Answers a permission request the session's run waits on.
    pub async fn answer_permission(
        &self,
        id: &str,
        request_id: &str,
        answer: serde_json::Map<String, serde_json::Value>,
    ) -> Result<PermissionAnswered> {
        let op = ops::AnswerPermission {
            request_id: request_id.to_string(),
            answer,
        };
        self.call(id, &op).await
    }

    /// The session's events after `after_seq` (`None`: the whole transcript), as an
    /// SSE stream that reconnects on its own and resumes with `Last-Event-ID`.
    pub fn events(&self, id: &str, after_seq: Option<u64>) -> EventStream {
        EventStream::new(self.clone(), id, after_seq)
    }

    /// A project's live events (`sessions.changed`, `status`); nothing to resume:
    /// after a reconnect, list the project again.
    pub async fn project_events(&self, project: &str) -> Result<ProjectEventStream> {
        ProjectEventStream::open(self, project).await
    }

    /// Opens the session's WebSocket, replaying messages after `after_seq`.
    pub async fn websocket(&self, id: &str, after_seq: Option<u64>) -> Result<SessionSocket> {
        SessionSocket::connect(self, id, after_seq).await
    }
}

/// Turns a non-2xx answer into [`Error::Api`] (or [`Error::Unexpected`] when it is
/// not the error shape).
pub(crate) async fn check(resp: Response) -> Result<Response> {
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Err(Error::from_body(status, body)),
        Err(_) => Err(Error::Unexpected {
            status,
            detail: text,
        }),
    }
}

async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T> {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| Error::Unexpected {
        status,
        detail: format!("body unreadable: {e}"),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Unexpected {
        status,
        detail: format!("not the expected JSON: {e}"),
    })
}
