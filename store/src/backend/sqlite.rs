//! SQLite backend: the embedded store of a single node with no Redis.
//!
//! One file in WAL mode with `synchronous=FULL`. Every mutation goes through one writer
//! thread that group-commits whatever is queued in one transaction; reads run on their
//! own connections beside it. The bus is the in-process [`LocalBus`]: a single node has
//! nobody else to tell. Commits are announced on it after they are durable.
//!
//! # Layout
//! - `schema`: connection settings, tables, migrations (`PRAGMA user_version`)
//! - `writer`: the batching writer thread and its per-request savepoints
//! - `ops`: the mutations the writer runs (create, commit, leases)
//! - `lifecycle`: the other mutations (archive moves, delete, idempotency keys,
//!   retention policies, the sweep of expired rows)
//! - `reads`: the read connections and queries
//! - `nodes`: `NodeRegistry` on its two tables (heartbeats, sessions held per node)

use std::fmt::Display;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::backend::{Backend, announce_commit};
use crate::codec;
use crate::error::{Result, StoreError};
use crate::fanout::LocalBus;
use crate::ids::{NodeId, ProjectId, SessionId, SessionKey, TenantId};
use crate::lease_store::{LeaseGrant, LeaseRef, LeaseStore};
use crate::records::{Message, RetentionPolicy, SessionMeta, TimestampMs};
use crate::session_store::{
    CommitOutcome, CreateOutcome, DeleteOutcome, IdempotencyRecord, IdempotencyScope, SessionStore,
    SessionWrite,
};

mod lifecycle;
mod nodes;
mod ops;
mod reads;
mod schema;
#[cfg(test)]
mod tests;
mod writer;

/// Read connections per store: enough for reads to overlap one another and the writer.
const READ_CONNECTIONS: usize = 4;

/// Opens (creating it, and its directory, if missing) the SQLite file at `path` and
/// returns it as a backend whose bus is in-process.
pub async fn open_sqlite(path: &Path) -> Result<Backend> {
    Ok(SqliteStore::open(path).await?.backend())
}

/// The SQLite store: sessions, leases and the node registry in one file. Cheap to
/// clone (shared handle); the writer thread stops and the file closes when the last
/// clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: writer::Writer,
    reads: Arc<reads::ReadPool>,
    bus: LocalBus,
}

/// What the writer thread has done since the store opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions run (each holds one or more requests).
    pub batches: u64,
    /// Requests run (create, commit, lease calls).
    pub requests: u64,
}

impl SqliteStore {
    /// Opens the file at `path`, creating it and its parent directory if missing, and
    /// brings its schema up to date. Fails on a file written by a newer schema.
    pub async fn open(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let (conn, reads) = tokio::task::spawn_blocking(move || {
            let conn = schema::open_writer(&path)?;
            let reads = reads::ReadPool::open(&path, READ_CONNECTIONS)?;
            Ok::<_, StoreError>((conn, reads))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("sqlite open failed: {e}")))??;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: writer::Writer::spawn(conn)?,
                reads: Arc::new(reads),
                bus: LocalBus::default(),
            }),
        })
    }

    /// This store as a [`Backend`] (kind `sqlite`).
    pub fn backend(&self) -> Backend {
        Backend {
            sessions: Arc::new(self.clone()),
            leases: Arc::new(self.clone()),
            bus: Arc::new(self.inner.bus.clone()),
            nodes: Arc::new(self.clone()),
            kind: "sqlite",
        }
    }

    /// Counters of the writer thread: `requests / batches` is the mean group size.
    pub fn writer_stats(&self) -> WriterStats {
        let (batches, requests) = self.inner.writer.counters();
        WriterStats { batches, requests }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("writer", &self.writer_stats())
            .finish_non_exhaustive()
    }
}

/// A session id as stored: the UUID's 16 bytes.
fn sql_id(id: SessionId) -> [u8; 16] {
    *id.as_uuid().as_bytes()
}

fn session_id(bytes: [u8; 16]) -> SessionId {
    SessionId::from_uuid(uuid::Uuid::from_bytes(bytes))
}

/// An idempotency scope as stored: `s:<session id>` or `p:<project>`.
fn scope_text(scope: &IdempotencyScope) -> String {
    match scope {
        IdempotencyScope::Session(id) => format!("s:{id}"),
        IdempotencyScope::Project(p) => format!("p:{p}"),
    }
}

/// SQLite integers are i64; larger values (never seen in practice) saturate.
fn sql_i64<N: TryInto<i64>>(n: N) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn corrupt(what: &str, session: SessionId, e: impl Display) -> StoreError {
    StoreError::Corrupt(format!("{what} session {session}: {e}"))
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, meta: &SessionMeta) -> Result<CreateOutcome> {
        let mut stored = meta.clone();
        stored.last_seq = 0;
        let encoded = codec::encode(&stored)?;
        self.inner
            .writer
            .call(move |conn| ops::create_session(conn, &stored, &encoded))
            .await
    }

    async fn load_session(&self, tenant: &TenantId, id: SessionId) -> Result<Option<SessionMeta>> {
        let tenant = tenant.clone();
        self.inner
            .reads
            .with(move |conn| reads::load_session(conn, &tenant, id))
            .await
    }

    async fn resolve_key(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        key: &SessionKey,
    ) -> Result<Option<SessionId>> {
        let (tenant, project, key) = (tenant.clone(), project.clone(), key.clone());
        self.inner
            .reads
            .with(move |conn| reads::resolve_key(conn, &tenant, &project, &key))
            .await
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<Vec<(SessionId, TimestampMs)>> {
        let (tenant, project) = (tenant.clone(), project.clone());
        self.inner
            .reads
            .with(move |conn| reads::list_sessions(conn, &tenant, &project))
            .await
    }

    async fn read_log(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let tenant = tenant.clone();
        self.inner
            .reads
            .with(move |conn| reads::read_log(conn, &tenant, id, after_seq, limit))
            .await
    }

    async fn commit(&self, writes: &[SessionWrite]) -> Result<Vec<CommitOutcome>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = writes
            .iter()
            .map(ops::PreparedWrite::new)
            .collect::<Result<Vec<_>>>()?;
        let applied = self
            .inner
            .writer
            .call(move |conn| ops::commit(conn, &prepared))
            .await?;
        // Durable now: announce, in write order, what each write added.
        let mut outcomes = Vec::with_capacity(applied.len());
        for (w, a) in writes.iter().zip(applied) {
            if let CommitOutcome::Committed { last_seq } = a.outcome {
                let meta = w.meta.clone().map(|mut m| {
                    m.last_seq = last_seq;
                    m
                });
                let fresh = &w.messages[a.fresh_from..];
                announce_commit(&self.inner.bus, w, fresh, meta.as_ref()).await;
            }
            outcomes.push(a.outcome);
        }
        Ok(outcomes)
    }

    async fn delete_session(
        &self,
        tenant: &TenantId,
        id: SessionId,
        fence: u64,
        archive_ttl_ms: Option<u64>,
    ) -> Result<DeleteOutcome> {
        let tenant = tenant.clone();
        self.inner
            .writer
            .call(move |conn| lifecycle::delete_session(conn, &tenant, id, fence, archive_ttl_ms))
            .await
    }

    async fn read_archive(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let tenant = tenant.clone();
        self.inner
            .reads
            .with(move |conn| reads::read_archive(conn, &tenant, id, after_seq, limit))
            .await
    }

    async fn idempotent_answer(
        &self,
        tenant: &TenantId,
        scope: &IdempotencyScope,
        key: &str,
    ) -> Result<Option<String>> {
        let (tenant, scope, key) = (tenant.clone(), scope.clone(), key.to_owned());
        self.inner
            .reads
            .with(move |conn| reads::idempotent_answer(conn, &tenant, &scope, &key))
            .await
    }

    async fn claim_idempotency(
        &self,
        tenant: &TenantId,
        scope: &IdempotencyScope,
        record: &IdempotencyRecord,
    ) -> Result<Option<String>> {
        let (tenant, scope, record) = (tenant.clone(), scope.clone(), record.clone());
        self.inner
            .writer
            .call(move |conn| {
                let first = lifecycle::claim_idempotency(conn, &tenant, &scope, &record)?;
                lifecycle::sweep_expired(conn, crate::records::now_ms())?;
                Ok(first)
            })
            .await
    }

    async fn retention(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<Option<RetentionPolicy>> {
        let (tenant, project) = (tenant.clone(), project.clone());
        self.inner
            .reads
            .with(move |conn| reads::retention(conn, &tenant, &project))
            .await
    }

    async fn set_retention(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        policy: &RetentionPolicy,
    ) -> Result<()> {
        let (tenant, project) = (tenant.clone(), project.clone());
        let encoded = codec::encode(policy)?;
        self.inner
            .writer
            .call(move |conn| lifecycle::set_retention(conn, &tenant, &project, &encoded))
            .await
    }

    async fn list_projects(&self, tenant: &TenantId) -> Result<Vec<ProjectId>> {
        let tenant = tenant.clone();
        self.inner
            .reads
            .with(move |conn| reads::list_projects(conn, &tenant))
            .await
    }
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire(
        &self,
        tenant: &TenantId,
        session: SessionId,
        node: &NodeId,
        ttl: Duration,
    ) -> Result<LeaseGrant> {
        let (tenant, node) = (tenant.clone(), node.clone());
        self.inner
            .writer
            .call(move |conn| ops::acquire(conn, &tenant, session, &node, ttl))
            .await
    }

    async fn renew(&self, node: &NodeId, leases: &[LeaseRef], ttl: Duration) -> Result<Vec<bool>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let (node, leases) = (node.clone(), leases.to_vec());
        self.inner
            .writer
            .call(move |conn| ops::renew(conn, &node, &leases, ttl))
            .await
    }

    async fn release(&self, node: &NodeId, lease: &LeaseRef) -> Result<()> {
        let (node, lease) = (node.clone(), lease.clone());
        self.inner
            .writer
            .call(move |conn| ops::release(conn, &node, &lease))
            .await
    }

    async fn owner(&self, tenant: &TenantId, session: SessionId) -> Result<Option<NodeId>> {
        let tenant = tenant.clone();
        self.inner
            .reads
            .with(move |conn| reads::owner(conn, &tenant, session))
            .await
    }
}
