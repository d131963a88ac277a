//! The API's views of server-side values: sessions, messages, receipts, nodes.
//! The wire types are `sessiond_client`'s; these functions are the one place that
//! fills them from the store's and the actors' records.

use sessiond_actors::{AbortReply, CompactReport, SendReceipt, SessionPatch};
use sessiond_client::model::*;
use sessiond_client::ops::PatchSession;
use sessiond_store::{
    ChangeReason, LastRun, Message, RetentionPolicy, SessionId, SessionMeta, StatusChange,
    TimestampMs, Usage,
};

use crate::node::{NodeInfo, Preview, PreviewStatus};

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: TimestampMs) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// A session with no run started by the answering call.
pub fn envelope(meta: &SessionMeta) -> SessionEnvelope {
    SessionEnvelope {
        session: session_view(meta),
        run: None,
    }
}

/// The API's view of a SendReceipt.
pub fn steer_response(r: SendReceipt) -> SteerResponse {
    SteerResponse {
        run_id: r.run_id.as_uuid(),
        message_seq: r.message_seq,
        queued: r.queued,
        interrupted_run_id: r.interrupted_run_id.map(|r| r.as_uuid()),
    }
}

/// The API's view of a PatchSessionRequest.
pub fn session_patch(r: PatchSession) -> SessionPatch {
    SessionPatch {
        label: r.label,
        model: r.model,
        system_prompt: r.system_prompt,
        driver: r.driver,
        driver_options: r.driver_options,
        thinking: r.thinking,
        env: r.env,
        cwd: r.cwd,
        max_turns: r.max_turns,
        auto_compact_tokens: r.auto_compact_tokens,
        auto_compact_keep: r.auto_compact_keep,
        protected: r.protected,
    }
}

/// The API's view of a CompactReport.
pub fn compact_response(r: CompactReport) -> CompactResponse {
    CompactResponse {
        compacted: r.compacted,
        kept: r.kept,
        archived: r.archived,
    }
}

/// The API's view of a SendReceipt.
pub fn send_response(r: SendReceipt) -> SendResponse {
    SendResponse {
        run_id: r.run_id.as_uuid(),
        message_seq: r.message_seq,
        queued: r.queued,
    }
}

/// The API's view of a Message.
pub fn message_view(m: &Message) -> MessageView {
    let tool = m.tool.clone().unwrap_or_default();
    MessageView {
        seq: m.seq,
        id: m.id.to_string(),
        run_id: m.run_id.map(|r| r.to_string()),
        role: m.role.as_str().to_string(),
        content: m.content.clone(),
        tool_call_id: tool.call_id,
        tool_name: tool.name,
        tool_input: tool.input,
        tool_path: tool.path,
        is_error: tool.is_error,
        full_result: tool.full_result,
        timestamp: rfc3339(m.timestamp_ms),
    }
}

/// The API's view of a AbortReply.
pub fn abort_response(r: AbortReply) -> AbortResponse {
    match r {
        AbortReply::Aborted { run_id } => AbortResponse {
            status: "aborted".into(),
            run_id: Some(run_id.as_uuid()),
        },
        AbortReply::NoActiveRun => AbortResponse {
            status: "no-active-run".into(),
            run_id: None,
        },
    }
}

/// The API's view of a StatusChange.
pub fn status_view(s: &StatusChange) -> StatusView {
    StatusView {
        session_id: s.session_id.to_string(),
        status: s.status.as_str().to_string(),
        last_seq: s.last_seq,
        last_run: s.last_run.as_ref().map(run_view),
        usage: usage_view(s.usage),
        updated_at: rfc3339(s.updated_at_ms),
    }
}

/// The API's view of a Preview.
pub fn preview_view(p: &Preview) -> PreviewView {
    let status = match p.status {
        PreviewStatus::Ok => "ok",
        PreviewStatus::Empty => "empty",
        PreviewStatus::Missing => "missing",
    };
    PreviewView {
        id: p.id.to_string(),
        status: status.into(),
        messages: p.messages.iter().map(message_view).collect(),
    }
}

/// The API's view of a RetentionPolicy.
pub fn retention_view(p: RetentionPolicy) -> RetentionView {
    RetentionView {
        max_sessions: p.max_sessions,
        max_age_days: p.max_age_days,
    }
}

/// The view of one project notice.
pub fn changed_view(session_id: SessionId, reason: ChangeReason) -> SessionChangedView {
    SessionChangedView {
        session_id: session_id.to_string(),
        reason: reason.as_str().to_string(),
    }
}

/// The API's view of a NodeInfo.
pub fn node_view(n: NodeInfo) -> NodeView {
    NodeView {
        node_id: n.node_id,
        store: n.store.to_string(),
        resident_sessions: n.resident_sessions,
        stored_sessions: n.stored_sessions,
        advertise: n.advertise,
        owned_count: n.owned.len(),
        owned_sessions: n.owned.iter().take(1000).map(|id| id.to_string()).collect(),
        peers: n
            .peers
            .into_iter()
            .map(|p| PeerView {
                node_id: p.id.to_string(),
                advertise: p.advertise,
                expires_at: rfc3339(p.expires_at_ms),
            })
            .collect(),
    }
}

/// The API's view of a Usage.
pub fn usage_view(u: Usage) -> UsageView {
    UsageView {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        context_tokens: u.context_tokens,
        cost_usd: u.cost_usd,
    }
}

/// The API's view of a LastRun.
pub fn run_view(r: &LastRun) -> RunView {
    RunView {
        run_id: r.run_id.to_string(),
        prompt_seq: r.prompt_seq,
        outcome: r.outcome.map(|o| o.as_str().to_string()),
        error: r.error.clone(),
        started_at: rfc3339(r.started_at_ms),
        ended_at: r.ended_at_ms.map(rfc3339),
        usage: usage_view(r.usage),
    }
}

/// The API's view of a SessionMeta.
pub fn session_view(m: &SessionMeta) -> SessionView {
    SessionView {
        id: m.id.to_string(),
        project: m.project.to_string(),
        key: m.key.as_ref().map(|k| k.to_string()),
        label: m.label.clone(),
        parent_id: m.parent_id.map(|p| p.to_string()),
        status: m.status.as_str().to_string(),
        driver: m.driver.clone(),
        driver_options: m.driver_options.clone(),
        model: m.model.clone(),
        system_prompt: m.system_prompt.clone(),
        last_seq: m.last_seq,
        usage: usage_view(m.usage),
        last_run: m.last_run.as_ref().map(run_view),
        error: m.error.clone(),
        env: m.config.env.clone(),
        cwd: m.config.cwd.clone(),
        thinking: m.config.thinking,
        max_turns: m.config.max_turns,
        auto_compact_tokens: m.config.auto_compact_tokens,
        auto_compact_keep: m.config.auto_compact_keep,
        paused: m.paused,
        archived_upto: m.archived_upto,
        protected: m.protected,
        created_at: rfc3339(m.created_at_ms),
        updated_at: rfc3339(m.updated_at_ms),
        last_activity_at: rfc3339(m.last_activity_ms),
    }
}
