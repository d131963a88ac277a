//! The node: wires a backend, the writer, the drivers and the project supervisors,
//! and offers the session operations the API calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use sessiond_actors::{
    AbortReply, AnswerError, DriverRegistry, LeaseBook, ProjectHandle, SendReceipt, SessionContext,
    SessionHandle, Writer,
};
use sessiond_store::{
    Backend, CreateOutcome, Message, NodeId, ProjectId, RunId, SessionConfig, SessionId,
    SessionKey, SessionMeta, SessionStatus, TenantId, Usage, now_ms,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, StoreConfig};
use crate::error::{Error, Result};
use crate::events::{SessionEvent, session_events};

/// A validated request to create a session.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// Human key, unique in the project.
    pub key: Option<SessionKey>,
    /// Label.
    pub label: Option<String>,
    /// Driver name; the node's default (`scripted`) when `None`.
    pub driver: Option<String>,
    /// Driver options.
    pub driver_options: serde_json::Map<String, serde_json::Value>,
    /// Model.
    pub model: Option<String>,
    /// System prompt.
    pub system_prompt: Option<String>,
    /// Run settings.
    pub config: SessionConfig,
}

/// The name of the driver used when a create names none.
pub const DEFAULT_DRIVER: &str = "scripted";

/// The drivers a node offers (re-exported so the binary needs no actors dependency).
pub type Drivers = sessiond_actors::DriverRegistry;

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    config: Config,
    backend: Backend,
    ctx: SessionContext,
    projects: tokio::sync::Mutex<HashMap<(TenantId, ProjectId), ProjectHandle>>,
    resident: Mutex<HashMap<(TenantId, SessionId), SessionHandle>>,
    writer_task: Mutex<Option<JoinHandle<()>>>,
    /// Ends background tasks (lease renewal).
    stop: CancellationToken,
    /// Ends event streams when a stop begins.
    stopping: CancellationToken,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.id)
            .field("backend", &self.inner.backend.kind)
            .finish_non_exhaustive()
    }
}

/// Opens the configured store.
pub async fn open_backend(store: &StoreConfig) -> Result<Backend> {
    let backend = match store {
        StoreConfig::Memory => sessiond_store::backend::memory::memory(),
        StoreConfig::Sqlite { data_dir } => {
            sessiond_store::backend::sqlite::open_sqlite(&data_dir.join("sessiond.db")).await?
        }
        StoreConfig::Redis { url } => sessiond_store::backend::redis::connect_redis(url).await?,
    };
    Ok(backend)
}

impl Node {
    /// Starts a node on the configured store with the given drivers.
    pub async fn start(mut config: Config, drivers: DriverRegistry) -> Result<Self> {
        if config.node_id.is_none()
            && let StoreConfig::Sqlite { data_dir } = &config.store
        {
            config.node_id = Some(persistent_node_id(data_dir)?);
        }
        let backend = open_backend(&config.store).await?;
        Ok(Self::with_backend(config, backend, drivers))
    }

    /// Starts a node on an already opened backend.
    pub fn with_backend(config: Config, backend: Backend, drivers: DriverRegistry) -> Self {
        let id = config.node_id.clone().unwrap_or_else(NodeId::generate);
        let (writer, writer_task) = Writer::spawn(backend.sessions.clone(), config.writer.clone());
        let ctx = SessionContext {
            store: backend.sessions.clone(),
            leases: backend.leases.clone(),
            writer,
            drivers,
            node: id.clone(),
            settings: config.session.clone(),
            lease_book: LeaseBook::default(),
        };
        let stop = CancellationToken::new();
        tokio::spawn(keep_leases(ctx.clone(), backend.clone(), stop.clone()));
        // Installed before the first metric is recorded.
        crate::metrics::handle();
        tokio::spawn(crate::metrics::upkeep(stop.clone()));
        tracing::info!(node_id = %id, store = backend.kind, "node started");
        Self {
            inner: Arc::new(Inner {
                id,
                config,
                backend,
                ctx,
                projects: Default::default(),
                resident: Default::default(),
                writer_task: Mutex::new(Some(writer_task)),
                stop,
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.inner.id
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The backend it runs on.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Its drivers.
    pub fn drivers(&self) -> &DriverRegistry {
        &self.inner.ctx.drivers
    }

    async fn project(&self, tenant: &TenantId, project: &ProjectId) -> Result<ProjectHandle> {
        let mut projects = self.inner.projects.lock().await;
        let key = (tenant.clone(), project.clone());
        if let Some(p) = projects.get(&key) {
            return Ok(p.clone());
        }
        let p =
            ProjectHandle::spawn(self.inner.ctx.clone(), tenant.clone(), project.clone()).await?;
        projects.insert(key, p.clone());
        Ok(p)
    }

    /// The session's actor, activated here if it is not resident.
    async fn session(&self, tenant: &TenantId, id: SessionId) -> Result<SessionHandle> {
        let key = (tenant.clone(), id);
        if let Some(h) = self.inner.resident.lock().expect("resident lock").get(&key)
            && h.is_alive()
        {
            return Ok(h.clone());
        }
        let meta = self.load(tenant, id).await?;
        let handle = self
            .project(tenant, &meta.project)
            .await?
            .activate(meta)
            .await?;
        self.inner
            .resident
            .lock()
            .expect("resident lock")
            .insert(key, handle.clone());
        Ok(handle)
    }

    async fn load(&self, tenant: &TenantId, id: SessionId) -> Result<SessionMeta> {
        self.inner
            .backend
            .sessions
            .load_session(tenant, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("session {id} not found")))
    }

    /// Creates a session; with `prompt`, also sends it.
    pub async fn create_session(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        new: NewSession,
        prompt: Option<String>,
    ) -> Result<(SessionMeta, Option<SendReceipt>)> {
        let driver = new.driver.unwrap_or_else(|| DEFAULT_DRIVER.to_string());
        self.drivers()
            .validate(&driver, &new.driver_options)
            .map_err(Error::InvalidRequest)?;
        let now = now_ms();
        let meta = SessionMeta {
            id: SessionId::generate(),
            tenant: tenant.clone(),
            project: project.clone(),
            key: new.key,
            parent_id: None,
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
            created_at_ms: now,
            updated_at_ms: now,
            last_activity_ms: now,
        };
        match self.inner.backend.sessions.create_session(&meta).await? {
            CreateOutcome::Created => {}
            CreateOutcome::KeyTaken(other) => {
                let key = meta.key.as_ref().map(|k| k.as_str()).unwrap_or_default();
                return Err(Error::Conflict(format!(
                    "session key '{key}' is already used by session {other} in project {project}"
                )));
            }
        }
        let receipt = match prompt {
            Some(p) => Some(self.send(tenant, meta.id, p).await?),
            None => None,
        };
        let meta = self.load(tenant, meta.id).await?;
        Ok((meta, receipt))
    }

    /// The session as stored (committed state).
    pub async fn get_session(&self, tenant: &TenantId, id: SessionId) -> Result<SessionMeta> {
        self.load(tenant, id).await
    }

    /// Sends a prompt; returns once it is durable.
    pub async fn send(
        &self,
        tenant: &TenantId,
        id: SessionId,
        prompt: String,
    ) -> Result<SendReceipt> {
        Ok(self.session(tenant, id).await?.send(prompt).await?)
    }

    /// Aborts the active run (or `run_id` only); returns once it ended.
    pub async fn abort(
        &self,
        tenant: &TenantId,
        id: SessionId,
        run_id: Option<RunId>,
    ) -> Result<AbortReply> {
        Ok(self.session(tenant, id).await?.abort(run_id).await?)
    }

    /// Answers a permission request the session's driver waits on.
    pub async fn answer_permission(
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

    /// A page of the committed transcript.
    pub async fn history(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let log = self
            .inner
            .backend
            .sessions
            .read_log(tenant, id, after_seq, limit)
            .await?;
        if log.is_empty() {
            // Tell an empty page of a real session from an unknown session.
            self.load(tenant, id).await?;
        }
        Ok(log)
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
            self.inner.backend.clone(),
            tenant.clone(),
            id,
            after_seq,
        ))
    }

    /// Checks the store answers.
    pub async fn ready(&self) -> Result<()> {
        let probe = SessionId::from_uuid(uuid::Uuid::nil());
        self.inner
            .backend
            .sessions
            .load_session(&self.inner.config.tenant, probe)
            .await?;
        Ok(())
    }

    /// How many sessions are resident on this node.
    pub fn resident_count(&self) -> usize {
        let mut map = self.inner.resident.lock().expect("resident lock");
        map.retain(|_, h| h.is_alive());
        map.len()
    }

    /// Fires when the node begins to stop: long-lived responses (event streams) end
    /// on it so the HTTP server can finish.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stopping.clone()
    }

    /// Stops the node: sessions stop (their leases are released), then the writer
    /// commits what is queued, up to the flush timeout.
    pub async fn shutdown(&self) {
        self.inner.stopping.cancel();
        self.inner.stop.cancel();
        let projects: Vec<_> = self
            .inner
            .projects
            .lock()
            .await
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in &projects {
            p.stop_and_wait().await;
        }
        self.inner.resident.lock().expect("resident lock").clear();
        let task = self.inner.writer_task.lock().expect("writer lock").take();
        if let Some(task) = task {
            // The writer ends once every handle is gone; sessions held the others.
            let flushed = self.inner.ctx.writer.flush().await;
            if tokio::time::timeout(self.inner.config.shutdown_flush_timeout, flushed)
                .await
                .is_err()
            {
                tracing::warn!("writer did not flush before the shutdown deadline");
            }
            task.abort();
        }
        tracing::info!(node_id = %self.inner.id, "node stopped");
    }
}

/// The single node of an embedded store keeps one id across restarts (in
/// `<data_dir>/node-id`), so after a crash it takes its sessions' leases back at once
/// instead of waiting for them to expire.
fn persistent_node_id(data_dir: &std::path::Path) -> Result<NodeId> {
    let path = data_dir.join("node-id");
    let unavailable = |e: std::io::Error| Error::Unavailable(format!("{}: {e}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(text) => NodeId::new(text.trim())
            .map_err(|e| Error::Unavailable(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(unavailable)?;
            let id = NodeId::generate();
            std::fs::write(&path, format!("{id}\n")).map_err(unavailable)?;
            Ok(id)
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// Renews every lease this node holds, in one batch, every third of the TTL; a lease
/// that cannot be renewed stops its session at once.
async fn keep_leases(ctx: SessionContext, backend: Backend, stop: CancellationToken) {
    let ttl = ctx.settings.lease_ttl;
    let mut tick = tokio::time::interval((ttl / 3).max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let leases = ctx.lease_book.leases();
        if leases.is_empty() {
            last_renewed = tokio::time::Instant::now();
            continue;
        }
        match backend.leases.renew(&ctx.node, &leases, ttl).await {
            Ok(held) => {
                last_renewed = tokio::time::Instant::now();
                for (lease, ok) in leases.iter().zip(held) {
                    if !ok {
                        tracing::warn!(session_id = %lease.session, "lease renewal refused");
                        ctx.lease_book.lost(lease);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, leases = leases.len(), "lease renewal failed");
                // Past the TTL another node may own these sessions: stop ours rather
                // than run drivers for sessions we no longer hold (fences keep their
                // writes out anyway).
                if last_renewed.elapsed() >= ttl {
                    tracing::error!(
                        leases = leases.len(),
                        "leases not renewed for a whole TTL, stopping their sessions"
                    );
                    for lease in &leases {
                        ctx.lease_book.lost(lease);
                    }
                }
            }
        }
    }
}
