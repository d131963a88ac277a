//! The scripted driver: deterministic agent behaviour on demand, for demos, tests
//! and benchmarks.
//!
//! Options (in the session's `driver_options`):
//! - `reply` (string): the answer; default `echo: <prompt>`
//! - `chunks` (1..=10000): the answer comes as that many assistant messages
//! - `delay_ms` (0..=600000): wait before each message
//! - `hang` (bool): after the tool calls, wait until cancelled
//! - `fail` (string): after the tool calls, the run fails with this error
//! - `panic` (string): after the tool calls, the driver panics with this message (a
//!   driver bug: the session must record a failed run and go on)
//! - `tool_calls` (0..=1000): that many tool_call + tool_result pairs before the reply
//! - `input_tokens`, `output_tokens` (integers), `cost_usd` (number >= 0): the run's
//!   usage; by default tokens are the prompt's and the answer's word counts
//! - `context_tokens` (integer): the context size reported with the usage (drives
//!   auto-compaction)
//! - `crash_actor` (bool): a test hook for supervision: the session actor itself
//!   panics while handling the first event of each run (only on a node with
//!   `[session] test_hooks = true`)

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use sessiond_store::{Role, ToolInfo, Usage};
use tokio_util::sync::CancellationToken;

use crate::driver::{AgentDriver, DriverEvent, DriverEvents, DriverOutcome, RunRequest};

/// The scripted driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScriptedDriver;

/// Parsed scripted options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    reply: Option<String>,
    chunks: Option<u32>,
    delay_ms: Option<u64>,
    #[serde(default)]
    hang: bool,
    fail: Option<String>,
    panic: Option<String>,
    #[serde(default)]
    tool_calls: u32,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    context_tokens: Option<u64>,
    cost_usd: Option<f64>,
    /// A test hook read by the session actor, not by this driver: the actor panics
    /// on the first event of each run (supervision tests).
    #[serde(default)]
    #[allow(dead_code)]
    crash_actor: bool,
}

impl Script {
    fn parse(options: &serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        // Input validation of a user-facing object: unknown keys are typos, say so.
        let s: Script = serde_json::from_value(serde_json::Value::Object(options.clone()))
            .map_err(|e| format!("invalid scripted driver options: {e}"))?;
        if let Some(c) = s.chunks
            && !(1..=10_000).contains(&c)
        {
            return Err("chunks must be between 1 and 10000".into());
        }
        if s.delay_ms.is_some_and(|d| d > 600_000) {
            return Err("delay_ms must be at most 600000".into());
        }
        if s.tool_calls > 1_000 {
            return Err("tool_calls must be at most 1000".into());
        }
        if s.cost_usd.is_some_and(|c| !c.is_finite() || c < 0.0) {
            return Err("cost_usd must be a number >= 0".into());
        }
        Ok(s)
    }
}

/// Splits `text` into `n` pieces of near-equal length on char boundaries; their
/// concatenation is `text`.
fn split_chunks(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    (0..n)
        .map(|i| {
            chars[i * chars.len() / n..(i + 1) * chars.len() / n]
                .iter()
                .collect()
        })
        .collect()
}

/// Waits `delay`, or returns false when cancelled first.
async fn pause(delay: Option<u64>, cancel: &CancellationToken) -> bool {
    match delay {
        None | Some(0) => !cancel.is_cancelled(),
        Some(ms) => tokio::select! {
            _ = cancel.cancelled() => false,
            _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
        },
    }
}

#[async_trait]
impl AgentDriver for ScriptedDriver {
    fn validate_options(
        &self,
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String> {
        Script::parse(options).map(|_| ())
    }

    async fn run(
        &self,
        request: RunRequest,
        events: DriverEvents,
        cancel: CancellationToken,
    ) -> DriverOutcome {
        let script = match Script::parse(&request.options) {
            Ok(s) => s,
            Err(e) => return DriverOutcome::Failed(e),
        };
        macro_rules! emit {
            ($ev:expr) => {
                if !pause(script.delay_ms, &cancel).await {
                    return DriverOutcome::Cancelled;
                }
                if events.send($ev).await.is_err() {
                    return DriverOutcome::Cancelled;
                }
            };
        }
        for i in 0..script.tool_calls {
            let call_id = format!("call-{}", i + 1);
            emit!(DriverEvent::Message {
                role: Role::ToolCall,
                content: format!("scripted_tool #{}", i + 1),
                tool: Some(ToolInfo {
                    call_id: Some(call_id.clone()),
                    name: Some("scripted_tool".into()),
                    input: Some(serde_json::json!({ "n": i + 1 })),
                    ..ToolInfo::default()
                }),
            });
            emit!(DriverEvent::Message {
                role: Role::ToolResult,
                content: format!("result #{}", i + 1),
                tool: Some(ToolInfo {
                    call_id: Some(call_id),
                    name: Some("scripted_tool".into()),
                    ..ToolInfo::default()
                }),
            });
        }
        if script.hang {
            cancel.cancelled().await;
            return DriverOutcome::Cancelled;
        }
        if let Some(error) = script.fail {
            return DriverOutcome::Failed(error);
        }
        if let Some(message) = script.panic {
            panic!("scripted panic: {message}");
        }
        let reply = script
            .reply
            .clone()
            .unwrap_or_else(|| format!("echo: {}", request.prompt));
        for chunk in split_chunks(&reply, script.chunks.unwrap_or(1) as usize) {
            emit!(DriverEvent::Message {
                role: Role::Assistant,
                content: chunk,
                tool: None,
            });
        }
        let usage = Usage {
            input_tokens: script
                .input_tokens
                .unwrap_or(request.prompt.split_whitespace().count() as u64),
            output_tokens: script
                .output_tokens
                .unwrap_or(reply.split_whitespace().count() as u64),
            context_tokens: script.context_tokens.unwrap_or(0),
            cost_usd: script.cost_usd.unwrap_or(0.0),
        };
        if events.send(DriverEvent::Usage(usage)).await.is_err() {
            return DriverOutcome::Cancelled;
        }
        DriverOutcome::Completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_store::{RunId, SessionId};
    use tokio::sync::mpsc;

    fn request(options: serde_json::Value) -> RunRequest {
        RunRequest {
            session_id: SessionId::generate(),
            run_id: RunId::generate(),
            history: vec![],
            prompt: "hi there".into(),
            model: None,
            system_prompt: None,
            options: options.as_object().cloned().unwrap(),
            config: Default::default(),
            driver_state: Default::default(),
        }
    }

    async fn run(options: serde_json::Value) -> (DriverOutcome, Vec<DriverEvent>) {
        let (tx, mut rx) = mpsc::channel(10_000);
        let out = ScriptedDriver
            .run(
                request(options),
                DriverEvents::new(tx),
                CancellationToken::new(),
            )
            .await;
        let mut evs = vec![];
        while let Ok(e) = rx.try_recv() {
            evs.push(e);
        }
        (out, evs)
    }

    #[tokio::test]
    async fn echoes_by_default_with_word_counts() {
        let (out, evs) = run(serde_json::json!({})).await;
        assert_eq!(out, DriverOutcome::Completed);
        assert_eq!(
            evs[0],
            DriverEvent::Message {
                role: Role::Assistant,
                content: "echo: hi there".into(),
                tool: None
            }
        );
        let DriverEvent::Usage(u) = &evs[1] else {
            panic!("usage")
        };
        assert_eq!((u.input_tokens, u.output_tokens), (2, 3));
    }

    #[tokio::test]
    async fn chunks_tools_and_usage() {
        let (out, evs) = run(serde_json::json!({
            "reply": "abcdefg", "chunks": 3, "tool_calls": 2,
            "input_tokens": 5, "output_tokens": 7, "cost_usd": 0.5
        }))
        .await;
        assert_eq!(out, DriverOutcome::Completed);
        let roles: Vec<_> = evs
            .iter()
            .filter_map(|e| match e {
                DriverEvent::Message { role, .. } => Some(*role),
                _ => None,
            })
            .collect();
        use Role::*;
        assert_eq!(
            roles,
            vec![
                ToolCall, ToolResult, ToolCall, ToolResult, Assistant, Assistant, Assistant
            ]
        );
        let text: String = evs[4..7]
            .iter()
            .map(|e| match e {
                DriverEvent::Message { content, .. } => content.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(text, "abcdefg");
        assert_eq!(
            evs[7],
            DriverEvent::Usage(Usage {
                input_tokens: 5,
                output_tokens: 7,
                context_tokens: 0,
                cost_usd: 0.5
            })
        );
    }

    #[tokio::test]
    async fn fail_and_validation() {
        assert_eq!(
            run(serde_json::json!({"fail": "boom"})).await.0,
            DriverOutcome::Failed("boom".into())
        );
        let bad = serde_json::json!({"chunks": 0})
            .as_object()
            .cloned()
            .unwrap();
        assert!(ScriptedDriver.validate_options(&bad).is_err());
        let typo = serde_json::json!({"replly": "x"})
            .as_object()
            .cloned()
            .unwrap();
        assert!(
            ScriptedDriver
                .validate_options(&typo)
                .unwrap_err()
                .contains("replly")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hang_ends_only_on_cancel_and_delays_are_cancellable() {
        let cancel = CancellationToken::new();
        let (tx, _rx) = mpsc::channel(10);
        let task = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                ScriptedDriver
                    .run(
                        request(serde_json::json!({"hang": true})),
                        DriverEvents::new(tx),
                        cancel,
                    )
                    .await
            }
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!task.is_finished());
        cancel.cancel();
        assert_eq!(task.await.unwrap(), DriverOutcome::Cancelled);

        let cancel = CancellationToken::new();
        let (tx, _rx) = mpsc::channel(10);
        let slow = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                ScriptedDriver
                    .run(
                        request(serde_json::json!({"delay_ms": 600000})),
                        DriverEvents::new(tx),
                        cancel,
                    )
                    .await
            }
        });
        tokio::task::yield_now().await;
        cancel.cancel();
        assert_eq!(slow.await.unwrap(), DriverOutcome::Cancelled);
    }
}
