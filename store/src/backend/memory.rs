//! In-memory backend: the reference implementation of every trait, for tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::backend::{Backend, announce_commit};
use crate::error::Result;
use crate::fanout::LocalBus;
use crate::ids::{NodeId, ProjectId, SessionId, SessionKey, TenantId};
use crate::lease_store::{LeaseGrant, LeaseRef, LeaseStore};
use crate::node_registry::{NodeRecord, NodeRegistry};
use crate::records::{Message, RetentionPolicy, SessionMeta, TimestampMs, now_ms};
use crate::session_store::{
    CommitOutcome, CreateOutcome, DeleteOutcome, IdempotencyRecord, IdempotencyScope, SessionStore,
    SessionWrite, new_messages,
};

type Sid = (TenantId, SessionId);

#[derive(Default)]
struct State {
    sessions: HashMap<Sid, (SessionMeta, Vec<Message>)>,
    keys: HashMap<(TenantId, ProjectId, SessionKey), SessionId>,
    index: HashMap<(TenantId, ProjectId), BTreeMap<SessionId, TimestampMs>>,
    fences: HashMap<Sid, u64>,
    leases: HashMap<Sid, (NodeId, u64, Instant)>,
    /// Archived messages by seq, with the archive's expiry (wall clock, ms).
    archives: HashMap<Sid, (BTreeMap<u64, Message>, TimestampMs)>,
    idempotency: HashMap<(TenantId, IdempotencyScope, String), (String, TimestampMs)>,
    retention: HashMap<(TenantId, ProjectId), RetentionPolicy>,
    projects: HashMap<TenantId, BTreeSet<ProjectId>>,
    nodes: BTreeMap<NodeId, (NodeRecord, BTreeSet<(TenantId, SessionId)>)>,
}

impl State {
    /// Moves live messages with seq <= `upto` of a session into its archive.
    fn archive(&mut self, sid: &Sid, upto: u64, ttl_ms: u64) {
        let Some((_, log)) = self.sessions.get_mut(sid) else {
            return;
        };
        let cut = log.partition_point(|m| m.seq <= upto);
        let moved: Vec<Message> = log.drain(..cut).collect();
        let now = now_ms();
        let (arch, expires) = self
            .archives
            .entry(sid.clone())
            .or_insert_with(|| (BTreeMap::new(), 0));
        if *expires <= now {
            arch.clear();
        }
        *expires = now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        arch.extend(moved.into_iter().map(|m| (m.seq, m)));
    }

    /// The answer remembered for a key, dropping it once expired.
    fn remembered(&mut self, key: &(TenantId, IdempotencyScope, String)) -> Option<String> {
        match self.idempotency.get(key) {
            Some((answer, expires)) if *expires > now_ms() => Some(answer.clone()),
            Some(_) => {
                self.idempotency.remove(key);
                None
            }
            None => None,
        }
    }

    fn claim(
        &mut self,
        tenant: &TenantId,
        scope: &IdempotencyScope,
        r: &IdempotencyRecord,
    ) -> Option<String> {
        let key = (tenant.clone(), scope.clone(), r.key.clone());
        if let Some(first) = self.remembered(&key) {
            return Some(first);
        }
        let expires = now_ms().saturating_add(i64::try_from(r.ttl_ms).unwrap_or(i64::MAX));
        self.idempotency.insert(key, (r.answer.clone(), expires));
        None
    }
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
        nodes: Arc::new(store.clone()),
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
        st.projects
            .entry(meta.tenant.clone())
            .or_default()
            .insert(meta.project.clone());
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
                let last_seq = meta.last_seq + fresh.len() as u64;
                meta.last_seq = last_seq;
                let mut stored_meta = None;
                if let Some(new_meta) = &w.meta {
                    *meta = new_meta.clone();
                    meta.last_seq = last_seq;
                    stored_meta = Some(meta.clone());
                }
                let activity = meta.last_activity_ms;
                let project = meta.project.clone();
                if let Some(a) = &w.archive {
                    st.archive(&sid, a.upto_seq, a.ttl_ms);
                }
                if let Some(r) = &w.idempotency {
                    st.claim(&w.tenant, &IdempotencyScope::Session(w.session), r);
                }
                if let Some(idx) = st.index.get_mut(&(w.tenant.clone(), project))
                    && let Some(at) = idx.get_mut(&w.session)
                {
                    *at = (*at).max(activity);
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

    async fn delete_session(
        &self,
        tenant: &TenantId,
        id: SessionId,
        fence: u64,
        archive_ttl_ms: Option<u64>,
    ) -> Result<DeleteOutcome> {
        let mut st = self.lock();
        let sid = (tenant.clone(), id);
        let Some((meta, _)) = st.sessions.get(&sid) else {
            return Ok(DeleteOutcome::Missing);
        };
        if st.fences.get(&sid).copied().unwrap_or(0) != fence {
            return Ok(DeleteOutcome::Fenced);
        }
        let (project, key) = (meta.project.clone(), meta.key.clone());
        match archive_ttl_ms {
            Some(ttl) => st.archive(&sid, u64::MAX, ttl),
            None => {
                st.archives.remove(&sid);
            }
        }
        st.sessions.remove(&sid);
        st.fences.remove(&sid);
        st.leases.remove(&sid);
        if let Some(idx) = st.index.get_mut(&(tenant.clone(), project.clone())) {
            idx.remove(&id);
        }
        if let Some(key) = key {
            let k = (tenant.clone(), project, key);
            if st.keys.get(&k) == Some(&id) {
                st.keys.remove(&k);
            }
        }
        Ok(DeleteOutcome::Deleted)
    }

    async fn read_archive(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let st = self.lock();
        Ok(match st.archives.get(&(tenant.clone(), id)) {
            Some((arch, expires)) if *expires > now_ms() => arch
                .range(after_seq.saturating_add(1)..)
                .take(limit)
                .map(|(_, m)| m.clone())
                .collect(),
            _ => Vec::new(),
        })
    }

    async fn idempotent_answer(
        &self,
        tenant: &TenantId,
        scope: &IdempotencyScope,
        key: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .lock()
            .remembered(&(tenant.clone(), scope.clone(), key.to_string())))
    }

    async fn claim_idempotency(
        &self,
        tenant: &TenantId,
        scope: &IdempotencyScope,
        record: &IdempotencyRecord,
    ) -> Result<Option<String>> {
        Ok(self.lock().claim(tenant, scope, record))
    }

    async fn retention(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<Option<RetentionPolicy>> {
        Ok(self
            .lock()
            .retention
            .get(&(tenant.clone(), project.clone()))
            .copied())
    }

    async fn set_retention(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        policy: &RetentionPolicy,
    ) -> Result<()> {
        self.lock()
            .retention
            .insert((tenant.clone(), project.clone()), *policy);
        Ok(())
    }

    async fn list_projects(&self, tenant: &TenantId) -> Result<Vec<ProjectId>> {
        Ok(self
            .lock()
            .projects
            .get(tenant)
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default())
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

#[async_trait]
impl NodeRegistry for MemoryStore {
    async fn heartbeat(&self, node: &NodeRecord) -> Result<()> {
        let mut st = self.lock();
        let entry = st
            .nodes
            .entry(node.id.clone())
            .or_insert_with(|| (node.clone(), BTreeSet::new()));
        entry.0 = node.clone();
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        Ok(self.lock().nodes.values().map(|(r, _)| r.clone()).collect())
    }

    async fn remove_node(&self, node: &NodeId) -> Result<()> {
        self.lock().nodes.remove(node);
        Ok(())
    }

    async fn add_held(&self, node: &NodeId, tenant: &TenantId, session: SessionId) -> Result<()> {
        let mut st = self.lock();
        // Held sessions of a node with no heartbeat yet still count (it is starting).
        let entry = st
            .nodes
            .entry(node.clone())
            .or_insert_with(|| (NodeRecord::unannounced(node), BTreeSet::new()));
        entry.1.insert((tenant.clone(), session));
        Ok(())
    }

    async fn remove_held(
        &self,
        node: &NodeId,
        tenant: &TenantId,
        session: SessionId,
    ) -> Result<()> {
        if let Some((_, held)) = self.lock().nodes.get_mut(node) {
            held.remove(&(tenant.clone(), session));
        }
        Ok(())
    }

    async fn held(&self, node: &NodeId) -> Result<Vec<(TenantId, SessionId)>> {
        Ok(self
            .lock()
            .nodes
            .get(node)
            .map(|(_, held)| held.iter().cloned().collect())
            .unwrap_or_default())
    }
}
