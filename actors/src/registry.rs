//! What a node knows of its live actors, kept by the supervisors rather than by
//! whoever asked for an actor: the session actors ([`Residents`]) and the project
//! supervisors ([`Supervisors`]).
//!
//! An entry is made when its actor is spawned and removed when the actor ends,
//! whatever the reason (passivation, delete, crash, lost lease, stop), so neither
//! map grows with what once ran on the node. A removal names the actor it removes:
//! an older incarnation's late exit cannot remove a newer one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ractor::ActorId;
use sessiond_store::{ProjectId, SessionId, TenantId};

use crate::project::ProjectHandle;
use crate::session::SessionHandle;

type SessionKey = (TenantId, SessionId);
type ProjectKey = (TenantId, ProjectId);

/// The session actors of a node, by tenant and session; cheap to clone. The project
/// supervisors enter an actor when they spawn it (an activation or a restart after a
/// crash) and remove it when it ends.
#[derive(Clone, Default)]
pub struct Residents {
    map: Arc<Mutex<HashMap<SessionKey, SessionHandle>>>,
}

impl Residents {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, SessionHandle>> {
        self.map.lock().expect("residents lock")
    }

    /// Enters a newly spawned actor (replacing an older incarnation's entry).
    pub(crate) fn insert(&self, tenant: &TenantId, handle: SessionHandle) {
        self.lock().insert((tenant.clone(), handle.id()), handle);
    }

    /// Removes the session's entry if it is still `actor`'s; true when it was.
    pub(crate) fn remove(&self, tenant: &TenantId, id: SessionId, actor: ActorId) -> bool {
        let mut map = self.lock();
        let key = (tenant.clone(), id);
        if map.get(&key).is_some_and(|h| h.actor().get_id() == actor) {
            map.remove(&key);
            true
        } else {
            false
        }
    }

    /// Removes the session's entry whatever its incarnation: the session was
    /// deleted, and its actor is ending.
    pub fn forget(&self, tenant: &TenantId, id: SessionId) {
        self.lock().remove(&(tenant.clone(), id));
    }

    /// The session's actor, if it runs here.
    pub fn get(&self, tenant: &TenantId, id: SessionId) -> Option<SessionHandle> {
        self.lock()
            .get(&(tenant.clone(), id))
            .filter(|h| h.is_alive())
            .cloned()
    }

    /// Every session actor that runs here.
    pub fn all(&self) -> Vec<SessionHandle> {
        self.lock()
            .values()
            .filter(|h| h.is_alive())
            .cloned()
            .collect()
    }

    /// How many session actors are entered: those that run, and for a moment those
    /// whose end their supervisor has not handled yet.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is entered.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl std::fmt::Debug for Residents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Residents")
            .field("len", &self.len())
            .finish()
    }
}

/// The project supervisors of a node, by tenant and project; cheap to clone. A
/// supervisor enters itself when it starts and leaves when it ends (an idle one
/// stops by itself).
#[derive(Clone, Default)]
pub struct Supervisors {
    map: Arc<Mutex<HashMap<ProjectKey, ProjectHandle>>>,
}

impl Supervisors {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectKey, ProjectHandle>> {
        self.map.lock().expect("supervisors lock")
    }

    /// Enters a starting supervisor (replacing an ended one's entry).
    pub(crate) fn insert(&self, tenant: &TenantId, project: &ProjectId, handle: ProjectHandle) {
        self.lock()
            .insert((tenant.clone(), project.clone()), handle);
    }

    /// Removes the project's entry if it is still `actor`'s.
    pub(crate) fn remove(&self, tenant: &TenantId, project: &ProjectId, actor: ActorId) {
        let mut map = self.lock();
        let key = (tenant.clone(), project.clone());
        if map.get(&key).is_some_and(|h| h.actor_id() == actor) {
            map.remove(&key);
        }
    }

    /// The project's supervisor, if one runs. A supervisor that is stopping (idle)
    /// is not returned: the caller starts another, which replaces its entry.
    pub fn get(&self, tenant: &TenantId, project: &ProjectId) -> Option<ProjectHandle> {
        self.lock()
            .get(&(tenant.clone(), project.clone()))
            .filter(|h| h.is_alive())
            .cloned()
    }

    /// Every supervisor entered.
    pub fn all(&self) -> Vec<ProjectHandle> {
        self.lock().values().cloned().collect()
    }

    /// How many supervisors are entered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is entered.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl std::fmt::Debug for Supervisors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisors")
            .field("len", &self.len())
            .finish()
    }
}
