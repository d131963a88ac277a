//! Mutations of sessions and leases (the others are in `lifecycle`). They run on the
//! writer thread, each inside its request's savepoint of the batch transaction, so
//! they see every earlier request of the batch.
//!
//! Lease expiry uses the wall clock (`SystemTime`, ms): the file belongs to one process,
//! so one clock judges every lease, and the value stays meaningful across a restart
//! (a monotonic `Instant` would not).

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{corrupt, lifecycle, sql_i64, sql_id};
use crate::codec;
use crate::error::Result;
use crate::ids::{NodeId, SessionId, TenantId};
use crate::lease_store::{LeaseGrant, LeaseRef};
use crate::records::{SessionMeta, TimestampMs, now_ms};
use crate::session_store::{
    CommitOutcome, CreateOutcome, IdempotencyScope, SessionWrite, new_messages,
};

/// A write with its messages already encoded (on the caller's task, not the writer's).
pub(super) struct PreparedWrite {
    write: SessionWrite,
    bodies: Vec<Vec<u8>>,
}

impl PreparedWrite {
    pub(super) fn new(write: &SessionWrite) -> Result<Self> {
        let bodies = write
            .messages
            .iter()
            .map(codec::encode)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            write: write.clone(),
            bodies,
        })
    }
}

/// What a write did, and where its new messages start (for the announcement).
pub(super) struct Applied {
    pub(super) outcome: CommitOutcome,
    /// Index in `SessionWrite::messages` of the first newly stored message.
    pub(super) fresh_from: usize,
}

/// Stores a new session unless its key is taken. Creating an id that exists already
/// (a retry) leaves the stored session as it is and answers `Created`.
pub(super) fn create_session(
    conn: &Connection,
    meta: &SessionMeta,
    encoded: &[u8],
) -> Result<CreateOutcome> {
    let tenant = meta.tenant.as_str();
    if let Some(key) = &meta.key {
        let holder: Option<[u8; 16]> = conn
            .prepare_cached(
                "SELECT id FROM sessions WHERE tenant = ?1 AND project = ?2 AND key = ?3",
            )?
            .query_row(params![tenant, meta.project.as_str(), key.as_str()], |r| {
                r.get(0)
            })
            .optional()?;
        // Held by this very session: a retried create; the insert below is a no-op.
        if let Some(id) = holder.map(super::session_id)
            && id != meta.id
        {
            return Ok(CreateOutcome::KeyTaken(id));
        }
    }
    conn.prepare_cached(
        "INSERT INTO sessions (tenant, id, project, key, meta, last_seq, last_activity_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)
         ON CONFLICT (tenant, id) DO NOTHING",
    )?
    .execute(params![
        tenant,
        sql_id(meta.id),
        meta.project.as_str(),
        meta.key.as_ref().map(|k| k.as_str()),
        encoded,
        meta.last_activity_ms,
    ])?;
    conn.prepare_cached(
        "INSERT INTO projects (tenant, project) VALUES (?1, ?2)
         ON CONFLICT (tenant, project) DO NOTHING",
    )?
    .execute(params![tenant, meta.project.as_str()])?;
    Ok(CreateOutcome::Created)
}

/// Applies writes in order, each on its own: the outcome of one never depends on
/// whether another was fenced or refused.
pub(super) fn commit(conn: &Connection, writes: &[PreparedWrite]) -> Result<Vec<Applied>> {
    writes.iter().map(|w| commit_one(conn, w)).collect()
}

fn commit_one(conn: &Connection, prepared: &PreparedWrite) -> Result<Applied> {
    let w = &prepared.write;
    let refused = |outcome| Applied {
        outcome,
        fresh_from: w.messages.len(),
    };
    let tenant = w.tenant.as_str();
    let id = sql_id(w.session);
    let stored: Option<u64> = conn
        .prepare_cached("SELECT last_seq FROM sessions WHERE tenant = ?1 AND id = ?2")?
        .query_row(params![tenant, id], |r| r.get(0))
        .optional()?;
    let Some(stored_last) = stored else {
        return Ok(refused(CommitOutcome::Missing));
    };
    // No lease ever taken: fence 0.
    let fence: u64 = conn
        .prepare_cached("SELECT fence FROM fences WHERE tenant = ?1 AND session_id = ?2")?
        .query_row(params![tenant, id], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if w.fence != fence {
        return Ok(refused(CommitOutcome::Fenced));
    }
    let Some(fresh) = new_messages(stored_last, &w.messages) else {
        return Ok(refused(CommitOutcome::Gap {
            last_seq: stored_last,
        }));
    };
    let fresh_from = w.messages.len() - fresh.len();
    let mut insert = conn.prepare_cached(
        "INSERT INTO messages (tenant, session_id, seq, body) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (m, body) in fresh.iter().zip(&prepared.bodies[fresh_from..]) {
        insert.execute(params![tenant, id, m.seq, body])?;
    }
    let last_seq = fresh.last().map_or(stored_last, |m| m.seq);
    // The order the contract gives: messages, then the archive move, then the meta,
    // then the idempotency key; all in this request's savepoint, so all or nothing.
    if let Some(a) = &w.archive {
        lifecycle::archive(conn, &w.tenant, w.session, a.upto_seq, a.ttl_ms)?;
    }
    if let Some(meta) = &w.meta {
        let mut meta = meta.clone();
        meta.last_seq = last_seq;
        // The key and project columns keep what create_session claimed, as the memory
        // backend does: a commit never moves a key.
        conn.prepare_cached(
            "UPDATE sessions SET meta = ?3, last_seq = ?4, last_activity_ms = ?5
             WHERE tenant = ?1 AND id = ?2",
        )?
        .execute(params![
            tenant,
            id,
            codec::encode(&meta)?,
            last_seq,
            meta.last_activity_ms
        ])?;
    } else if last_seq != stored_last {
        // The blob's last_seq goes stale; readers take the column's.
        conn.prepare_cached("UPDATE sessions SET last_seq = ?3 WHERE tenant = ?1 AND id = ?2")?
            .execute(params![tenant, id, last_seq])?;
    }
    if let Some(r) = &w.idempotency {
        // A key already remembered keeps its first answer.
        lifecycle::claim_idempotency(conn, &w.tenant, &IdempotencyScope::Session(w.session), r)?;
    }
    if w.archive.is_some() || w.idempotency.is_some() {
        lifecycle::sweep_expired(conn, now_ms())?;
    }
    Ok(Applied {
        outcome: CommitOutcome::Committed { last_seq },
        fresh_from,
    })
}

fn expires_at(now: TimestampMs, ttl: Duration) -> TimestampMs {
    now.saturating_add(sql_i64(ttl.as_millis()))
}

/// Grants the lease unless another node holds a live one; every grant bumps the fence.
pub(super) fn acquire(
    conn: &Connection,
    tenant: &TenantId,
    session: SessionId,
    node: &NodeId,
    ttl: Duration,
) -> Result<LeaseGrant> {
    let now = now_ms();
    let id = sql_id(session);
    let holder: Option<(String, TimestampMs)> = conn
        .prepare_cached(
            "SELECT node, expires_at_ms FROM leases WHERE tenant = ?1 AND session_id = ?2",
        )?
        .query_row(params![tenant.as_str(), id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((owner, expires)) = holder
        && expires > now
        && owner != node.as_str()
    {
        let owner = NodeId::new(owner).map_err(|e| corrupt("lease of", session, e))?;
        return Ok(LeaseGrant::Held { owner });
    }
    let fence: u64 = conn
        .prepare_cached(
            "INSERT INTO fences (tenant, session_id, fence) VALUES (?1, ?2, 1)
             ON CONFLICT (tenant, session_id) DO UPDATE SET fence = fence + 1
             RETURNING fence",
        )?
        .query_row(params![tenant.as_str(), id], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO leases (tenant, session_id, node, fence, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant, session_id) DO UPDATE SET
             node = excluded.node, fence = excluded.fence,
             expires_at_ms = excluded.expires_at_ms",
    )?
    .execute(params![
        tenant.as_str(),
        id,
        node.as_str(),
        fence,
        expires_at(now, ttl)
    ])?;
    Ok(LeaseGrant::Granted { fence })
}

/// Extends the live leases `node` holds with the given fences.
pub(super) fn renew(
    conn: &Connection,
    node: &NodeId,
    leases: &[LeaseRef],
    ttl: Duration,
) -> Result<Vec<bool>> {
    let now = now_ms();
    let mut update = conn.prepare_cached(
        "UPDATE leases SET expires_at_ms = ?5
         WHERE tenant = ?1 AND session_id = ?2 AND node = ?3 AND fence = ?4
           AND expires_at_ms > ?6",
    )?;
    leases
        .iter()
        .map(|l| {
            let changed = update.execute(params![
                l.tenant.as_str(),
                sql_id(l.session),
                node.as_str(),
                l.fence,
                expires_at(now, ttl),
                now
            ])?;
            Ok(changed == 1)
        })
        .collect()
}

/// Drops the lease if `node` holds it with the given fence; the fence row stays.
pub(super) fn release(conn: &Connection, node: &NodeId, lease: &LeaseRef) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM leases WHERE tenant = ?1 AND session_id = ?2 AND node = ?3 AND fence = ?4",
    )?
    .execute(params![
        lease.tenant.as_str(),
        sql_id(lease.session),
        node.as_str(),
        lease.fence
    ])?;
    Ok(())
}
