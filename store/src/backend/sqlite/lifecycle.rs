//! Mutations beyond appends: archive moves, deletes, idempotency keys, retention
//! policies, and the sweep of expired rows. Like `ops`, they run on the writer thread
//! inside their request's savepoint.

use rusqlite::{Connection, OptionalExtension, params};

use super::{scope_text, sql_i64, sql_id};
use crate::error::Result;
use crate::ids::{ProjectId, SessionId, TenantId};
use crate::records::{TimestampMs, now_ms};
use crate::session_store::{DeleteOutcome, IdempotencyRecord, IdempotencyScope};

/// Expired archives and idempotency keys one sweep removes at most, so a sweep never
/// makes the request that runs it slow.
const SWEEP_LIMIT: i64 = 32;

fn expiry(now: TimestampMs, ttl_ms: u64) -> TimestampMs {
    now.saturating_add(sql_i64(ttl_ms))
}

/// Moves the session's live messages with seq <= `upto` into its archive and sets the
/// archive to expire `ttl_ms` from now. An expired archive is emptied first, so it
/// counts as empty (as an expired Redis key does). One statement copies, the next
/// deletes, both in the caller's savepoint: a message is never in both, nor in neither.
pub(super) fn archive(
    conn: &Connection,
    tenant: &TenantId,
    session: SessionId,
    upto: u64,
    ttl_ms: u64,
) -> Result<()> {
    let (t, id, now) = (tenant.as_str(), sql_id(session), now_ms());
    let expires: Option<TimestampMs> = conn
        .prepare_cached("SELECT expires_at_ms FROM archives WHERE tenant = ?1 AND session_id = ?2")?
        .query_row(params![t, id], |r| r.get(0))
        .optional()?;
    if expires.is_some_and(|at| at <= now) {
        drop_archive(conn, tenant, session)?;
    }
    let upto = sql_i64(upto);
    // A seq archived before (only after a session id was created again) is replaced,
    // as the memory backend does.
    conn.prepare_cached(
        "INSERT INTO archived_messages (tenant, session_id, seq, body)
         SELECT tenant, session_id, seq, body FROM messages
         WHERE tenant = ?1 AND session_id = ?2 AND seq <= ?3
         ON CONFLICT (tenant, session_id, seq) DO UPDATE SET body = excluded.body",
    )?
    .execute(params![t, id, upto])?;
    conn.prepare_cached(
        "DELETE FROM messages WHERE tenant = ?1 AND session_id = ?2 AND seq <= ?3",
    )?
    .execute(params![t, id, upto])?;
    conn.prepare_cached(
        "INSERT INTO archives (tenant, session_id, expires_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant, session_id) DO UPDATE SET expires_at_ms = excluded.expires_at_ms",
    )?
    .execute(params![t, id, expiry(now, ttl_ms)])?;
    Ok(())
}

fn drop_archive(conn: &Connection, tenant: &TenantId, session: SessionId) -> Result<()> {
    let (t, id) = (tenant.as_str(), sql_id(session));
    conn.prepare_cached("DELETE FROM archived_messages WHERE tenant = ?1 AND session_id = ?2")?
        .execute(params![t, id])?;
    conn.prepare_cached("DELETE FROM archives WHERE tenant = ?1 AND session_id = ?2")?
        .execute(params![t, id])?;
    Ok(())
}

/// Removes a session while `fence` is its fence (see `SessionStore::delete_session`).
/// The key claim is the `key` column of the session's row, so it goes with the row
/// and can never take another session's claim along. The fence row goes too, unlike
/// after a release: the session is gone, and a writer still holding the old fence gets
/// `Missing` from then on.
pub(super) fn delete_session(
    conn: &Connection,
    tenant: &TenantId,
    session: SessionId,
    fence: u64,
    archive_ttl_ms: Option<u64>,
) -> Result<DeleteOutcome> {
    let (t, id) = (tenant.as_str(), sql_id(session));
    let exists = conn
        .prepare_cached("SELECT 1 FROM sessions WHERE tenant = ?1 AND id = ?2")?
        .exists(params![t, id])?;
    if !exists {
        return Ok(DeleteOutcome::Missing);
    }
    let current: u64 = conn
        .prepare_cached("SELECT fence FROM fences WHERE tenant = ?1 AND session_id = ?2")?
        .query_row(params![t, id], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if current != fence {
        return Ok(DeleteOutcome::Fenced);
    }
    match archive_ttl_ms {
        Some(ttl) => archive(conn, tenant, session, u64::MAX, ttl)?,
        None => drop_archive(conn, tenant, session)?,
    }
    for sql in [
        "DELETE FROM messages WHERE tenant = ?1 AND session_id = ?2",
        "DELETE FROM leases WHERE tenant = ?1 AND session_id = ?2",
        "DELETE FROM fences WHERE tenant = ?1 AND session_id = ?2",
        "DELETE FROM sessions WHERE tenant = ?1 AND id = ?2",
    ] {
        conn.prepare_cached(sql)?.execute(params![t, id])?;
    }
    sweep_expired(conn, now_ms())?;
    Ok(DeleteOutcome::Deleted)
}

/// Records `record` unless its key is remembered (live); returns the remembered
/// answer, or `None` when this call recorded it. An expired row is overwritten.
pub(super) fn claim_idempotency(
    conn: &Connection,
    tenant: &TenantId,
    scope: &IdempotencyScope,
    record: &IdempotencyRecord,
) -> Result<Option<String>> {
    let (t, scope, now) = (tenant.as_str(), scope_text(scope), now_ms());
    let live: Option<String> = conn
        .prepare_cached(
            "SELECT answer FROM idempotency
             WHERE tenant = ?1 AND scope = ?2 AND key = ?3 AND expires_at_ms > ?4",
        )?
        .query_row(params![t, scope, record.key, now], |r| r.get(0))
        .optional()?;
    if live.is_some() {
        return Ok(live);
    }
    conn.prepare_cached(
        "INSERT INTO idempotency (tenant, scope, key, answer, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant, scope, key) DO UPDATE SET
             answer = excluded.answer, expires_at_ms = excluded.expires_at_ms",
    )?
    .execute(params![
        t,
        scope,
        record.key,
        record.answer,
        expiry(now, record.ttl_ms)
    ])?;
    Ok(None)
}

/// Stores a project's retention policy (a codec blob), replacing any earlier one.
pub(super) fn set_retention(
    conn: &Connection,
    tenant: &TenantId,
    project: &ProjectId,
    encoded: &[u8],
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO retention (tenant, project, policy) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant, project) DO UPDATE SET policy = excluded.policy",
    )?
    .execute(params![tenant.as_str(), project.as_str(), encoded])?;
    Ok(())
}

/// Deletes a few expired archives and idempotency keys. Reads already ignore them;
/// this only gives the space back. Runs with writes that create such rows, so the
/// sweep keeps pace with whatever makes them.
pub(super) fn sweep_expired(conn: &Connection, now: TimestampMs) -> Result<()> {
    let expired: Vec<(String, [u8; 16])> = conn
        .prepare_cached(
            "SELECT tenant, session_id FROM archives WHERE expires_at_ms <= ?1 LIMIT ?2",
        )?
        .query_map(params![now, SWEEP_LIMIT], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (t, id) in expired {
        for sql in [
            "DELETE FROM archived_messages WHERE tenant = ?1 AND session_id = ?2",
            "DELETE FROM archives WHERE tenant = ?1 AND session_id = ?2",
        ] {
            conn.prepare_cached(sql)?.execute(params![t, id])?;
        }
    }
    conn.prepare_cached(
        "DELETE FROM idempotency WHERE (tenant, scope, key) IN
            (SELECT tenant, scope, key FROM idempotency WHERE expires_at_ms <= ?1 LIMIT ?2)",
    )?
    .execute(params![now, SWEEP_LIMIT])?;
    Ok(())
}
