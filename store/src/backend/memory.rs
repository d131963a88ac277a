//! In-memory backend: the reference implementation of every trait, for tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::backend::{Backend, announce_commit};
use crate::error::Result;
use crate::fanout::LocalBus;
use crate::ids::{NodeId, ProjectId, SessionId, SessionKey, TenantId};
use crate::lease_store::{LeaseGrant, LeaseRef, LeaseStore};
use crate::records::{Message, SessionMeta, TimestampMs};
use crate::session_store::{
    CommitOutcome, CreateOutcome, SessionStore, SessionWrite, new_messages,
};

type Sid = (TenantId, SessionId);

#[derive(Default)]
struct State {
    sessions: HashMap<Sid, (SessionMeta, Vec<Message>)>,
    keys: HashMap<(TenantId, ProjectId, SessionKey), SessionId>,
    index: HashMap<(TenantId, ProjectId), BTreeMap<SessionId, TimestampMs>>,
    fences: HashMap<Sid, u64>,
    leases: HashMap<Sid, (NodeId, u64, Instant)>,
}

/// Everything in one mutex; nothing is awaited while it is held.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    bus: LocalBus,
}

/// A fresh, empty memory backend.
pub fn memory() -> Backend {
    let store = MemoryStore::default();
    Backend {
        sessions: Arc::new(store.clone()),
        leases: Arc::new(store.clone()),
        bus: Arc::new(store.bus.clone()),
        kind: "memory",
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("memory store lock")
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, meta: &SessionMeta) -> Result<CreateOutcome> {
        let mut st = self.lock();
        // A retried create: the session is there already; leave it as it is.
        if st.sessions.contains_key(&(meta.tenant.clone(), meta.id)) {
            return Ok(CreateOutcome::Created);
        }
        if let Some(key) = &meta.key {
            let k = (meta.tenant.clone(), meta.project.clone(), key.clone());
            if let Some(id) = st.keys.get(&k) {
                return Ok(CreateOutcome::KeyTaken(*id));
            }
            st.keys.insert(k, meta.id);
        }
        let mut stored = meta.clone();
        stored.last_seq = 0;
        st.sessions
            .insert((meta.tenant.clone(), meta.id), (stored, Vec::new()));
        st.index
            .entry((meta.tenant.clone(), meta.project.clone()))
            .or_default()
            .insert(meta.id, meta.last_activity_ms);
        Ok(CreateOutcome::Created)
    }

    async fn load_session(&self, tenant: &TenantId, id: SessionId) -> Result<Option<SessionMeta>> {
        Ok(self
            .lock()
            .sessions
            .get(&(tenant.clone(), id))
            .map(|(m, _)| m.clone()))
    }

    async fn resolve_key(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        key: &SessionKey,
    ) -> Result<Option<SessionId>> {
        Ok(self
            .lock()
            .keys
            .get(&(tenant.clone(), project.clone(), key.clone()))
            .copied())
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<Vec<(SessionId, TimestampMs)>> {
        let st = self.lock();
        let mut out: Vec<_> = st
            .index
            .get(&(tenant.clone(), project.clone()))
            .map(|m| m.iter().map(|(id, ts)| (*id, *ts)).collect())
            .unwrap_or_default();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
        Ok(out)
    }

    async fn read_log(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let st = self.lock();
        Ok(st
            .sessions
            .get(&(tenant.clone(), id))
            .map(|(_, log)| {
                log.iter()
                    .filter(|m| m.seq > after_seq)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn commit(&self, writes: &[SessionWrite]) -> Result<Vec<CommitOutcome>> {
        let mut outcomes = Vec::with_capacity(writes.len());
        let mut announcements = Vec::new();
        {
            let mut st = self.lock();
            for w in writes {
                let sid = (w.tenant.clone(), w.session);
                let fence = st.fences.get(&sid).copied().unwrap_or(0);
                let Some((meta, log)) = st.sessions.get_mut(&sid) else {
                    outcomes.push(CommitOutcome::Missing);
                    continue;
                };
                if w.fence != fence {
                    outcomes.push(CommitOutcome::Fenced);
                    continue;
                }
                let Some(fresh) = new_messages(meta.last_seq, &w.messages) else {
                    outcomes.push(CommitOutcome::Gap {
                        last_seq: meta.last_seq,
                    });
                    continue;
                };
                log.extend_from_slice(fresh);
                let last_seq = log.last().map_or(0, |m| m.seq);
                meta.last_seq = last_seq;
                let mut stored_meta = None;
                if let Some(new_meta) = &w.meta {
                    *meta = new_meta.clone();
                    meta.last_seq = last_seq;
                    stored_meta = Some(meta.clone());
                }
                let activity = meta.last_activity_ms;
                let project = meta.project.clone();
                if let Some(idx) = st.index.get_mut(&(w.tenant.clone(), project)) {
                    idx.insert(w.session, activity);
                }
                announcements.push((w, fresh.to_vec(), stored_meta));
                outcomes.push(CommitOutcome::Committed { last_seq });
            }
        }
        for (w, fresh, meta) in announcements {
            announce_commit(&self.bus, w, &fresh, meta.as_ref()).await;
        }
        Ok(outcomes)
    }
}

#[async_trait]
impl LeaseStore for MemoryStore {
    async fn acquire(
        &self,
        tenant: &TenantId,
        session: SessionId,
        node: &NodeId,
        ttl: Duration,
    ) -> Result<LeaseGrant> {
        let mut st = self.lock();
        let sid = (tenant.clone(), session);
        let now = Instant::now();
        if let Some((owner, _, expires)) = st.leases.get(&sid)
            && *expires > now
            && owner != node
        {
            return Ok(LeaseGrant::Held {
                owner: owner.clone(),
            });
        }
        let fence = st.fences.entry(sid.clone()).or_insert(0);
        *fence += 1;
        let fence = *fence;
        st.leases.insert(sid, (node.clone(), fence, now + ttl));
        Ok(LeaseGrant::Granted { fence })
    }

    async fn renew(&self, node: &NodeId, leases: &[LeaseRef], ttl: Duration) -> Result<Vec<bool>> {
        let mut st = self.lock();
        let now = Instant::now();
        Ok(leases
            .iter()
            .map(
                |l| match st.leases.get_mut(&(l.tenant.clone(), l.session)) {
                    Some((owner, fence, expires))
                        if owner == node && *fence == l.fence && *expires > now =>
                    {
                        *expires = now + ttl;
                        true
                    }
                    _ => false,
                },
            )
            .collect())
    }

    async fn release(&self, node: &NodeId, lease: &LeaseRef) -> Result<()> {
        let mut st = self.lock();
        let sid = (lease.tenant.clone(), lease.session);
        if matches!(st.leases.get(&sid), Some((owner, fence, _)) if owner == node && *fence == lease.fence)
        {
            st.leases.remove(&sid);
        }
        Ok(())
    }

    async fn owner(&self, tenant: &TenantId, session: SessionId) -> Result<Option<NodeId>> {
        let st = self.lock();
        Ok(st
            .leases
            .get(&(tenant.clone(), session))
            .filter(|(_, _, expires)| *expires > Instant::now())
            .map(|(owner, _, _)| owner.clone()))
    }
}
