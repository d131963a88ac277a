//! `SessionStore` on Redis: meta hashes, log streams, the project index and keys
//! (the methods of `lifecycle` are dispatched from here).

use async_trait::async_trait;
use redis::Value;
use redis::streams::StreamRangeReply;

use super::conn::{Op, evalsha, ok};
use super::keys::{SessionKeys, project_index, project_keys, projects};
use super::lifecycle::{self, px};
use super::{RedisStore, parse, payload};
use crate::codec;
use crate::error::{Result, StoreError};
use crate::event_bus::Channel;
use crate::ids::{ProjectId, SessionId, SessionKey, TenantId};
use crate::records::{Message, RetentionPolicy, SessionMeta, TimestampMs};
use crate::session_store::{
    CommitOutcome, CreateOutcome, DeleteOutcome, IdempotencyRecord, IdempotencyScope, SessionStore,
    SessionWrite,
};

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn session_id(s: &str) -> Result<SessionId> {
    s.parse().map_err(|e| corrupt("stored session id", e))
}

/// `{'OK', n}` | `{'GAP', n}` | `{'FENCED'}` | `{'MISSING'}` from `append.lua`.
fn outcome(reply: Value) -> Result<CommitOutcome> {
    let (tag, last): (String, Option<u64>) = match parse::<Vec<Value>>(reply)?.as_slice() {
        [tag] => (parse(tag.clone())?, None),
        [tag, n] => (parse(tag.clone())?, Some(parse(n.clone())?)),
        other => {
            return Err(StoreError::Unavailable(format!(
                "redis: unexpected append reply {other:?}"
            )));
        }
    };
    Ok(match (tag.as_str(), last) {
        ("OK", Some(last_seq)) => CommitOutcome::Committed { last_seq },
        ("GAP", Some(last_seq)) => CommitOutcome::Gap { last_seq },
        ("FENCED", None) => CommitOutcome::Fenced,
        ("MISSING", None) => CommitOutcome::Missing,
        _ => {
            return Err(StoreError::Unavailable(format!(
                "redis: unexpected append reply {tag}"
            )));
        }
    })
}

impl RedisStore {
    /// The append script call of one write (see `append.lua` for the arguments).
    fn append_op(&self, w: &SessionWrite) -> Result<Op> {
        let s = &self.inner;
        let keys = SessionKeys::new(&w.tenant, w.session);
        let channel = Channel::session(&w.tenant, w.session);
        let idempotency = w.idempotency.as_ref().map(|r| keys.idempotency(&r.key));
        let mut script_keys = vec![&keys.meta, &keys.log, &keys.fence, &keys.arch];
        script_keys.extend(&idempotency);
        let script_keys: Vec<&str> = script_keys.into_iter().map(String::as_str).collect();
        let mut cmd = evalsha(&s.scripts.append, &script_keys);
        cmd.arg(w.fence).arg(channel.as_str()).arg(w.messages.len());
        for m in &w.messages {
            cmd.arg(m.seq).arg(codec::encode(m)?);
        }
        match &w.meta {
            Some(meta) => {
                let status = payload::status_template(meta)?;
                cmd.arg(codec::encode(meta)?)
                    .arg(&s.messages.prefix)
                    .arg(&s.messages.suffix)
                    .arg(status.prefix)
                    .arg(status.suffix);
            }
            None => {
                cmd.arg("")
                    .arg(&s.messages.prefix)
                    .arg(&s.messages.suffix)
                    .arg("")
                    .arg("");
            }
        }
        match &w.archive {
            Some(a) => cmd.arg(a.upto_seq).arg(px(a.ttl_ms)),
            None => cmd.arg("").arg(""),
        };
        match &w.idempotency {
            Some(r) => cmd.arg(&r.answer).arg(px(r.ttl_ms)),
            None => cmd.arg("").arg(""),
        };
        Ok(Op::new(keys.tag, cmd))
    }

    /// The call of `release_key.lua`: drops `meta`'s claim of `key` if it still holds it.
    pub(super) fn release_key_op(&self, meta: &SessionMeta, key: &SessionKey) -> Op {
        let hash = project_keys(&meta.tenant, &meta.project);
        let mut cmd = evalsha(&self.inner.scripts.release_key, &[&hash]);
        cmd.arg(key.as_str()).arg(meta.id.to_string());
        Op::new(hash, cmd)
    }

    /// Up to `limit` messages of a log or archive stream with seq > `after_seq`.
    pub(super) async fn read_stream(
        &self,
        tag: String,
        stream: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        if limit == 0 || after_seq == u64::MAX {
            return Ok(Vec::new());
        }
        let s = &self.inner;
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(stream)
            .arg(format!("{}-0", after_seq + 1))
            .arg("+")
            .arg("COUNT")
            .arg(limit.min(i64::MAX as usize));
        let reply: StreamRangeReply = parse(s.conn.one(&s.scripts, Op::new(tag, cmd)).await?)?;
        reply
            .ids
            .into_iter()
            .map(|entry| {
                let bytes: Vec<u8> = match entry.map.get("m") {
                    Some(v) => parse(v.clone())?,
                    None => return Err(corrupt("log entry", format!("{} has no m", entry.id))),
                };
                Ok(codec::decode(&bytes)?)
            })
            .collect()
    }

    /// Gives a key claim back after the session could not be stored.
    async fn release_key(&self, meta: &SessionMeta, key: &SessionKey) {
        let s = &self.inner;
        if let Err(e) = s.conn.one(&s.scripts, self.release_key_op(meta, key)).await {
            tracing::warn!(session_id = %meta.id, key = %key, error = %e,
                "redis key claim not released after a failed create");
        }
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(&self, meta: &SessionMeta) -> Result<CreateOutcome> {
        let s = &self.inner;
        let sid = meta.id.to_string();
        let mut stored = meta.clone();
        stored.last_seq = 0;
        let rec = codec::encode(&stored)?;

        if let Some(key) = &meta.key {
            let hash = project_keys(&meta.tenant, &meta.project);
            let mut cmd = evalsha(&s.scripts.claim_key, &[&hash]);
            cmd.arg(key.as_str()).arg(&sid);
            let reply: Vec<Value> = parse(s.conn.one(&s.scripts, Op::new(hash, cmd)).await?)?;
            if let [claimed, holder] = reply.as_slice() {
                debug_assert_eq!(claimed, &Value::Int(0));
                let holder: String = parse(holder.clone())?;
                // Held by this very session: a retried create whose first claim
                // succeeded; carry on.
                if holder != sid {
                    return Ok(CreateOutcome::KeyTaken(session_id(&holder)?));
                }
            }
        }

        let keys = SessionKeys::new(&meta.tenant, meta.id);
        let mut create = evalsha(&s.scripts.create, &[&keys.meta, &keys.log, &keys.arch]);
        create.arg(rec).arg(meta.project.as_str());
        let idx = project_index(&meta.tenant, &meta.project);
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&idx)
            .arg("NX")
            .arg(meta.last_activity_ms)
            .arg(&sid);
        let all = projects(&meta.tenant);
        let mut sadd = redis::cmd("SADD");
        sadd.arg(&all).arg(meta.project.as_str());
        let ops = [
            Op::new(keys.tag, create),
            Op::new(idx, zadd),
            Op::new(all, sadd),
        ];
        let stored = match s.conn.run(&s.scripts, &ops).await {
            Ok(replies) => replies.into_iter().try_for_each(|v| ok(v).map(drop)),
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            // An error can be ambiguous (the create may have run): give the key back
            // only when the session is certainly not there, or a retried create of
            // another session could take the key of one that exists.
            if let Some(key) = &meta.key
                && matches!(self.load_session(&meta.tenant, meta.id).await, Ok(None))
            {
                self.release_key(meta, key).await;
            }
            return Err(e);
        }
        Ok(CreateOutcome::Created)
    }

    async fn load_session(&self, tenant: &TenantId, id: SessionId) -> Result<Option<SessionMeta>> {
        let s = &self.inner;
        let keys = SessionKeys::new(tenant, id);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&keys.meta).arg("rec").arg("last_seq");
        let (rec, last_seq): (Option<Vec<u8>>, Option<u64>) =
            parse(s.conn.one(&s.scripts, Op::new(keys.tag, cmd)).await?)?;
        let Some(rec) = rec else {
            return Ok(None);
        };
        let mut meta: SessionMeta = codec::decode(&rec)?;
        // `rec` keeps the writer's last_seq; the hash field is the log's.
        meta.last_seq = last_seq.ok_or_else(|| corrupt("session meta", "no last_seq"))?;
        Ok(Some(meta))
    }

    async fn resolve_key(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        key: &SessionKey,
    ) -> Result<Option<SessionId>> {
        let s = &self.inner;
        let hash = project_keys(tenant, project);
        let mut cmd = redis::cmd("HGET");
        cmd.arg(&hash).arg(key.as_str());
        let holder: Option<String> = parse(s.conn.one(&s.scripts, Op::new(hash, cmd)).await?)?;
        holder.as_deref().map(session_id).transpose()
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<Vec<(SessionId, TimestampMs)>> {
        let s = &self.inner;
        let idx = project_index(tenant, project);
        let mut cmd = redis::cmd("ZREVRANGE");
        cmd.arg(&idx).arg(0).arg(-1).arg("WITHSCORES");
        let entries: Vec<(String, f64)> = parse(s.conn.one(&s.scripts, Op::new(idx, cmd)).await?)?;
        // Ties: ZREVRANGE orders members descending, and the hyphenated UUID text
        // sorts as the id does: the memory backend's order.
        entries
            .into_iter()
            .map(|(id, score)| Ok((session_id(&id)?, score as TimestampMs)))
            .collect()
    }

    async fn read_log(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let keys = SessionKeys::new(tenant, id);
        self.read_stream(keys.tag, &keys.log, after_seq, limit)
            .await
    }

    async fn commit(&self, writes: &[SessionWrite]) -> Result<Vec<CommitOutcome>> {
        let s = &self.inner;
        // One script per write, plus the index update of writes that carry meta, all
        // in one round trip. The index is a project-level key, so it cannot be in the
        // (single-slot) script: ZADD XX never re-adds a deleted session, and GT never
        // moves a session's activity back (a fenced writer's older meta).
        let mut ops = Vec::with_capacity(writes.len() * 2);
        let mut is_append = Vec::with_capacity(writes.len() * 2);
        for w in writes {
            ops.push(self.append_op(w)?);
            is_append.push(true);
            if let Some(meta) = &w.meta {
                let idx = project_index(&w.tenant, &meta.project);
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(&idx)
                    .arg("XX")
                    .arg("GT")
                    .arg(meta.last_activity_ms)
                    .arg(w.session.to_string());
                ops.push(Op::new(idx, zadd));
                is_append.push(false);
            }
        }
        let replies = s.conn.run(&s.scripts, &ops).await?;
        let mut outcomes = Vec::with_capacity(writes.len());
        for (reply, append) in replies.into_iter().zip(is_append) {
            if append {
                outcomes.push(outcome(reply)?);
            } else {
                ok(reply)?;
            }
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
        lifecycle::delete_session(self, tenant, id, fence, archive_ttl_ms).await
    }

    async fn read_archive(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        lifecycle::read_archive(self, tenant, id, after_seq, limit).await
    }

    async fn idempotent_answer(
        &self,
        tenant: &TenantId,
        scope: &IdempotencyScope,
        key: &str,
    ) -> Result<Option<String>> {
        lifecycle::idempotent_answer(self, tenant, scope, key).await
    }

    async fn claim_idempotency(
        &self,
        tenant: &TenantId,
        scope: &IdempotencyScope,
        record: &IdempotencyRecord,
    ) -> Result<Option<String>> {
        lifecycle::claim_idempotency(self, tenant, scope, record).await
    }

    async fn retention(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<Option<RetentionPolicy>> {
        lifecycle::retention(self, tenant, project).await
    }

    async fn set_retention(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        policy: &RetentionPolicy,
    ) -> Result<()> {
        lifecycle::set_retention(self, tenant, project, policy).await
    }

    async fn list_projects(&self, tenant: &TenantId) -> Result<Vec<ProjectId>> {
        lifecycle::list_projects(self, tenant).await
    }
}
