//! What every session actor of a node shares: stores, writer, drivers, settings, the
//! book of leases the node renews, and the registries of the node's live actors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessiond_store::{
    BusEvent, ChangeReason, Channel, LeaseRef, LeaseStore, NodeId, NodeRegistry, ProjectEvent,
    ProjectId, RetentionPolicy, SessionId, SessionStore, TenantId,
};

use crate::driver::DriverRegistry;
use crate::notices::Notices;
use crate::registry::{Residents, Supervisors};
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
    /// How long a steer waits for the active run to end before force-ending it.
    pub steer_deadline: Duration,
    /// A resident session with nothing to do for this long is passivated: its actor
    /// stops, its data stays, the next request brings it back.
    pub idle_after: Duration,
    /// A project supervisor with no resident session and no retention pass pending
    /// for this long stops; the next request for the project starts another. Shorter
    /// than `idle_after` by default: the node's retention sweep starts a supervisor
    /// for every project, and those should not outlive the pass by much.
    pub project_idle_after: Duration,
    /// A run with no driver activity for this long emits `stalled`.
    pub stall_after: Duration,
    /// A run with no driver activity for this long is aborted (off when `None`).
    pub stall_abort_after: Option<Duration>,
    /// How long compacted, reset and deleted-with-archive messages are kept.
    pub archive_ttl: Duration,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: Duration,
    /// Most prompts waiting behind the active run; a send past it is refused.
    pub max_queued: usize,
    /// Retention of projects that set none.
    pub default_retention: RetentionPolicy,
    /// Honour test hooks in session options (the scripted driver's `crash_actor`).
    /// Off by default: a client must not be able to crash its sessions on purpose.
    pub test_hooks: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(10),
            abort_grace: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            driver_event_buffer: 64,
            steer_deadline: Duration::from_secs(15),
            idle_after: Duration::from_secs(10 * 60),
            project_idle_after: Duration::from_secs(60),
            stall_after: Duration::from_secs(15 * 60),
            stall_abort_after: None,
            archive_ttl: Duration::from_secs(30 * 24 * 3600),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            max_queued: 1000,
            default_retention: RetentionPolicy::default(),
            test_hooks: false,
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
    /// Where project notices (`sessions.changed`, statuses) and stall notices go:
    /// the node's one publisher, in order.
    pub notices: Notices,
    /// Which sessions this node holds, for the survivors of its death.
    pub nodes: Arc<dyn NodeRegistry>,
    /// Woken (all waiters) whenever a session of this node becomes settled (no
    /// run, none to start by itself) or stops: what a draining node waits on
    /// instead of polling.
    pub settled: Arc<tokio::sync::Notify>,
    /// The node's live session actors, kept by the project supervisors.
    pub residents: Residents,
    /// The node's live project supervisors, kept by the supervisors themselves.
    pub supervisors: Supervisors,
}

impl SessionContext {
    /// Publishes a project notice in the background: pub/sub is at-most-once by
    /// contract, and no caller should wait on a notice.
    pub fn announce(&self, tenant: &TenantId, project: &ProjectId, event: ProjectEvent) {
        self.notices
            .publish(Channel::project(tenant, project), &event);
    }

    /// Publishes `sessions.changed` for a session with `reason`.
    pub fn changed(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        id: SessionId,
        reason: ChangeReason,
    ) {
        self.announce(
            tenant,
            project,
            ProjectEvent::Changed {
                session_id: id,
                reason,
            },
        );
    }

    /// Publishes a session-channel notice that no commit carries (a stall).
    pub fn notify_session(&self, tenant: &TenantId, id: SessionId, event: &BusEvent) {
        self.notices.publish(Channel::session(tenant, id), event);
    }
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
