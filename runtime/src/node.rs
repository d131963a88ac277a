//! The node: wires a backend, the writer, the drivers and the project supervisors,
//! and runs the session operations the API decodes.
//!
//! The node is made of parts, each owning its state and starting its own tasks
//! (`start(tasks, stop)`): [`leases::Leases`] (heartbeat, lease renewal),
//! [`recovery::Recovery`] (the sweep over dead nodes), [`inbox::Inbox`] (the
//! forwarder and the bound on forwarded requests served at once),
//! [`projects::Projects`] (starting supervisors, the retention sweep) and
//! [`drain::Drain`] (the stop flag and the drain deadline). Every task the node
//! starts is on one [`TaskTracker`]: a stop waits for them (bounded) before the
//! node leaves the registry. The live actors are in the registries of
//! [`SessionContext`], kept by the supervisors.
//!
//! # Layout
//! - this file: start, activation of sessions, shutdown
//! - `routing`: where an operation runs (here, forwarded, or from the store)
//! - `forward`: the request/reply protocol between nodes' inboxes
//! - `inbox`: this node's inbox, kept subscribed, and the bound on served forwards
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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessiond_actors::{
    DriverRegistry, LeaseBook, ProjectHandle, SessionContext, SessionError, SessionHandle, Writer,
};
use sessiond_store::{
    Backend, NodeId, ProjectId, SessionConfig, SessionId, SessionKey, SessionMeta, TenantId,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    /// What the actors share, the registries of live sessions and supervisors
    /// among it.
    ctx: SessionContext,
    writer_task: Mutex<Option<JoinHandle<()>>>,
    /// Every task the node starts (the parts' loops, the notice publisher, each
    /// forwarded request served): a stop waits for them.
    tasks: TaskTracker,
    /// Ends the tasks, once the sessions have stopped.
    stop: CancellationToken,
    /// Heartbeat and lease renewal.
    leases: leases::Leases,
    /// The sweep over dead nodes.
    recovery: recovery::Recovery,
    /// The forwarder and the bound on served forwards.
    inbox: inbox::Inbox,
    /// Starting supervisors, and the retention sweep.
    projects: projects::Projects,
    /// The stop flag and the drain deadline.
    drain: drain::Drain,
}

impl Drop for Inner {
    // A node dropped without a stop (every clone gone) is as good as dead: its tasks
    // end too, rather than heartbeat and renew leases for it forever.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How long a stop waits for the node's tasks to end once told to (they end at
/// their next step; a store call they are in is bounded by its own deadline), so a
/// stuck one cannot hold the stop.
pub const TASKS_STOP_TIMEOUT: Duration = Duration::from_secs(10);

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
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        let ctx = SessionContext {
            store: backend.sessions.clone(),
            leases: backend.leases.clone(),
            writer,
            drivers,
            node: id.clone(),
            settings: config.session.clone(),
            lease_book: LeaseBook::default(),
            nodes: backend.nodes.clone(),
            notices: sessiond_actors::Notices::start(backend.bus.clone(), &tasks, stop.clone()),
            settled: Default::default(),
            residents: Default::default(),
            supervisors: Default::default(),
        };
        // Installed before the first metric is recorded.
        crate::metrics::handle();
        tasks.spawn(crate::metrics::upkeep(stop.clone()));
        tracing::info!(node_id = %id, store = backend.kind, "node started");
        let node = Self {
            inner: Arc::new(Inner {
                leases: leases::Leases::new(&id, &config, &backend, ctx.lease_book.clone()),
                recovery: recovery::Recovery::new(&config),
                inbox: inbox::Inbox::new(&id, &config, &backend),
                projects: projects::Projects::new(&config),
                drain: drain::Drain::new(&config),
                id,
                config,
                backend,
                ctx,
                writer_task: Mutex::new(Some(writer_task)),
                tasks,
                stop,
            }),
        };
        // The parts' loops hold the node weakly: a node dropped without a stop
        // ends them too.
        let (inner, weak) = (&node.inner, Arc::downgrade(&node.inner));
        inner.leases.start(&inner.tasks, &inner.stop);
        inner
            .recovery
            .start(weak.clone(), &inner.tasks, &inner.stop);
        inner.inbox.start(weak.clone(), &inner.tasks, &inner.stop);
        inner.projects.start(weak, &inner.tasks, &inner.stop);
        node
    }

    /// The session's actor if it is resident here (activated, or restarted by its
    /// supervisor after a crash).
    fn resident(&self, tenant: &TenantId, id: SessionId) -> Option<SessionHandle> {
        self.inner.ctx.residents.get(tenant, id)
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
        self.inner.drain.is_draining()
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

    /// The project's supervisor, started if none runs (an idle one stops by itself;
    /// one found stopping is replaced).
    async fn project(&self, tenant: &TenantId, project: &ProjectId) -> Result<ProjectHandle> {
        let _starting = self.inner.projects.starting().await;
        if let Some(p) = self.inner.ctx.supervisors.get(tenant, project) {
            return Ok(p);
        }
        // Checked under the lock the stop takes to collect the supervisors: a
        // supervisor started after that would never be stopped.
        self.refuse_if_draining()?;
        // It enters itself in the supervisors' registry.
        Ok(ProjectHandle::spawn(self.inner.ctx.clone(), tenant.clone(), project.clone()).await?)
    }

    /// Runs `call` on the project's supervisor; if that one stopped (idle) before
    /// it answered, once more on a new one (the call had no effect).
    async fn on_project<T, F, Fut>(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        call: F,
    ) -> Result<T>
    where
        F: Fn(ProjectHandle) -> Fut,
        Fut: std::future::Future<Output = sessiond_actors::Result<T>>,
    {
        let p = self.project(tenant, project).await?;
        match call(p.clone()).await {
            Err(SessionError::Stopped(_)) if !p.is_alive() => {
                Ok(call(self.project(tenant, project).await?).await?)
            }
            other => Ok(other?),
        }
    }

    /// The session's actor, activated here if it is not resident.
    async fn session(&self, tenant: &TenantId, id: SessionId) -> Result<SessionHandle> {
        if let Some(h) = self.resident(tenant, id) {
            return Ok(h);
        }
        self.refuse_if_draining()?;
        let meta = self.load(tenant, id).await?;
        let project = meta.project.clone();
        // The supervisor enters the actor in the residents.
        self.on_project(tenant, &project, |p| {
            let meta = meta.clone();
            async move { p.activate(meta).await }
        })
        .await
    }

    /// Drops a deleted session's actor from the residents at once (it is ending;
    /// its supervisor would remove it when it has).
    pub(crate) fn forget_resident(&self, tenant: &TenantId, id: SessionId) {
        self.inner.ctx.residents.forget(tenant, id);
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
        self.inner.ctx.residents.len()
    }

    /// How many project supervisors run on this node (an idle one stops).
    #[doc(hidden)]
    pub fn supervisor_count(&self) -> usize {
        self.inner.ctx.supervisors.len()
    }

    /// How many of the node's tasks have not ended (none once a stop returned).
    #[doc(hidden)]
    pub fn running_tasks(&self) -> usize {
        self.inner.tasks.len()
    }

    /// Fires when the node begins to stop: long-lived responses (event streams) end
    /// on it so the HTTP server can finish.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.drain.stopping()
    }

    /// Stops the node: runs drain, sessions stop (their leases are released), the
    /// node's tasks end (waited for, up to [`TASKS_STOP_TIMEOUT`]), the writer
    /// commits what is queued (up to the flush timeout), and the node leaves the
    /// registry.
    pub async fn shutdown(&self) {
        self.inner.drain.begin();
        self.drain().await;
        // Sessions stop (and release their leases) while the inbox still answers
        // forwards (`not_holder` sends callers to look again) and leases renew.
        // Collected under the lock activations take to start a supervisor: none
        // starts after this (they see the stop flag).
        let projects = {
            let _starting = self.inner.projects.starting().await;
            self.inner.ctx.supervisors.all()
        };
        for p in &projects {
            p.stop_and_wait().await;
        }
        // Now the tasks: the heartbeat must be over before the node leaves the
        // registry (or it would enter it again), and nothing may run on a node
        // reported stopped.
        self.inner.stop.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(TASKS_STOP_TIMEOUT, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.inner.tasks.len(),
                "node tasks did not end before the shutdown deadline"
            );
        }
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
