//! Operations over a project: list with filters and cursor, resolve a key,
//! children, preview of many sessions, retention, project events, node info; and
//! the projects part, which starts supervisors and runs the retention sweep.

use std::sync::Weak;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use sessiond_store::{
    BusSignal, Channel, Message, ProjectEvent, ProjectId, RetentionPolicy, SessionId, SessionKey,
    SessionMeta, SessionStatus, TenantId, TimestampMs, codec,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Inner, Node};
use crate::config::Config;
use crate::error::{Error, Result};

/// The projects part: the lock under which supervisors start (so a project gets
/// one, and a stop collects every one), and the retention sweep. The supervisors
/// themselves are in the context's registry, which they keep: an idle one stops
/// and leaves it.
pub(super) struct Projects {
    starting: tokio::sync::Mutex<()>,
    sweep_every: Duration,
}

impl Projects {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            starting: tokio::sync::Mutex::new(()),
            sweep_every: config.retention_sweep,
        }
    }

    /// Held while a supervisor is looked up and started, and while a stop collects
    /// them.
    pub(super) async fn starting(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.starting.lock().await
    }

    /// Starts the retention sweep, until `stop`.
    pub(super) fn start(&self, node: Weak<Inner>, tasks: &TaskTracker, stop: &CancellationToken) {
        tasks.spawn(sweep_retention(node, self.sweep_every, stop.clone()));
    }
}

/// Sessions read from the store at once while listing.
const LOAD_CONCURRENCY: usize = 16;

/// A list request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only sessions with this status.
    pub status: Option<SessionStatus>,
    /// Only sessions with exactly this label.
    pub label: Option<String>,
    /// Only children of this session.
    pub parent_id: Option<SessionId>,
    /// Page size.
    pub limit: usize,
    /// Where the previous page ended (`next_cursor`).
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct SessionPage {
    /// Newest activity first.
    pub sessions: Vec<SessionMeta>,
    /// Pass as `cursor` for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// How a preview found a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewStatus {
    /// It has messages.
    Ok,
    /// It exists with no live message.
    Empty,
    /// No such session.
    Missing,
}

/// The tail of one session.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The session asked for.
    pub id: SessionId,
    /// Found, empty or missing.
    pub status: PreviewStatus,
    /// Its last messages, oldest first, each cut to `max_chars`.
    pub messages: Vec<Message>,
}

/// What `GET /v1/node` shows.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    /// This node.
    pub node_id: String,
    /// `memory`, `sqlite` or `redis`.
    pub store: &'static str,
    /// Sessions whose actor runs on this node now.
    pub resident_sessions: usize,
    /// Sessions in the store (this node's tenant, every project).
    pub stored_sessions: usize,
    /// Where this node is reached.
    pub advertise: Option<String>,
    /// Sessions whose lease this node holds.
    pub owned: Vec<SessionId>,
    /// Live peers.
    pub peers: Vec<sessiond_store::NodeRecord>,
}

/// The events of a project: `sessions.changed` notices and statuses, live.
pub type ProjectEventStream = std::pin::Pin<Box<dyn Stream<Item = Result<ProjectEvent>> + Send>>;

/// Cursor text: `<last_activity_ms>.<session id>` of the last item of a page.
fn encode_cursor(at: TimestampMs, id: SessionId) -> String {
    format!("{at}.{id}")
}

fn decode_cursor(text: &str) -> Result<(TimestampMs, SessionId)> {
    let bad = || Error::InvalidRequest(format!("cursor '{text}' is not one this server gave"));
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok((
        at.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}

/// Cuts `text` to at most `max` characters (on a char boundary).
fn cut(text: &mut String, max: usize) {
    if let Some((i, _)) = text.char_indices().nth(max) {
        text.truncate(i);
    }
}

impl Node {
    /// A page of a project's sessions, newest activity first.
    pub async fn list_sessions(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        query: ListQuery,
    ) -> Result<SessionPage> {
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let index = self
            .backend()
            .sessions
            .list_sessions(tenant, project)
            .await?;
        // The index is ordered by (activity desc, id desc): a page starts strictly
        // after the cursor's entry in that order.
        let rest: Vec<_> = index
            .into_iter()
            .filter(|(id, at)| after.is_none_or(|(a, i)| (*at, *id) < (a, i)))
            .collect();
        let mut sessions = Vec::new();
        let mut last = None;
        let mut more = false;
        let mut loads = futures::stream::iter(rest.into_iter().map(|(id, at)| async move {
            let meta = self.backend().sessions.load_session(tenant, id).await?;
            Ok::<_, Error>((id, at, meta))
        }))
        .buffered(LOAD_CONCURRENCY);
        while let Some((id, at, meta)) = loads.try_next().await? {
            // Deleted since the index was read.
            let Some(meta) = meta else { continue };
            let keep = query.status.is_none_or(|s| s == meta.status)
                && query
                    .label
                    .as_ref()
                    .is_none_or(|l| meta.label.as_ref() == Some(l))
                && query.parent_id.is_none_or(|p| meta.parent_id == Some(p));
            if !keep {
                last = Some((at, id));
                continue;
            }
            if sessions.len() == query.limit {
                more = true;
                break;
            }
            last = Some((at, id));
            sessions.push(meta);
        }
        let next_cursor = more
            .then(|| last.map(|(at, id)| encode_cursor(at, id)))
            .flatten();
        Ok(SessionPage {
            sessions,
            next_cursor,
        })
    }

    /// The session holding `key` in a project.
    pub async fn resolve_key(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        key: &SessionKey,
    ) -> Result<SessionMeta> {
        let id = self
            .backend()
            .sessions
            .resolve_key(tenant, project, key)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("no session with key '{key}' in project {project}"))
            })?;
        self.load(tenant, id).await
    }

    /// The tail of each session: up to `limit` last messages, each cut to
    /// `max_chars` characters.
    pub async fn preview(
        &self,
        tenant: &TenantId,
        ids: &[SessionId],
        limit: usize,
        max_chars: usize,
    ) -> Result<Vec<Preview>> {
        // Ids by value: a closure taking `&SessionId` makes this future fail the
        // higher-ranked `Send` check axum handlers need.
        futures::stream::iter(ids.iter().copied().map(|id| async move {
            let store = &self.backend().sessions;
            let Some(meta) = store.load_session(tenant, id).await? else {
                return Ok(Preview {
                    id,
                    status: PreviewStatus::Missing,
                    messages: Vec::new(),
                });
            };
            let from = meta.last_seq.saturating_sub(limit as u64);
            let mut messages = store.read_log(tenant, id, from, limit).await?;
            for m in &mut messages {
                cut(&mut m.content, max_chars);
                if let Some(tool) = &mut m.tool {
                    tool.full_result = None;
                }
            }
            let status = if messages.is_empty() {
                PreviewStatus::Empty
            } else {
                PreviewStatus::Ok
            };
            Ok(Preview {
                id,
                status,
                messages,
            })
        }))
        .buffered(LOAD_CONCURRENCY)
        .try_collect()
        .await
    }

    /// A project's retention policy (the node's default when it set none).
    pub async fn retention(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<RetentionPolicy> {
        Ok(self
            .backend()
            .sessions
            .retention(tenant, project)
            .await?
            .unwrap_or(self.inner.ctx.settings.default_retention))
    }

    /// Sets a project's retention policy and applies it at once.
    pub async fn set_retention(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
        policy: RetentionPolicy,
    ) -> Result<RetentionPolicy> {
        self.backend()
            .sessions
            .set_retention(tenant, project, &policy)
            .await?;
        self.sweep_project(tenant, project).await?;
        Ok(policy)
    }

    /// Runs a retention pass over one project now; returns the sessions deleted.
    pub async fn sweep_project(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<Vec<SessionId>> {
        // The supervisor a sweep starts stops again once idle.
        let deleted = self
            .on_project(tenant, project, |p| async move { p.sweep().await })
            .await?;
        for id in &deleted {
            self.forget_resident(tenant, *id);
        }
        Ok(deleted)
    }

    /// The live events of a project (checks nothing: a project exists as soon as it
    /// is named).
    pub async fn project_events(
        &self,
        tenant: &TenantId,
        project: &ProjectId,
    ) -> Result<ProjectEventStream> {
        let mut sub = self
            .backend()
            .bus
            .subscribe(&Channel::project(tenant, project))
            .await?;
        let project = project.clone();
        Ok(Box::pin(async_stream::stream! {
            while let Some(signal) = sub.recv().await {
                match signal {
                    BusSignal::Payload(bytes) => match codec::decode::<ProjectEvent>(&bytes) {
                        Ok(ProjectEvent::Unknown) => {}
                        Ok(ev) => yield Ok(ev),
                        Err(e) => tracing::warn!(%project, error = %e, "undecodable project event"),
                    },
                    // Notices may have been missed: the client should list again.
                    BusSignal::Reset => yield Err(Error::Unavailable(
                        "project events lost their subscription; list the project again and reconnect".into(),
                    )),
                }
            }
        }))
    }

    /// This node and its session counts.
    pub async fn info(&self, tenant: &TenantId) -> Result<NodeInfo> {
        let store = &self.backend().sessions;
        let mut stored = 0;
        for project in store.list_projects(tenant).await? {
            stored += store.list_sessions(tenant, &project).await?.len();
        }
        Ok(NodeInfo {
            node_id: self.id().to_string(),
            store: self.backend().kind,
            resident_sessions: self.resident_count(),
            stored_sessions: stored,
            advertise: self.config().advertise.clone(),
            owned: self
                .inner
                .ctx
                .lease_book
                .leases()
                .iter()
                .map(|l| l.session)
                .collect(),
            peers: self.peers().await?,
        })
    }
}

/// Enforces retention on every project of the node's tenant, every `period`,
/// until the node stops.
async fn sweep_retention(node: Weak<Inner>, period: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(inner) = node.upgrade() else { return };
        let node = Node { inner };
        let tenant = node.config().tenant.clone();
        let projects = match node.backend().sessions.list_projects(&tenant).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "retention sweep cannot list projects");
                continue;
            }
        };
        for project in projects {
            // A stop starts no supervisor: the rest waits for another life.
            if node.is_draining() {
                return;
            }
            if let Err(e) = node.sweep_project(&tenant, &project).await {
                tracing::warn!(%project, error = %e, "retention sweep failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let id = SessionId::generate();
        assert_eq!(decode_cursor(&encode_cursor(42, id)).unwrap(), (42, id));
        assert!(decode_cursor("nope").is_err());
        assert!(decode_cursor("1.not-a-uuid").is_err());
    }

    #[test]
    fn cut_keeps_whole_characters() {
        let mut s = "héllo wörld".to_string();
        cut(&mut s, 4);
        assert_eq!(s, "héll");
        let mut short = "ab".to_string();
        cut(&mut short, 10);
        assert_eq!(short, "ab");
    }
}
