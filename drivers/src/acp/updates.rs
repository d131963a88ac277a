//! Turning ACP `session/update` notifications into transcript events.
//!
//! Message and thought chunks are accumulated so that the transcript holds one
//! message per stretch of text, not one per token: the buffer is flushed when a chunk
//! of the other kind or with another `messageId` arrives, when any other update
//! arrives (a tool call, a plan, ...), when the turn ends however it ends, and, to
//! bound memory and latency, once it exceeds [`FLUSH_BYTES`] (at its last newline
//! when it has one).

use std::collections::HashMap;

use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, EmbeddedResourceResource, Plan, PlanEntryPriority, PlanEntryStatus,
    SessionUpdate, ToolCall, ToolCallContent, ToolCallStatus, ToolCallUpdate, ToolKind,
    UsageUpdate,
};
use sessiond_actors::DriverEvent;
use sessiond_store::{Role, ToolInfo, Usage};

/// Accumulated text beyond this size is flushed even in the middle of a stretch.
pub(super) const FLUSH_BYTES: usize = 16 * 1024;

/// What the transcript knows about a tool call until its result arrives.
#[derive(Debug, Default)]
struct ToolState {
    name: Option<String>,
    path: Option<String>,
    content: Option<String>,
    raw_output: Option<serde_json::Value>,
}

/// Text being accumulated: its role and the agent's message id, when it gave one.
#[derive(Debug)]
struct Buffer {
    role: Role,
    message_id: Option<String>,
    text: String,
}

/// Maps the updates of one prompt turn to driver events.
#[derive(Debug, Default)]
pub(super) struct Transcriber {
    buffer: Option<Buffer>,
    tools: HashMap<String, ToolState>,
    /// The agent's cumulative cost in USD as last reported (ACP reports a session
    /// total; a run adds the difference).
    cost_seen_usd: f64,
}

impl Transcriber {
    /// A transcriber for a turn of an agent that already reported `cost_seen_usd`.
    pub(super) fn new(cost_seen_usd: f64) -> Self {
        Self {
            cost_seen_usd,
            ..Self::default()
        }
    }

    /// The agent's cumulative cost as last reported.
    pub(super) fn cost_seen_usd(&self) -> f64 {
        self.cost_seen_usd
    }

    /// The events one update produces (possibly none: chunks are buffered).
    pub(super) fn update(&mut self, update: SessionUpdate) -> Vec<DriverEvent> {
        let mut out = Vec::new();
        match update {
            SessionUpdate::AgentMessageChunk(chunk) => self.chunk(Role::Assistant, chunk, &mut out),
            SessionUpdate::AgentThoughtChunk(chunk) => self.chunk(Role::Thinking, chunk, &mut out),
            other => {
                out.extend(self.flush());
                match other {
                    SessionUpdate::ToolCall(call) => self.tool_call(call, &mut out),
                    SessionUpdate::ToolCallUpdate(update) => self.tool_update(update, &mut out),
                    SessionUpdate::Plan(plan) => out.push(plan_message(&plan)),
                    SessionUpdate::UsageUpdate(usage) => out.extend(self.usage(&usage)),
                    // The echo of our prompt, mode and command lists, session info:
                    // nothing for the transcript.
                    _ => {}
                }
            }
        }
        out
    }

    /// The accumulated text as a message, if there is any.
    pub(super) fn flush(&mut self) -> Option<DriverEvent> {
        let buffer = self.buffer.take()?;
        (!buffer.text.is_empty()).then(|| message(buffer.role, buffer.text, None))
    }

    fn chunk(&mut self, role: Role, chunk: ContentChunk, out: &mut Vec<DriverEvent>) {
        let message_id = chunk.message_id.map(|id| id.to_string());
        let continues = self.buffer.as_ref().is_some_and(|b| {
            b.role == role && (message_id.is_none() || b.message_id == message_id)
        });
        if !continues {
            out.extend(self.flush());
        }
        let buffer = self.buffer.get_or_insert_with(|| Buffer {
            role,
            message_id: message_id.clone(),
            text: String::new(),
        });
        buffer.text.push_str(&block_text(&chunk.content));
        if buffer.text.len() > FLUSH_BYTES {
            let cut = buffer.text.rfind('\n').map_or(buffer.text.len(), |i| i + 1);
            let rest = buffer.text.split_off(cut);
            let full = std::mem::replace(&mut buffer.text, rest);
            out.push(message(role, full, None));
        }
    }

    fn tool_call(&mut self, call: ToolCall, out: &mut Vec<DriverEvent>) {
        let id = call.tool_call_id.to_string();
        let state = ToolState {
            name: Some(call.name.clone().unwrap_or_else(|| kind_name(call.kind))),
            path: call.locations.first().map(|l| l.path.display().to_string()),
            content: content_text(&call.content),
            raw_output: call.raw_output.clone(),
        };
        out.push(message(
            Role::ToolCall,
            call.title.clone(),
            Some(ToolInfo {
                call_id: Some(id.clone()),
                name: state.name.clone(),
                input: call.raw_input.clone(),
                path: state.path.clone(),
                ..ToolInfo::default()
            }),
        ));
        self.tools.insert(id.clone(), state);
        // Some agents report a call only once it is over.
        if matches!(
            call.status,
            ToolCallStatus::Completed | ToolCallStatus::Failed
        ) {
            out.push(self.tool_result(&id, call.status == ToolCallStatus::Failed));
        }
    }

    fn tool_update(&mut self, update: ToolCallUpdate, out: &mut Vec<DriverEvent>) {
        let id = update.tool_call_id.to_string();
        let fields = update.fields;
        let state = self.tools.entry(id.clone()).or_default();
        if let Some(name) = fields.name.or_else(|| fields.kind.map(kind_name)) {
            state.name = Some(name);
        }
        if let Some(location) = fields.locations.as_ref().and_then(|l| l.first()) {
            state.path = Some(location.path.display().to_string());
        }
        if let Some(content) = fields.content.as_deref().and_then(content_text) {
            state.content = Some(content);
        }
        if fields.raw_output.is_some() {
            state.raw_output = fields.raw_output;
        }
        match fields.status {
            Some(ToolCallStatus::Completed) => out.push(self.tool_result(&id, false)),
            Some(ToolCallStatus::Failed) => out.push(self.tool_result(&id, true)),
            _ => {}
        }
    }

    /// The result message of a finished call; forgets the call.
    fn tool_result(&mut self, id: &str, failed: bool) -> DriverEvent {
        let state = self.tools.remove(id).unwrap_or_default();
        let content = state
            .content
            .or_else(|| state.raw_output.as_ref().map(render_json))
            .unwrap_or_else(|| if failed { "failed" } else { "completed" }.to_owned());
        message(
            Role::ToolResult,
            content,
            Some(ToolInfo {
                call_id: Some(id.to_owned()),
                name: state.name,
                path: state.path,
                is_error: failed,
                ..ToolInfo::default()
            }),
        )
    }

    fn usage(&mut self, usage: &UsageUpdate) -> Option<DriverEvent> {
        let mut cost_usd = 0.0;
        if let Some(cost) = usage
            .cost
            .as_ref()
            .filter(|c| c.currency.eq_ignore_ascii_case("USD"))
        {
            cost_usd = (cost.amount - self.cost_seen_usd).max(0.0);
            self.cost_seen_usd = cost.amount;
        }
        Some(DriverEvent::Usage(Usage {
            context_tokens: usage.used,
            cost_usd,
            ..Usage::default()
        }))
    }
}

fn message(role: Role, content: String, tool: Option<ToolInfo>) -> DriverEvent {
    DriverEvent::Message {
        role,
        content,
        tool,
    }
}

/// A plan as a system message: one line per entry, the entries as JSON in `input`.
fn plan_message(plan: &Plan) -> DriverEvent {
    let mut text = String::from("plan:");
    for entry in &plan.entries {
        let mark = match entry.status {
            PlanEntryStatus::Completed => "[x]",
            PlanEntryStatus::InProgress => "[~]",
            _ => "[ ]",
        };
        let priority = match entry.priority {
            PlanEntryPriority::High => " (high)",
            PlanEntryPriority::Low => " (low)",
            _ => "",
        };
        text.push_str(&format!("\n- {mark} {}{priority}", entry.content));
    }
    let entries = serde_json::to_value(&plan.entries).ok();
    message(
        Role::System,
        text,
        Some(ToolInfo {
            name: Some("plan".into()),
            input: entries,
            ..ToolInfo::default()
        }),
    )
}

/// The wire name of a tool kind (`read`, `edit`, `execute`, ...).
fn kind_name(kind: ToolKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "other".into(),
    }
}

fn render_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The readable text of a content block; non-text blocks become a short marker.
fn block_text(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(t) => t.text.clone(),
        ContentBlock::ResourceLink(link) => link.uri.clone(),
        ContentBlock::Resource(resource) => match &resource.resource {
            EmbeddedResourceResource::TextResourceContents(t) => t.text.clone(),
            EmbeddedResourceResource::BlobResourceContents(b) => format!("[resource {}]", b.uri),
            _ => "[resource]".into(),
        },
        ContentBlock::Image(i) => format!("[image {}]", i.mime_type),
        ContentBlock::Audio(a) => format!("[audio {}]", a.mime_type),
        _ => "[content]".into(),
    }
}

/// The text of a tool call's content, `None` when it has none.
fn content_text(content: &[ToolCallContent]) -> Option<String> {
    let parts: Vec<String> = content
        .iter()
        .map(|c| match c {
            ToolCallContent::Content(c) => block_text(&c.content),
            ToolCallContent::Diff(d) => format!("edit {}\n{}", d.path.display(), d.new_text),
            ToolCallContent::Terminal(t) => format!("[terminal {}]", t.terminal_id),
            _ => "[content]".into(),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

#[cfg(test)]
mod tests {
    use agent_client_protocol::v1::schema::{TextContent, ToolCallUpdateFields};

    use super::*;

    fn text(role: Role, events: &[DriverEvent]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                DriverEvent::Message {
                    role: r, content, ..
                } if *r == role => Some(content.clone()),
                _ => None,
            })
            .collect()
    }

    fn say(t: &str) -> SessionUpdate {
        SessionUpdate::AgentMessageChunk(ContentChunk::new(ContentBlock::Text(TextContent::new(t))))
    }

    fn think(t: &str) -> SessionUpdate {
        SessionUpdate::AgentThoughtChunk(ContentChunk::new(ContentBlock::Text(TextContent::new(t))))
    }

    #[test]
    fn chunks_of_one_kind_become_one_message() {
        let mut t = Transcriber::default();
        assert!(t.update(say("Hel")).is_empty());
        assert!(t.update(say("lo!")).is_empty());
        let events: Vec<_> = t.flush().into_iter().collect();
        assert_eq!(text(Role::Assistant, &events), ["Hello!"]);
        assert!(t.flush().is_none());
    }

    #[test]
    fn a_different_kind_flushes() {
        let mut t = Transcriber::default();
        let mut events = t.update(think("hmm"));
        events.extend(t.update(say("yes")));
        events.extend(t.update(think("again")));
        events.extend(t.flush());
        assert_eq!(text(Role::Thinking, &events), ["hmm", "again"]);
        assert_eq!(text(Role::Assistant, &events), ["yes"]);
    }

    #[test]
    fn large_buffers_flush_at_a_newline() {
        let mut t = Transcriber::default();
        let line = format!("{}\n", "x".repeat(1000));
        let mut events = Vec::new();
        for _ in 0..20 {
            events.extend(t.update(say(&line)));
        }
        events.extend(t.flush());
        let texts = text(Role::Assistant, &events);
        assert!(texts.len() >= 2);
        assert!(texts[..texts.len() - 1].iter().all(|s| s.ends_with('\n')));
        assert_eq!(texts.concat(), line.repeat(20));
    }

    #[test]
    fn a_tool_call_and_its_completion() {
        let mut t = Transcriber::default();
        t.update(say("let me look"));
        let call = ToolCall::new("c1", "Read a.txt")
            .kind(ToolKind::Read)
            .raw_input(serde_json::json!({"path": "a.txt"}));
        let events = t.update(SessionUpdate::ToolCall(call));
        assert_eq!(text(Role::Assistant, &events), ["let me look"]);
        let DriverEvent::Message {
            tool: Some(info),
            content,
            ..
        } = &events[1]
        else {
            panic!("no tool call: {events:?}")
        };
        assert_eq!(content, "Read a.txt");
        assert_eq!(info.name.as_deref(), Some("read"));
        assert_eq!(info.call_id.as_deref(), Some("c1"));

        let done = ToolCallUpdate::new(
            "c1",
            ToolCallUpdateFields::new()
                .status(ToolCallStatus::Failed)
                .content(vec![ToolCallContent::from(ContentBlock::Text(
                    TextContent::new("nope"),
                ))]),
        );
        let events = t.update(SessionUpdate::ToolCallUpdate(done));
        let [
            DriverEvent::Message {
                role: Role::ToolResult,
                content,
                tool: Some(info),
            },
        ] = &events[..]
        else {
            panic!("no tool result: {events:?}")
        };
        assert_eq!(content, "nope");
        assert!(info.is_error);
        assert_eq!(info.name.as_deref(), Some("read"));
    }

    #[test]
    fn usage_adds_the_cost_difference() {
        use agent_client_protocol::v1::schema::Cost;
        let mut t = Transcriber::new(1.0);
        let events = t.update(SessionUpdate::UsageUpdate(
            UsageUpdate::new(500, 1000).cost(Cost::new(1.5, "USD")),
        ));
        let [DriverEvent::Usage(u)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(u.context_tokens, 500);
        assert!((u.cost_usd - 0.5).abs() < 1e-9);
        assert!((t.cost_seen_usd() - 1.5).abs() < 1e-9);
    }
}
