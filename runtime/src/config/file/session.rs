//! `[session]`: the timing of session actors, in milliseconds.

use std::time::Duration;

use serde::Deserialize;
use sessiond_actors::SessionSettings;

use super::{DAY_MS, as_millis, millis, within};
use crate::config::ConfigError;

/// `[session]`: the timing of session actors, in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSection {
    /// Lease time to live (1000..=600000, default 10000). The node renews its
    /// leases and heartbeats every third of it; a dead node's sessions are taken
    /// over after it.
    pub lease_ttl_ms: u64,
    /// How long a cancelled run may take to end before it is force-ended
    /// (10..=600000, default 5000).
    pub abort_grace_ms: u64,
    /// Deadline of a call to a session: send, abort, ... (100..=3600000, default
    /// 30000). A command forwarded to the node holding the session waits this + 1 s.
    pub call_timeout_ms: u64,
    /// How long a steer (or reset) waits for the active run to end before it
    /// force-ends it, marked aborted (10..=600000, default 15000).
    pub steer_deadline_ms: u64,
    /// Passivate a session idle this long: its actor (and an ACP agent process)
    /// stops, its data stays (10..=2592000000, default 600000).
    pub idle_after_ms: u64,
    /// Emit `stalled` after this long without driver activity; the run keeps going
    /// (10..=2592000000, default 900000).
    pub stall_after_ms: u64,
    /// Abort a run this long without driver activity (10..=2592000000; off by
    /// default).
    pub stall_abort_after_ms: Option<u64>,
    /// Days compacted, reset and deleted-with-archive messages are kept
    /// (1..=3650, default 30).
    pub archive_ttl_days: u64,
    /// Prompts waiting behind a run, per session; a send past it answers 409
    /// `conflict` (1..=100000, default 1000).
    pub max_queued: usize,
    /// Honour the scripted driver's `crash_actor` (default false): for test
    /// servers only, it makes a session actor panic on request.
    pub test_hooks: bool,
}

impl Default for SessionSection {
    fn default() -> Self {
        let s = SessionSettings::default();
        Self {
            lease_ttl_ms: as_millis(s.lease_ttl),
            abort_grace_ms: as_millis(s.abort_grace),
            call_timeout_ms: as_millis(s.call_timeout),
            steer_deadline_ms: as_millis(s.steer_deadline),
            idle_after_ms: as_millis(s.idle_after),
            stall_after_ms: as_millis(s.stall_after),
            stall_abort_after_ms: s.stall_abort_after.map(as_millis),
            archive_ttl_days: s.archive_ttl.as_secs() / DAY_SECS,
            max_queued: s.max_queued,
            test_hooks: s.test_hooks,
        }
    }
}

/// A day in seconds.
const DAY_SECS: u64 = 24 * 3600;

impl SessionSection {
    /// The session settings these keys give (`default_retention` is
    /// `[retention]`'s, set by the caller).
    pub(super) fn to_settings(&self) -> Result<SessionSettings, ConfigError> {
        let longest = 30 * DAY_MS;
        Ok(SessionSettings {
            lease_ttl: millis("session.lease_ttl_ms", self.lease_ttl_ms, 1_000..=600_000)?,
            abort_grace: millis("session.abort_grace_ms", self.abort_grace_ms, 10..=600_000)?,
            call_timeout: millis(
                "session.call_timeout_ms",
                self.call_timeout_ms,
                100..=3_600_000,
            )?,
            steer_deadline: millis(
                "session.steer_deadline_ms",
                self.steer_deadline_ms,
                10..=600_000,
            )?,
            idle_after: millis("session.idle_after_ms", self.idle_after_ms, 10..=longest)?,
            stall_after: millis("session.stall_after_ms", self.stall_after_ms, 10..=longest)?,
            stall_abort_after: self
                .stall_abort_after_ms
                .map(|v| millis("session.stall_abort_after_ms", v, 10..=longest))
                .transpose()?,
            archive_ttl: Duration::from_secs(
                within("session.archive_ttl_days", self.archive_ttl_days, 1..=3650)? * DAY_SECS,
            ),
            max_queued: within("session.max_queued", self.max_queued, 1..=100_000)?,
            test_hooks: self.test_hooks,
            ..SessionSettings::default()
        })
    }
}
