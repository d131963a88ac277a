//! The node: wires a backend, the writer, the drivers and the project supervisors,
//! and runs the session operations the API decodes.
//!
//! # Layout
//! - this file: start, activation of sessions, shutdown
//! - `routing`: where an operation runs (here, forwarded, or from the store)
//! - `forward`: the request/reply protocol between nodes' inboxes
//! - `inbox`: this node's inbox, kept subscribed
//! - `leases`: the heartbeat and the renewal of held leases
//! - `recovery`: taking over the sessions of dead nodes
//! - `drain`: waiting for runs to finish on a graceful stop
//! - `sessions`: create, and the store reads the operations use
//! - `projects`: operations over a project (list, resolve, preview, retention, events)

mod drain;
mod forward;
mod inbox;
mod leases;
mod projects;
mod recovery;
mod routing;
mod sessions;

pub(crate) use forward::ForwardError;

pub use projects::{ListQuery, NodeInfo, Preview, PreviewStatus, ProjectEventStream, SessionPage};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sessiond_actors::{
    DriverRegistry, LeaseBook, ProjectHandle, SessionContext, SessionHandle, Writer,
};
use sessiond_store::{
    Backend, NodeId, ProjectId, SessionConfig, SessionId, SessionKey, SessionMeta, TenantId,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, StoreConfig};
use crate::error::{Error, Result};

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
    /// The session this one is spawned from: driver, model, driver options and
    /// run settings are inherited unless given.
    pub parent_id: Option<SessionId>,
    /// A repeated create with this key returns the first session and runs nothing.
    pub idempotency_key: Option<String>,
    /// Refuse delete and reset until a patch lifts it.
    pub protected: bool,
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
    /// Set when a stop begins: no new activations.
    draining: std::sync::atomic::AtomicBool,
    /// Commands this node forwarded, waiting for answers.
    forwarder: forward::Forwarder,
    /// When this node started.
    started_at_ms: i64,
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
            nodes: backend.nodes.clone(),
            notices: sessiond_actors::Notices::spawn(backend.bus.clone()),
            settled: Default::default(),
        };
        let stop = CancellationToken::new();
        tokio::spawn(leases::keep_leases(
            ctx.clone(),
            backend.clone(),
            stop.clone(),
        ));
        // Installed before the first metric is recorded.
        crate::metrics::handle();
        tokio::spawn(crate::metrics::upkeep(stop.clone()));
        tracing::info!(node_id = %id, store = backend.kind, "node started");
        let (id_for_forwarder, bus_for_forwarder) = (id.clone(), backend.bus.clone());
        let node = Self {
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
                draining: Default::default(),
                forwarder: forward::Forwarder::new(id_for_forwarder, bus_for_forwarder),
                started_at_ms: sessiond_store::now_ms(),
            }),
        };
        let weak = Arc::downgrade(&node.inner);
        let stop = node.inner.stop.clone();
        tokio::spawn(projects::sweep_retention(weak.clone(), stop.clone()));
        tokio::spawn(leases::heartbeat(weak.clone(), stop.clone()));
        tokio::spawn(recovery::recovery_sweep(weak.clone(), stop.clone()));
        tokio::spawn(inbox::keep_inbox(weak, node.inner.forwarder.clone(), stop));
        node
    }

    /// The session's actor if it is resident here.
    fn resident(&self, tenant: &TenantId, id: SessionId) -> Option<SessionHandle> {
        self.inner
            .resident
            .lock()
            .expect("resident lock")
            .get(&(tenant.clone(), id))
            .filter(|h| h.is_alive())
            .cloned()
    }

    /// A stopping node activates no session (it would not be stopped, or its run
    /// would be cut at once).
    fn refuse_if_draining(&self) -> Result<()> {
        if self.is_draining() {
            return Err(Error::Unavailable(
                "this node is stopping and takes no sessions; retry on another node".into(),
            ));
        }
        Ok(())
    }

    /// Whether a stop has begun.
    pub fn is_draining(&self) -> bool {
        self.inner
            .draining
            .load(std::sync::atomic::Ordering::SeqCst)
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
        // Checked under the lock the stop takes to collect the supervisors: a
        // supervisor started after that would never be stopped.
        self.refuse_if_draining()?;
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
        self.refuse_if_draining()?;
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

    /// Drops a session's handle from the resident map (after a delete).
    pub(crate) fn forget_resident(&self, tenant: &TenantId, id: SessionId) {
        self.inner
            .resident
            .lock()
            .expect("resident lock")
            .remove(&(tenant.clone(), id));
    }

    async fn load(&self, tenant: &TenantId, id: SessionId) -> Result<SessionMeta> {
        self.inner
            .backend
            .sessions
            .load_session(tenant, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("session {id} not found")))
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
        self.inner
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.stopping.cancel();
        self.drain().await;
        // Sessions stop (and release their leases) while the inbox still answers
        // forwards (`not_holder` sends callers to look again) and leases renew.
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
        self.inner.stop.cancel();
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
        // Gone on purpose: survivors need not look for its sessions, unless a run
        // was cut at the drain deadline (those stay listed; once this node's
        // heartbeat runs out, a survivor takes them and marks the runs interrupted).
        match self.inner.backend.nodes.held(&self.inner.id).await {
            Ok(held) if held.is_empty() => {
                if let Err(e) = self.inner.backend.nodes.remove_node(&self.inner.id).await {
                    tracing::debug!(error = %e, "node not removed from the registry");
                }
            }
            Ok(held) => tracing::warn!(
                cut = held.len(),
                "runs cut at the drain deadline; another node will mark them interrupted"
            ),
            Err(e) => tracing::debug!(error = %e, "held list unreadable at stop"),
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
