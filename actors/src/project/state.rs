//! The supervisor's state and its decisions as plain methods (tested without an
//! actor): which incarnation a session's entry belongs to, whether a crash may be
//! restarted, which crash records are old enough to go, and when an idle
//! supervisor stops.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use ractor::{ActorId, RpcReplyPort};
use sessiond_store::{ProjectId, SessionId, SessionMeta, TenantId};
use tokio::time::Instant;

use super::{MAX_RESTARTS, ProjectMsg, RESTART_WINDOW};
use crate::registry::{Residents, Supervisors};
use crate::session::SessionHandle;

/// A resident session: its actor, and the meta it restarts from.
pub(crate) struct Child {
    pub(crate) handle: SessionHandle,
    pub(crate) meta: SessionMeta,
}

/// A `send_after` timer: a task holding the actor, aborted when dropped (a stopped
/// supervisor must not be kept alive, or woken, by its timers).
pub(crate) struct Timer(
    pub(crate) tokio::task::JoinHandle<std::result::Result<(), ractor::MessagingErr<ProjectMsg>>>,
);

impl Timer {
    /// Whether it fired (or was aborted).
    pub(crate) fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where a supervisor and its sessions are entered for the node; the entries go
/// when the state drops.
pub(crate) struct Registration {
    pub(crate) residents: Residents,
    pub(crate) supervisors: Supervisors,
    /// The supervisor's own actor.
    pub(crate) me: ActorId,
}

/// The resident sessions of a project, their crash history and the retention
/// passes.
pub struct ProjectState {
    pub(crate) tenant: TenantId,
    pub(crate) project: ProjectId,
    pub(crate) children: HashMap<SessionId, Child>,
    pub(crate) by_actor: HashMap<ActorId, SessionId>,
    /// Crashes within [`RESTART_WINDOW`], per session; older ones are pruned, and a
    /// session with none has no entry.
    pub(crate) crashes: HashMap<SessionId, VecDeque<Instant>>,
    /// A retention pass is running (one at a time; more requests coalesce).
    pub(crate) enforcing: bool,
    /// Another pass was asked for while one ran.
    pub(crate) enforce_again: bool,
    /// Sweeps waiting for the next pass.
    pub(crate) sweep_waiters: Vec<RpcReplyPort<Vec<SessionId>>>,
    /// Sweeps the running pass answers.
    pub(crate) pass_waiters: Vec<RpcReplyPort<Vec<SessionId>>>,
    /// When the last pass started.
    pub(crate) last_pass: Option<Instant>,
    /// A pass scheduled after a finished run (debounced).
    pub(crate) pass_timer: Option<Timer>,
    /// Since when the supervisor has had nothing to do.
    pub(crate) idle_since: Option<Instant>,
    /// The next idle check.
    pub(crate) idle_timer: Option<Timer>,
    pub(crate) registration: Registration,
}

impl Drop for ProjectState {
    // Runs on every end of the supervisor, a panic included (`post_stop` does not):
    // its sessions end with it, so the node's maps lose them and it.
    fn drop(&mut self) {
        let r = &self.registration;
        for (id, child) in &self.children {
            r.residents
                .remove(&self.tenant, *id, child.handle.actor().get_id());
        }
        r.supervisors.remove(&self.tenant, &self.project, r.me);
    }
}

impl std::fmt::Debug for ProjectState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectState")
            .field("tenant", &self.tenant)
            .field("project", &self.project)
            .field("resident", &self.children.len())
            .finish_non_exhaustive()
    }
}

impl ProjectState {
    /// The state of a new supervisor, entered in `registration`'s maps by its
    /// caller.
    pub(crate) fn new(tenant: TenantId, project: ProjectId, registration: Registration) -> Self {
        Self {
            tenant,
            project,
            children: HashMap::new(),
            by_actor: HashMap::new(),
            crashes: HashMap::new(),
            enforcing: false,
            enforce_again: false,
            sweep_waiters: Vec::new(),
            pass_waiters: Vec::new(),
            last_pass: None,
            pass_timer: None,
            idle_since: None,
            idle_timer: None,
            registration,
        }
    }

    /// Notes a spawned session actor (here and in the node's residents).
    pub(crate) fn adopt(&mut self, handle: SessionHandle, meta: SessionMeta) {
        let id = handle.id();
        self.by_actor.insert(handle.actor().get_id(), id);
        self.registration
            .residents
            .insert(&self.tenant, handle.clone());
        self.children.insert(id, Child { handle, meta });
    }

    /// Removes the session's entry if it is still this actor's (an older
    /// incarnation's late exit must not remove a newer one).
    pub(crate) fn forget(&mut self, id: SessionId, actor: ActorId) -> Option<Child> {
        self.by_actor.remove(&actor);
        self.registration.residents.remove(&self.tenant, id, actor);
        if self.children.get(&id)?.handle.actor().get_id() == actor {
            self.children.remove(&id)
        } else {
            None
        }
    }

    /// Records a crash; true while the session may still be restarted.
    pub(crate) fn may_restart(&mut self, id: SessionId, now: Instant) -> bool {
        self.prune_crashes(now);
        let crashes = self.crashes.entry(id).or_default();
        crashes.push_back(now);
        crashes.len() <= MAX_RESTARTS
    }

    /// Drops the crash records older than [`RESTART_WINDOW`] (they no longer count
    /// against a restart), and the entries of sessions left with none.
    pub(crate) fn prune_crashes(&mut self, now: Instant) {
        self.crashes.retain(|_, crashes| {
            while crashes
                .front()
                .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
            {
                crashes.pop_front();
            }
            !crashes.is_empty()
        });
    }

    /// Nothing to do: no resident session and no retention pass running, asked
    /// for or scheduled.
    pub(crate) fn is_idle(&self) -> bool {
        self.children.is_empty()
            && !self.enforcing
            && !self.enforce_again
            && self.sweep_waiters.is_empty()
            && self.pass_waiters.is_empty()
            && self.pass_timer.as_ref().is_none_or(Timer::is_finished)
    }

    /// How long until the supervisor may stop: `None` while it has something to
    /// do, zero once it has been idle for `after` (and its crash records, which
    /// would be lost with it, have aged out: a session crashing in a loop must not
    /// get a fresh restart budget from a new supervisor).
    pub(crate) fn idle_left(&mut self, now: Instant, after: Duration) -> Option<Duration> {
        self.prune_crashes(now);
        if !self.is_idle() {
            self.idle_since = None;
            return None;
        }
        let since = *self.idle_since.get_or_insert(now);
        let mut until = since + after;
        if let Some(last) = self.crashes.values().filter_map(|c| c.back()).max() {
            // Just past the window, when the prune drops it.
            until = until.max(*last + RESTART_WINDOW + Duration::from_millis(1));
        }
        Some(until.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ProjectState {
        ProjectState::new(
            "t".parse().unwrap(),
            "p".parse().unwrap(),
            Registration {
                residents: Residents::default(),
                supervisors: Supervisors::default(),
                me: ActorId::Local(0),
            },
        )
    }

    #[test]
    fn restart_intensity_is_three_in_sixty_seconds() {
        let mut st = state();
        let id = SessionId::generate();
        let t0 = Instant::now();
        assert!(st.may_restart(id, t0));
        assert!(st.may_restart(id, t0 + Duration::from_secs(1)));
        assert!(st.may_restart(id, t0 + Duration::from_secs(2)));
        assert!(!st.may_restart(id, t0 + Duration::from_secs(3)));
        // Old crashes age out of the window.
        assert!(st.may_restart(id, t0 + Duration::from_secs(200)));
    }

    #[test]
    fn crash_records_older_than_the_window_are_pruned() {
        let mut st = state();
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(st.may_restart(SessionId::generate(), t0));
        }
        assert_eq!(st.crashes.len(), 100);
        // Another crash past the window: only its record is left.
        let late = SessionId::generate();
        assert!(st.may_restart(late, t0 + RESTART_WINDOW + Duration::from_secs(1)));
        assert_eq!(st.crashes.keys().collect::<Vec<_>>(), vec![&late]);
        // The idle check prunes too, with no crash to prompt it.
        st.idle_left(t0 + 3 * RESTART_WINDOW, Duration::from_secs(1));
        assert!(st.crashes.is_empty());
    }

    #[test]
    fn an_idle_supervisor_may_stop_after_the_idle_time_and_not_while_busy() {
        let after = Duration::from_secs(60);
        let mut st = state();
        let t0 = Instant::now();
        assert_eq!(st.idle_left(t0, after), Some(after));
        assert_eq!(
            st.idle_left(t0 + Duration::from_secs(20), after),
            Some(Duration::from_secs(40))
        );
        assert_eq!(st.idle_left(t0 + after, after), Some(Duration::ZERO));
        // A retention pass makes it busy; idle time counts again from its end.
        st.enforcing = true;
        assert_eq!(st.idle_left(t0 + after, after), None);
        st.enforcing = false;
        let t1 = t0 + 2 * after;
        assert_eq!(st.idle_left(t1, after), Some(after));
        // A recent crash keeps it until the crash has aged out of the window.
        st.may_restart(SessionId::generate(), t1);
        let left = st.idle_left(t1 + after, after).unwrap();
        assert!(left > Duration::ZERO && left <= RESTART_WINDOW, "{left:?}");
        assert_eq!(
            st.idle_left(t1 + RESTART_WINDOW + Duration::from_secs(1), after),
            Some(Duration::ZERO)
        );
    }
}
