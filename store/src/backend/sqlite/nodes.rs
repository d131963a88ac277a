//! `NodeRegistry` on SQLite: the `nodes` and `held` tables (schema V3). Writes go
//! through the writer thread like every mutation, reads through the read pool.
//!
//! On the embedded store the registry outlives the process: a node restarted after a
//! crash, with the same id from its data directory, reads back what it held.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::{SqliteStore, session_id, sql_id};
use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::{NodeId, SessionId, TenantId};
use crate::node_registry::{NodeRecord, NodeRegistry};

/// Stores the record, replacing the node's earlier one.
fn heartbeat(conn: &Connection, id: &NodeId, encoded: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO nodes (id, record) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET record = excluded.record",
    )?
    .execute(params![id.as_str(), encoded])?;
    Ok(())
}

fn remove_node(conn: &Connection, id: &NodeId) -> Result<()> {
    for sql in [
        "DELETE FROM held WHERE node = ?1",
        "DELETE FROM nodes WHERE id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute(params![id.as_str()])?;
    }
    Ok(())
}

/// Notes the session; a node with no record gets `unannounced` (encoded by the
/// caller), which a heartbeat later replaces and which never replaces a heartbeat.
fn add_held(
    conn: &Connection,
    node: &NodeId,
    tenant: &TenantId,
    session: SessionId,
    unannounced: &[u8],
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO nodes (id, record) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![node.as_str(), unannounced])?;
    conn.prepare_cached(
        "INSERT INTO held (node, tenant, session) VALUES (?1, ?2, ?3)
         ON CONFLICT (node, tenant, session) DO NOTHING",
    )?
    .execute(params![node.as_str(), tenant.as_str(), sql_id(session)])?;
    Ok(())
}

fn remove_held(
    conn: &Connection,
    node: &NodeId,
    tenant: &TenantId,
    session: SessionId,
) -> Result<()> {
    conn.prepare_cached("DELETE FROM held WHERE node = ?1 AND tenant = ?2 AND session = ?3")?
        .execute(params![node.as_str(), tenant.as_str(), sql_id(session)])?;
    Ok(())
}

/// Every node by id. A record that does not decode is `Corrupt`, as any other stored
/// record is.
fn nodes(conn: &Connection) -> Result<Vec<NodeRecord>> {
    let mut stmt = conn.prepare_cached("SELECT id, record FROM nodes ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let blob = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        let record: NodeRecord = codec::decode(blob)
            .map_err(|e| StoreError::Corrupt(format!("record of node {id}: {e}")))?;
        out.push(record);
    }
    Ok(out)
}

/// The node's sessions by tenant, then id (the 16 bytes sort as the UUIDs do). A row
/// whose tenant no longer parses is skipped with a warning rather than failing the
/// whole list: the rest must still be recovered.
fn held(conn: &Connection, node: &NodeId) -> Result<Vec<(TenantId, SessionId)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT tenant, session FROM held WHERE node = ?1 ORDER BY tenant, session",
    )?;
    let rows = stmt.query_map(params![node.as_str()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, [u8; 16]>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (tenant, session) = row?;
        match TenantId::new(&tenant) {
            Ok(t) => out.push((t, session_id(session))),
            Err(e) => {
                tracing::warn!(node_id = %node, tenant, error = %e, "sqlite held session skipped")
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl NodeRegistry for SqliteStore {
    async fn heartbeat(&self, node: &NodeRecord) -> Result<()> {
        let encoded = codec::encode(node)?;
        let id = node.id.clone();
        self.inner
            .writer
            .call(move |conn| heartbeat(conn, &id, &encoded))
            .await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.inner.reads.with(nodes).await
    }

    async fn remove_node(&self, node: &NodeId) -> Result<()> {
        let node = node.clone();
        self.inner
            .writer
            .call(move |conn| remove_node(conn, &node))
            .await
    }

    async fn add_held(&self, node: &NodeId, tenant: &TenantId, session: SessionId) -> Result<()> {
        let unannounced = codec::encode(&NodeRecord::unannounced(node))?;
        let (node, tenant) = (node.clone(), tenant.clone());
        self.inner
            .writer
            .call(move |conn| add_held(conn, &node, &tenant, session, &unannounced))
            .await
    }

    async fn remove_held(
        &self,
        node: &NodeId,
        tenant: &TenantId,
        session: SessionId,
    ) -> Result<()> {
        let (node, tenant) = (node.clone(), tenant.clone());
        self.inner
            .writer
            .call(move |conn| remove_held(conn, &node, &tenant, session))
            .await
    }

    async fn held(&self, node: &NodeId) -> Result<Vec<(TenantId, SessionId)>> {
        let node = node.clone();
        self.inner.reads.with(move |conn| held(conn, &node)).await
    }
}
