//! A session's event stream for one subscriber: every committed message after a
//! given seq exactly once and in order, then status changes and new messages live.
//!
//! The bus is only a doorbell. The stream subscribes first, then replays the log
//! from the store, then follows the bus; it tracks the last seq it yielded, drops
//! what it has seen, and re-reads the store on a gap, a lag or a reconnect. So no
//! event is lost and none is repeated, whatever the bus does.

use futures::Stream;
use sessiond_store::{
    Backend, BusEvent, BusSignal, Channel, Message, SessionId, StatusChange, TenantId, codec,
};

use crate::error::{Error, Result};

/// One item of a session's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A committed message.
    Message(Message),
    /// The session's status (first the current one, then each change).
    Status(StatusChange),
    /// The stream fell behind the bus (a slow reader, or a bus reconnect): what
    /// follows is re-read from the log, from `after_seq`, so nothing is missed.
    Lagged {
        /// The last seq sent before the catch-up.
        after_seq: u64,
    },
    /// The active run showed no driver activity for `idle_ms` (live only: not
    /// replayed on resume).
    Stalled {
        /// The quiet run.
        run_id: sessiond_store::RunId,
        /// How long it has been quiet.
        idle_ms: u64,
    },
}

const PAGE: usize = 500;

/// Statuses only move forward: the bus can still hold statuses committed before the
/// snapshot the stream started from (or reloaded after a reset); those are older
/// than one already sent and are dropped.
#[derive(Default)]
struct StatusOrder {
    last: Option<(u64, i64)>,
}

impl StatusOrder {
    fn fresh(&mut self, s: &StatusChange) -> bool {
        let at = (s.last_seq, s.updated_at_ms);
        if self.last.is_some_and(|last| at < last) {
            return false;
        }
        self.last = Some(at);
        true
    }
}

/// The stream of `id` after `after_seq`: the replay, then the current status, then
/// live changes.
/// It ends with an error item if the store fails (the client resumes from the last
/// seq it saw).
pub fn session_events(
    backend: Backend,
    tenant: TenantId,
    id: SessionId,
    after_seq: u64,
) -> impl Stream<Item = Result<SessionEvent>> + Send + 'static {
    async_stream::try_stream! {
        let mut sub = backend.bus.subscribe(&Channel::session(&tenant, id)).await?;
        let meta = backend
            .sessions
            .load_session(&tenant, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("session {id} not found")))?;
        let mut last = after_seq;
        let mut need_catch_up = true;
        // A status waits until the messages committed before it are out; the
        // current one comes right after the replay.
        let mut held_status = Some(StatusChange::of(&meta));
        let mut order = StatusOrder::default();
        loop {
            if need_catch_up {
                loop {
                    let page = backend.sessions.read_log(&tenant, id, last, PAGE).await?;
                    let full = page.len() == PAGE;
                    // The store's log is dense from the first live seq: anything
                    // below it was archived (compact, reset) and is skipped.
                    for m in page {
                        if m.seq > last {
                            last = m.seq;
                            yield SessionEvent::Message(m);
                        }
                    }
                    if !full {
                        break;
                    }
                }
                need_catch_up = false;
                if let Some(status) = held_status.take()
                    && order.fresh(&status)
                {
                    yield SessionEvent::Status(status);
                }
            }
            let Some(signal) = sub.recv().await else { break };
            let event = match signal {
                BusSignal::Payload(bytes) => codec::decode::<BusEvent>(&bytes).unwrap_or_else(|e| {
                    tracing::warn!(session_id = %id, error = %e, "undecodable bus event, re-reading the log");
                    BusEvent::Unknown
                }),
                BusSignal::Reset => {
                    yield SessionEvent::Lagged { after_seq: last };
                    BusEvent::Unknown
                }
            };
            match event {
                BusEvent::Messages { messages } => {
                    if messages.first().is_some_and(|m| m.seq <= last + 1) {
                        for m in messages {
                            if m.seq == last + 1 {
                                last = m.seq;
                                yield SessionEvent::Message(m);
                            }
                        }
                    } else {
                        need_catch_up = true;
                    }
                }
                BusEvent::Status(status) if status.last_seq > last => {
                    held_status = Some(status);
                    need_catch_up = true;
                }
                BusEvent::Status(status) => {
                    if order.fresh(&status) {
                        yield SessionEvent::Status(status);
                    }
                }
                BusEvent::Stalled { run_id, idle_ms } => {
                    yield SessionEvent::Stalled { run_id, idle_ms };
                }
                BusEvent::Unknown => {
                    held_status = backend
                        .sessions
                        .load_session(&tenant, id)
                        .await?
                        .map(|m| StatusChange::of(&m));
                    need_catch_up = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_store::{SessionId, SessionStatus, Usage};

    fn status(last_seq: u64, at: i64, s: SessionStatus) -> StatusChange {
        StatusChange {
            session_id: SessionId::generate(),
            status: s,
            last_run: None,
            usage: Usage::default(),
            last_seq,
            updated_at_ms: at,
        }
    }

    #[test]
    fn statuses_only_move_forward() {
        let mut order = StatusOrder::default();
        assert!(order.fresh(&status(11, 200, SessionStatus::Idle)));
        // Committed before the snapshot, delivered after it: dropped.
        assert!(!order.fresh(&status(10, 150, SessionStatus::Running)));
        assert!(!order.fresh(&status(11, 199, SessionStatus::Running)));
        // Same point again is harmless; later ones pass.
        assert!(order.fresh(&status(11, 200, SessionStatus::Idle)));
        assert!(order.fresh(&status(11, 201, SessionStatus::Running)));
        assert!(order.fresh(&status(12, 100, SessionStatus::Idle)));
    }
}
