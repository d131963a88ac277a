//! The rest of `SessionStore` on Redis: delete, archive reads, idempotency keys,
//! retention policies and the project list. `sessions.rs` dispatches here.

use redis::Value;

use super::conn::{Op, evalsha, ok};
use super::keys::{SessionKeys, project_idempotency, project_index, project_retention, projects};
use super::sessions::corrupt;
use super::{RedisStore, parse};
use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::{ProjectId, SessionId, TenantId};
use crate::records::{Message, RetentionPolicy, SessionMeta};
use crate::session_store::{DeleteOutcome, IdempotencyRecord, IdempotencyScope};

/// The longest TTL sent to Redis, in ms (about 140,000 years). Redis refuses an
/// expiry that overflows when added to its clock, and a refusal inside a script
/// would stop it half done; anything longer means "forever" anyway.
const MAX_TTL_MS: u64 = 1 << 52;

/// A TTL as Redis takes it: at least 1 ms (`PX 0` is an error; a 0 TTL of the
/// contract means "already expired", which 1 ms is a moment later) and at most
/// [`MAX_TTL_MS`].
pub(super) fn px(ttl_ms: u64) -> u64 {
    ttl_ms.clamp(1, MAX_TTL_MS)
}

/// The key holding an idempotency key's answer, and its slot group.
fn idempotency_key(tenant: &TenantId, scope: &IdempotencyScope, key: &str) -> (String, String) {
    match scope {
        IdempotencyScope::Session(id) => {
            let keys = SessionKeys::new(tenant, *id);
            let name = keys.idempotency(key);
            (keys.tag, name)
        }
        IdempotencyScope::Project(project) => {
            let name = project_idempotency(tenant, project, key);
            (name.clone(), name)
        }
    }
}

/// `delete.lua` on the session's slot, then the project-level entries. Those two
/// steps cannot be one atomic unit on a cluster; the session goes first so that a
/// failure in between leaves at worst an index entry or a key claim pointing at a
/// session that loads as `None`, never a session missing from its index. Such a
/// failure is returned as an error (the outcome is unknown to the caller).
pub(super) async fn delete_session(
    store: &RedisStore,
    tenant: &TenantId,
    id: SessionId,
    fence: u64,
    archive_ttl_ms: Option<u64>,
) -> Result<DeleteOutcome> {
    let s = &store.inner;
    let keys = SessionKeys::new(tenant, id);
    let mut cmd = evalsha(
        &s.scripts.delete,
        &[&keys.meta, &keys.log, &keys.fence, &keys.lease, &keys.arch],
    );
    cmd.arg(fence);
    match archive_ttl_ms {
        Some(ttl) => cmd.arg(px(ttl)),
        None => cmd.arg(""),
    };
    let reply: Vec<Value> = parse(s.conn.one(&s.scripts, Op::new(keys.tag, cmd)).await?)?;
    let rec: Vec<u8> = match reply.as_slice() {
        [tag] => {
            return match parse::<String>(tag.clone())?.as_str() {
                "MISSING" => Ok(DeleteOutcome::Missing),
                "FENCED" => Ok(DeleteOutcome::Fenced),
                other => Err(StoreError::Unavailable(format!(
                    "redis: unexpected delete reply {other}"
                ))),
            };
        }
        [_deleted, _project, rec] => parse(rec.clone())?,
        other => {
            return Err(StoreError::Unavailable(format!(
                "redis: unexpected delete reply {other:?}"
            )));
        }
    };
    // The meta names the project and the key; the `project` field would name the
    // project alone.
    let meta: SessionMeta = codec::decode(&rec).map_err(|e| corrupt("deleted session meta", e))?;
    let idx = project_index(tenant, &meta.project);
    let mut zrem = redis::cmd("ZREM");
    zrem.arg(&idx).arg(id.to_string());
    let mut ops = vec![Op::new(idx, zrem)];
    if let Some(key) = &meta.key {
        ops.push(store.release_key_op(&meta, key));
    }
    let cleaned = match s.conn.run(&s.scripts, &ops).await {
        Ok(replies) => replies.into_iter().try_for_each(|v| ok(v).map(drop)),
        Err(e) => Err(e),
    };
    if let Err(e) = cleaned {
        tracing::warn!(session_id = %id, project = %meta.project, error = %e,
            "redis session deleted but its index entry or key claim was not removed");
        return Err(e);
    }
    Ok(DeleteOutcome::Deleted)
}

pub(super) async fn read_archive(
    store: &RedisStore,
    tenant: &TenantId,
    id: SessionId,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<Message>> {
    let keys = SessionKeys::new(tenant, id);
    // An expired archive is a missing key: XRANGE answers empty.
    store
        .read_stream(keys.tag, &keys.arch, after_seq, limit)
        .await
}

pub(super) async fn idempotent_answer(
    store: &RedisStore,
    tenant: &TenantId,
    scope: &IdempotencyScope,
    key: &str,
) -> Result<Option<String>> {
    let s = &store.inner;
    let (group, name) = idempotency_key(tenant, scope, key);
    let mut cmd = redis::cmd("GET");
    cmd.arg(name);
    parse(s.conn.one(&s.scripts, Op::new(group, cmd)).await?)
}

/// `SET NX GET` (Redis 7.0+): sets the answer unless the key exists and answers the
/// value it had, nil when this call set it.
pub(super) async fn claim_idempotency(
    store: &RedisStore,
    tenant: &TenantId,
    scope: &IdempotencyScope,
    record: &IdempotencyRecord,
) -> Result<Option<String>> {
    let s = &store.inner;
    let (group, name) = idempotency_key(tenant, scope, &record.key);
    let mut cmd = redis::cmd("SET");
    cmd.arg(name)
        .arg(&record.answer)
        .arg("NX")
        .arg("GET")
        .arg("PX")
        .arg(px(record.ttl_ms));
    parse(s.conn.one(&s.scripts, Op::new(group, cmd)).await?)
}

pub(super) async fn retention(
    store: &RedisStore,
    tenant: &TenantId,
    project: &ProjectId,
) -> Result<Option<RetentionPolicy>> {
    let s = &store.inner;
    let key = project_retention(tenant, project);
    let mut cmd = redis::cmd("GET");
    cmd.arg(&key);
    let rec: Option<Vec<u8>> = parse(s.conn.one(&s.scripts, Op::new(key, cmd)).await?)?;
    rec.map(|r| codec::decode(&r).map_err(|e| corrupt("retention policy", e)))
        .transpose()
}

pub(super) async fn set_retention(
    store: &RedisStore,
    tenant: &TenantId,
    project: &ProjectId,
    policy: &RetentionPolicy,
) -> Result<()> {
    let s = &store.inner;
    let key = project_retention(tenant, project);
    let mut cmd = redis::cmd("SET");
    cmd.arg(&key).arg(codec::encode(policy)?);
    s.conn.one(&s.scripts, Op::new(key, cmd)).await?;
    Ok(())
}

/// The projects by name (a SET has no order of its own).
pub(super) async fn list_projects(store: &RedisStore, tenant: &TenantId) -> Result<Vec<ProjectId>> {
    let s = &store.inner;
    let key = projects(tenant);
    let mut cmd = redis::cmd("SMEMBERS");
    cmd.arg(&key);
    let names: Vec<String> = parse(s.conn.one(&s.scripts, Op::new(key, cmd)).await?)?;
    let mut out = names
        .into_iter()
        .map(|p| ProjectId::new(p).map_err(|e| corrupt("stored project", e)))
        .collect::<Result<Vec<_>>>()?;
    out.sort();
    Ok(out)
}
