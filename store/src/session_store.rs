//! `SessionStore`: session meta, transcripts and the project index.

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{ProjectId, SessionId, SessionKey, TenantId};
use crate::records::{Message, SessionMeta, TimestampMs};

/// One session's share of a group commit: messages to append and the meta to write
/// after them, applied atomically and only while `fence` is the session's fence.
#[derive(Debug, Clone)]
pub struct SessionWrite {
    /// The session's tenant.
    pub tenant: TenantId,
    /// The session.
    pub session: SessionId,
    /// Fence token of the writer's lease; a stale one answers `Fenced`.
    pub fence: u64,
    /// Messages in seq order, dense. Seqs already stored are skipped (a retry after an
    /// ambiguous failure); the first new one must be `last_seq + 1`.
    pub messages: Vec<Message>,
    /// Meta to store after the messages (its `last_seq` is replaced by the store's).
    pub meta: Option<SessionMeta>,
}

/// What became of one `SessionWrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Everything is stored; the session's log now ends at `last_seq`.
    Committed {
        /// Seq of the last stored message.
        last_seq: u64,
    },
    /// Another writer holds a newer fence: nothing was written.
    Fenced,
    /// The first new message does not follow the stored log: nothing was written.
    Gap {
        /// Seq of the last stored message.
        last_seq: u64,
    },
    /// The session does not exist (deleted): nothing was written.
    Missing,
}

/// Result of creating a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The session is stored.
    Created,
    /// Its key is already held by this session.
    KeyTaken(SessionId),
}

/// Durable home of sessions: meta, the transcript log and the per-project index.
///
/// Every successful commit publishes, after it is durable, a [`crate::BusEvent`]
/// `Messages` (when messages were added) then `Status` (when meta was written) on the
/// session's channel of the same backend's [`crate::EventBus`].
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session, claims its key (if any) and adds it to the project index.
    async fn create_session(&self, meta: &SessionMeta) -> Result<CreateOutcome>;

    /// Reads a session's meta; `last_seq` reflects the log.
    async fn load_session(&self, tenant: &TenantId, id: SessionId) -> Result<Option<SessionMeta>>;

    /// Finds the session holding `key` in a project.
    async fn resolve_key(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        key: &SessionKey,
    ) -> Result<Option<SessionId>>;

    /// The sessions of a project with their last activity, newest first.
    async fn list_sessions(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<Vec<(SessionId, TimestampMs)>>;

    /// Up to `limit` messages with seq > `after_seq`, in seq order.
    async fn read_log(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>>;

    /// Applies a batch of writes (a group commit), one outcome per write in order.
    /// An `Err` leaves the batch's fate unknown: retrying the same batch is safe.
    async fn commit(&self, writes: &[SessionWrite]) -> Result<Vec<CommitOutcome>>;
}

/// Which messages of a write are new, given the stored `last_seq`: those already
/// stored are skipped; the rest must continue the log densely. `None` is a gap.
/// Backends that apply writes in Rust (memory, sqlite) share this rule; the Redis
/// script implements the same one.
pub fn new_messages(last_seq: u64, messages: &[Message]) -> Option<&[Message]> {
    let start = messages
        .iter()
        .position(|m| m.seq > last_seq)
        .unwrap_or(messages.len());
    let fresh = &messages[start..];
    let dense = fresh
        .iter()
        .enumerate()
        .all(|(i, m)| m.seq == last_seq + 1 + i as u64);
    dense.then_some(fresh)
}
