//! What every session actor of a node shares: stores, writer, drivers, settings, and
//! the book of leases the node renews.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessiond_store::{LeaseRef, LeaseStore, NodeId, SessionId, SessionStore, TenantId};

use crate::driver::DriverRegistry;
use crate::writer::Writer;

/// Timing of session actors.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Lease time to live; the node renews every third of it.
    pub lease_ttl: Duration,
    /// How long a cancelled run may take to end before it is force-ended.
    pub abort_grace: Duration,
    /// Deadline of a call to a session actor.
    pub call_timeout: Duration,
    /// Driver events buffered per run before the driver waits.
    pub driver_event_buffer: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(10),
            abort_grace: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            driver_event_buffer: 64,
        }
    }
}

/// The dependencies of session actors on one node.
#[derive(Clone)]
pub struct SessionContext {
    /// Where sessions live.
    pub store: Arc<dyn SessionStore>,
    /// Who runs which session.
    pub leases: Arc<dyn LeaseStore>,
    /// The node's group-commit writer.
    pub writer: Writer,
    /// Drivers by name.
    pub drivers: DriverRegistry,
    /// This node.
    pub node: NodeId,
    /// Timing.
    pub settings: SessionSettings,
    /// Leases of resident sessions, renewed by the node.
    pub lease_book: LeaseBook,
}

impl std::fmt::Debug for SessionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionContext")
            .field("node", &self.node)
            .field("drivers", &self.drivers)
            .finish_non_exhaustive()
    }
}

type OnLost = Arc<dyn Fn() + Send + Sync>;
type LeaseEntries = HashMap<(TenantId, SessionId), (u64, OnLost)>;

/// Leases held by resident sessions, so the node can renew them all in one batch and
/// tell a session at once when its lease is lost.
#[derive(Clone, Default)]
pub struct LeaseBook {
    entries: Arc<Mutex<LeaseEntries>>,
}

impl LeaseBook {
    /// Records a held lease; the entry goes when the returned guard drops.
    pub fn hold(&self, lease: LeaseRef, on_lost: OnLost) -> LeaseEntry {
        let key = (lease.tenant.clone(), lease.session);
        self.entries
            .lock()
            .expect("lease book lock")
            .insert(key.clone(), (lease.fence, on_lost));
        LeaseEntry {
            book: self.clone(),
            key,
            fence: lease.fence,
        }
    }

    /// Every held lease.
    pub fn leases(&self) -> Vec<LeaseRef> {
        self.entries
            .lock()
            .expect("lease book lock")
            .iter()
            .map(|((tenant, session), (fence, _))| LeaseRef {
                tenant: tenant.clone(),
                session: *session,
                fence: *fence,
            })
            .collect()
    }

    /// Reports that a lease could not be renewed: its session is told to stop.
    pub fn lost(&self, lease: &LeaseRef) {
        let cb = {
            let map = self.entries.lock().expect("lease book lock");
            map.get(&(lease.tenant.clone(), lease.session))
                .filter(|(fence, _)| *fence == lease.fence)
                .map(|(_, cb)| cb.clone())
        };
        if let Some(cb) = cb {
            cb();
        }
    }
}

/// A lease's place in the book; removes it on drop (also on a panic of its owner).
pub struct LeaseEntry {
    book: LeaseBook,
    key: (TenantId, SessionId),
    fence: u64,
}

impl Drop for LeaseEntry {
    fn drop(&mut self) {
        let mut map = self.book.entries.lock().expect("lease book lock");
        if map.get(&self.key).is_some_and(|(f, _)| *f == self.fence) {
            map.remove(&self.key);
        }
    }
}

impl std::fmt::Debug for LeaseEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseEntry")
            .field("fence", &self.fence)
            .finish()
    }
}
