//! `SessionStore`: session meta, transcripts and the project index.

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{ProjectId, SessionId, SessionKey, TenantId};
use crate::records::{Message, RetentionPolicy, SessionMeta, TimestampMs};

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
    /// Moves the live log's messages up to a seq into the archive, after `messages`
    /// are appended and before `meta` is stored (compact, reset).
    pub archive: Option<ArchiveUpTo>,
    /// Records an idempotency key of the session with this write; a key already
    /// recorded keeps its first answer.
    pub idempotency: Option<IdempotencyRecord>,
}

impl SessionWrite {
    /// A write of `messages` and optionally `meta`, with nothing archived or recorded.
    pub fn new(
        tenant: TenantId,
        session: SessionId,
        fence: u64,
        messages: Vec<Message>,
        meta: Option<SessionMeta>,
    ) -> Self {
        Self {
            tenant,
            session,
            fence,
            messages,
            meta,
            archive: None,
            idempotency: None,
        }
    }
}

/// Which messages leave the live log for the archive, and how long the archive keeps
/// them. Moving is atomic: a message is in the archive before it leaves the log, and
/// never in both once the write is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveUpTo {
    /// Every live message with seq <= this one moves.
    pub upto_seq: u64,
    /// The archive's time to live, refreshed by each move.
    pub ttl_ms: u64,
}

/// An idempotency key and the answer a repeat of its request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The client's key ([`valid_idempotency_key`]).
    pub key: String,
    /// The first answer, encoded by the caller (JSON).
    pub answer: String,
    /// How long the key is remembered.
    pub ttl_ms: u64,
}

/// Where an idempotency key is unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdempotencyScope {
    /// Sends to one session.
    Session(SessionId),
    /// Creates in one project.
    Project(ProjectId),
}

/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// Whether `key` is a well-formed idempotency key: 1..=128 of `A-Za-z0-9._:-`
/// (no braces, so it can never change a Redis key's hash tag).
pub fn valid_idempotency_key(key: &str) -> bool {
    (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// What became of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The session, its log, index entry and key claim are gone (the log moved to the
    /// archive when asked).
    Deleted,
    /// Another writer holds a newer fence: nothing was deleted.
    Fenced,
    /// There was no such session.
    Missing,
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

    /// Removes a session: meta, live log, project index entry and key claim, only
    /// while `fence` is its fence. With `archive_ttl_ms`, the live log moves to the
    /// archive (kept that long) first; without, the archive goes too.
    async fn delete_session(
        &self,
        tenant: &TenantId,
        id: SessionId,
        fence: u64,
        archive_ttl_ms: Option<u64>,
    ) -> Result<DeleteOutcome>;

    /// Up to `limit` archived messages with seq > `after_seq`, in seq order (empty
    /// once the archive expired).
    async fn read_archive(
        &self,
        tenant: &TenantId,
        id: SessionId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Message>>;

    /// The answer recorded for an idempotency key, while it is remembered.
    async fn idempotent_answer(
        &self,
        tenant: &TenantId,
        scope: &IdempotencyScope,
        key: &str,
    ) -> Result<Option<String>>;

    /// Records `record` unless its key is already remembered; returns the answer
    /// already recorded, or `None` when this call recorded it.
    async fn claim_idempotency(
        &self,
        tenant: &TenantId,
        scope: &IdempotencyScope,
        record: &IdempotencyRecord,
    ) -> Result<Option<String>>;

    /// A project's retention policy, if one was set.
    async fn retention(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<Option<RetentionPolicy>>;

    /// Sets a project's retention policy.
    async fn set_retention(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        policy: &RetentionPolicy,
    ) -> Result<()>;

    /// Every project of the tenant that ever had a session (for periodic sweeps).
    async fn list_projects(&self, tenant: &TenantId) -> Result<Vec<ProjectId>>;
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
