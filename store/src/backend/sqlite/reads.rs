//! Reads: a few read-only connections beside the writer (WAL lets them run while it
//! commits), used from `spawn_blocking` so no async worker waits on the disk.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use super::{corrupt, schema, scope_text, session_id, sql_i64, sql_id};
use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::{NodeId, ProjectId, SessionId, SessionKey, TenantId};
use crate::records::{Message, RetentionPolicy, SessionMeta, TimestampMs, now_ms};
use crate::session_store::IdempotencyScope;

/// Read connections, handed out round robin.
pub(super) struct ReadPool {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl ReadPool {
    /// Opens `size` read connections on a prepared file.
    pub(super) fn open(path: &Path, size: usize) -> Result<Self> {
        let conns = (0..size.max(1))
            .map(|_| schema::open_reader(path).map(Mutex::new))
            .collect::<Result<_>>()?;
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a read connection, off the async workers.
    pub(super) async fn with<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let i = pool.next.fetch_add(1, Ordering::Relaxed) % pool.conns.len();
            // A read that panicked left nothing half done: statements reset on drop.
            let conn = pool.conns[i].lock().unwrap_or_else(PoisonError::into_inner);
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("sqlite read failed: {e}")))?
    }
}

/// The meta with `last_seq` from its column (the blob's is stale after a commit of
/// messages only).
pub(super) fn load_session(
    conn: &Connection,
    tenant: &TenantId,
    id: SessionId,
) -> Result<Option<SessionMeta>> {
    let row: Option<(Vec<u8>, u64)> = conn
        .prepare_cached("SELECT meta, last_seq FROM sessions WHERE tenant = ?1 AND id = ?2")?
        .query_row(params![tenant.as_str(), sql_id(id)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    row.map(|(blob, last_seq)| {
        let mut meta: SessionMeta = codec::decode(&blob).map_err(|e| corrupt("meta of", id, e))?;
        meta.last_seq = last_seq;
        Ok(meta)
    })
    .transpose()
}

pub(super) fn resolve_key(
    conn: &Connection,
    tenant: &TenantId,
    project: &ProjectId,
    key: &SessionKey,
) -> Result<Option<SessionId>> {
    let id: Option<[u8; 16]> = conn
        .prepare_cached("SELECT id FROM sessions WHERE tenant = ?1 AND project = ?2 AND key = ?3")?
        .query_row(
            params![tenant.as_str(), project.as_str(), key.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(id.map(session_id))
}

/// Newest activity first; ties by id, newest first, as the memory backend sorts.
pub(super) fn list_sessions(
    conn: &Connection,
    tenant: &TenantId,
    project: &ProjectId,
) -> Result<Vec<(SessionId, TimestampMs)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, last_activity_ms FROM sessions WHERE tenant = ?1 AND project = ?2
         ORDER BY last_activity_ms DESC, id DESC",
    )?;
    let rows = stmt.query_map(params![tenant.as_str(), project.as_str()], |r| {
        Ok((session_id(r.get(0)?), r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn read_log(
    conn: &Connection,
    tenant: &TenantId,
    id: SessionId,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM messages WHERE tenant = ?1 AND session_id = ?2 AND seq > ?3
         ORDER BY seq LIMIT ?4",
    )?;
    let rows = stmt.query(params![
        tenant.as_str(),
        sql_id(id),
        sql_i64(after_seq),
        sql_i64(limit)
    ])?;
    decode_messages(rows, id)
}

/// Archived messages of a live (unexpired) archive.
pub(super) fn read_archive(
    conn: &Connection,
    tenant: &TenantId,
    id: SessionId,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.body FROM archives a JOIN archived_messages m
             ON m.tenant = a.tenant AND m.session_id = a.session_id
         WHERE a.tenant = ?1 AND a.session_id = ?2 AND a.expires_at_ms > ?5 AND m.seq > ?3
         ORDER BY m.seq LIMIT ?4",
    )?;
    let rows = stmt.query(params![
        tenant.as_str(),
        sql_id(id),
        sql_i64(after_seq),
        sql_i64(limit),
        now_ms()
    ])?;
    decode_messages(rows, id)
}

/// Decodes rows whose first column is a message body.
fn decode_messages(mut rows: rusqlite::Rows<'_>, id: SessionId) -> Result<Vec<Message>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let blob = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
        out.push(codec::decode(blob).map_err(|e| corrupt("message of", id, e))?);
    }
    Ok(out)
}

pub(super) fn owner(
    conn: &Connection,
    tenant: &TenantId,
    session: SessionId,
) -> Result<Option<NodeId>> {
    let node: Option<String> = conn
        .prepare_cached(
            "SELECT node FROM leases
             WHERE tenant = ?1 AND session_id = ?2 AND expires_at_ms > ?3",
        )?
        .query_row(params![tenant.as_str(), sql_id(session), now_ms()], |r| {
            r.get(0)
        })
        .optional()?;
    node.map(|n| NodeId::new(n).map_err(|e| corrupt("lease of", session, e)))
        .transpose()
}

/// The answer of a live idempotency key; expired rows read as absent.
pub(super) fn idempotent_answer(
    conn: &Connection,
    tenant: &TenantId,
    scope: &IdempotencyScope,
    key: &str,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT answer FROM idempotency
             WHERE tenant = ?1 AND scope = ?2 AND key = ?3 AND expires_at_ms > ?4",
        )?
        .query_row(
            params![tenant.as_str(), scope_text(scope), key, now_ms()],
            |r| r.get(0),
        )
        .optional()?)
}

pub(super) fn retention(
    conn: &Connection,
    tenant: &TenantId,
    project: &ProjectId,
) -> Result<Option<RetentionPolicy>> {
    let blob: Option<Vec<u8>> = conn
        .prepare_cached("SELECT policy FROM retention WHERE tenant = ?1 AND project = ?2")?
        .query_row(params![tenant.as_str(), project.as_str()], |r| r.get(0))
        .optional()?;
    blob.map(|b| {
        codec::decode(&b)
            .map_err(|e| StoreError::Corrupt(format!("retention policy of project {project}: {e}")))
    })
    .transpose()
}

/// Every project the tenant ever created a session in, by name.
pub(super) fn list_projects(conn: &Connection, tenant: &TenantId) -> Result<Vec<ProjectId>> {
    let mut stmt =
        conn.prepare_cached("SELECT project FROM projects WHERE tenant = ?1 ORDER BY project")?;
    let rows = stmt.query_map(params![tenant.as_str()], |r| r.get::<_, String>(0))?;
    rows.map(|p| {
        let p = p?;
        ProjectId::new(&p).map_err(|e| StoreError::Corrupt(format!("stored project {p:?}: {e}")))
    })
    .collect()
}
