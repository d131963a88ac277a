//! The request body: the transcript replayed as chat messages.
//!
//! Replay rules, chosen so that every OpenAI-compatible server accepts the history:
//! - the system prompt comes first, as a `system` message;
//! - `user` and `assistant` messages keep their roles;
//! - tool calls are rendered as text lines inside the assistant's turn, tool results
//!   as text lines inside a user turn. Not `tool_calls`/`tool` messages: those need the
//!   matching `tools` definitions in the request and strict call/result pairing, which
//!   many servers (and chat templates) reject for a transcript written by another
//!   driver or cut by an abort;
//! - `thinking` messages are not replayed (reasoning models are trained to see only
//!   answers in past turns), nor `system` messages of the transcript (notices sessiond
//!   wrote for people, not for the model);
//! - consecutive messages of one role are merged with a blank line, since several chat
//!   templates (Mistral, Llama 2, ...) reject two user or two assistant turns in a row;
//! - the last turn is the prompt's user message; should the history not end with a
//!   user turn, the prompt is appended.

use serde_json::{Map, Value, json};
use sessiond_actors::RunRequest;
use sessiond_store::{Message, Role};

use super::options::RunOptions;

/// The body of a streamed chat-completions request.
pub(super) fn body(model: &str, request: &RunRequest, options: &RunOptions) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert(
        "messages".into(),
        messages(
            request.system_prompt.as_deref(),
            &request.history,
            &request.prompt,
        ),
    );
    body.insert("stream".into(), true.into());
    body.insert("stream_options".into(), json!({ "include_usage": true }));
    options.apply(&mut body);
    Value::Object(body)
}

/// The chat messages of a run (see the module docs for the rules).
pub(super) fn messages(system_prompt: Option<&str>, history: &[Message], prompt: &str) -> Value {
    let mut turns: Vec<(&'static str, String)> = Vec::new();
    if let Some(s) = system_prompt {
        push(&mut turns, "system", s.to_owned());
    }
    for m in history {
        let (role, text) = match m.role {
            Role::User => ("user", m.content.clone()),
            Role::Assistant => ("assistant", m.content.clone()),
            Role::ToolCall => ("assistant", tool_line("tool call", m)),
            Role::ToolResult => ("user", tool_line("tool result", m)),
            Role::Thinking | Role::System | Role::Unknown => continue,
        };
        push(&mut turns, role, text);
    }
    if turns.last().is_none_or(|(r, _)| *r != "user") {
        push(&mut turns, "user", prompt.to_owned());
    }
    Value::Array(
        turns
            .into_iter()
            .map(|(role, content)| json!({ "role": role, "content": content }))
            .collect(),
    )
}

/// Appends a turn, merged into the last one when the role is the same.
fn push(turns: &mut Vec<(&'static str, String)>, role: &'static str, text: String) {
    if text.trim().is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((r, t)) if *r == role && role != "system" => {
            t.push_str("\n\n");
            t.push_str(&text);
        }
        _ => turns.push((role, text)),
    }
}

/// `[tool call read_file #c1] Read src/main.rs` + `input: {...}` on the next line;
/// `[tool result read_file #c1] error: ...` for failed results.
fn tool_line(kind: &str, m: &Message) -> String {
    let tool = m.tool.clone().unwrap_or_default();
    let mut head = format!("[{kind}");
    if let Some(name) = &tool.name {
        head.push(' ');
        head.push_str(name);
    }
    if let Some(id) = &tool.call_id {
        head.push_str(" #");
        head.push_str(id);
    }
    head.push(']');
    if tool.is_error {
        head.push_str(" error:");
    }
    let mut out = match m.content.is_empty() {
        true => head,
        false => format!("{head} {}", m.content),
    };
    if m.role == Role::ToolCall
        && let Some(input) = &tool.input
    {
        out.push_str("\ninput: ");
        out.push_str(&input.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_store::ToolInfo;

    fn msg(role: Role, content: &str) -> Message {
        sessiond_store::testing::conformance::msg(0, role, content)
    }

    fn tool(role: Role, content: &str, is_error: bool) -> Message {
        Message {
            tool: Some(ToolInfo {
                call_id: Some("c1".into()),
                name: Some("read".into()),
                input: Some(json!({"path": "a"})),
                is_error,
                ..ToolInfo::default()
            }),
            ..msg(role, content)
        }
    }

    #[test]
    fn history_is_replayed_as_alternating_text_turns() {
        let history = vec![
            msg(Role::User, "hi"),
            msg(Role::Thinking, "hmm"),
            msg(Role::Assistant, "let me look"),
            tool(Role::ToolCall, "Read a", false),
            tool(Role::ToolResult, "no such file", true),
            msg(Role::Assistant, "it is missing"),
            msg(Role::System, "run aborted"),
            msg(Role::User, "again"),
            msg(Role::User, "now"),
        ];
        let got = messages(Some("be brief"), &history, "now");
        let want = json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant",
             "content": "let me look\n\n[tool call read #c1] Read a\ninput: {\"path\":\"a\"}"},
            {"role": "user", "content": "[tool result read #c1] error: no such file"},
            {"role": "assistant", "content": "it is missing"},
            {"role": "user", "content": "again\n\nnow"},
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn the_prompt_is_appended_when_history_lacks_it() {
        let got = messages(None, &[], "hello");
        assert_eq!(got, json!([{"role": "user", "content": "hello"}]));
        let got = messages(None, &[msg(Role::Assistant, "a")], "q");
        assert_eq!(got[1], json!({"role": "user", "content": "q"}));
    }
}
