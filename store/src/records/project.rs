//! Project-level records: the retention policy and the notices of a project's
//! channel.

use serde::{Deserialize, Serialize};

use super::StatusChange;
use crate::ids::SessionId;

/// Retention of a project's finished sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Finished sessions kept, newest activity first (1..=50).
    pub max_sessions: u32,
    /// Finished sessions idle longer than this many days are deleted (1..=365).
    pub max_age_days: u32,
}

impl RetentionPolicy {
    /// Bounds of `max_sessions`.
    pub const MAX_SESSIONS: std::ops::RangeInclusive<u32> = 1..=50;
    /// Bounds of `max_age_days`.
    pub const MAX_AGE_DAYS: std::ops::RangeInclusive<u32> = 1..=365;
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            max_sessions: 5,
            max_age_days: 30,
        }
    }
}

/// Why a project's session changed, as `sessions.changed` events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    /// Created.
    Create,
    /// A prompt was sent.
    Send,
    /// A prompt was steered in.
    Steer,
    /// A run was aborted.
    Abort,
    /// Settings changed (also pause and resume).
    Patch,
    /// The transcript was reset.
    Reset,
    /// Deleted by a client.
    Delete,
    /// Old messages were archived.
    Compact,
    /// Deleted by the project's retention.
    Retention,
    /// Its run went quiet past `stall_after`.
    Stalled,
    /// Its actor crashed and was restarted from the store.
    Restarted,
    /// A run was found interrupted (its actor or node died) and closed.
    Interrupted,
    /// A reason written by a newer version.
    #[serde(other)]
    Unknown,
}

impl ChangeReason {
    /// The reason as its wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Send => "send",
            Self::Steer => "steer",
            Self::Abort => "abort",
            Self::Patch => "patch",
            Self::Reset => "reset",
            Self::Delete => "delete",
            Self::Compact => "compact",
            Self::Retention => "retention",
            Self::Stalled => "stalled",
            Self::Restarted => "restarted",
            Self::Interrupted => "interrupted",
            Self::Unknown => "unknown",
        }
    }
}

/// What goes out on a project's channel: low-volume notices about its sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProjectEvent {
    /// A session was created, changed or removed.
    Changed {
        /// The session.
        session_id: SessionId,
        /// Why.
        reason: ChangeReason,
    },
    /// A session's status changed.
    Status(StatusChange),
    /// An event written by a newer version.
    #[serde(other)]
    Unknown,
}
