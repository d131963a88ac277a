//! The agent driver trait: how a run talks to an agent, and the registry of drivers.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use sessiond_store::{Message, Role, RunId, SessionConfig, SessionId, ToolInfo, Usage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Everything a driver gets for one run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The session.
    pub session_id: SessionId,
    /// This run.
    pub run_id: RunId,
    /// Committed transcript up to and including the prompt's user message.
    pub history: Vec<Message>,
    /// The prompt that started the run.
    pub prompt: String,
    /// Model name, when the session has one.
    pub model: Option<String>,
    /// System prompt, when the session has one.
    pub system_prompt: Option<String>,
    /// The session's driver options (validated by [`AgentDriver::validate_options`]).
    pub options: serde_json::Map<String, serde_json::Value>,
    /// The session's run settings.
    pub config: SessionConfig,
    /// What the driver stored for this session with [`DriverEvent::State`].
    pub driver_state: serde_json::Map<String, serde_json::Value>,
}

/// What a driver reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum DriverEvent {
    /// A message to append to the transcript.
    Message {
        /// Who speaks (assistant, thinking, tool_call, tool_result, system).
        role: Role,
        /// The text.
        content: String,
        /// Tool details for tool calls and results.
        tool: Option<ToolInfo>,
    },
    /// Usage to add to the run's total.
    Usage(Usage),
    /// The driver is alive and working (resets the stall timer) without output.
    Activity,
    /// Replaces what the driver keeps for this session; it is stored with the
    /// session and handed back in every later [`RunRequest`], also after a restart
    /// on another node.
    State(serde_json::Map<String, serde_json::Value>),
}

/// How a driver's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverOutcome {
    /// Finished normally.
    Completed,
    /// Failed with an error for people.
    Failed(String),
    /// Stopped because its cancellation token fired.
    Cancelled,
}

/// The sending side of a run's event channel (bounded: a slow store slows the
/// driver instead of dropping anything).
#[derive(Debug, Clone)]
pub struct DriverEvents(mpsc::Sender<DriverEvent>);

/// The run is over (the session stopped listening): the driver should stop.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("run closed")]
pub struct RunClosed;

impl DriverEvents {
    /// Wraps the sender of a run's event channel.
    pub fn new(tx: mpsc::Sender<DriverEvent>) -> Self {
        Self(tx)
    }

    /// Reports an event; waits while the session is behind.
    pub async fn send(&self, event: DriverEvent) -> Result<(), RunClosed> {
        self.0.send(event).await.map_err(|_| RunClosed)
    }

    /// Reports a message.
    pub async fn message(&self, role: Role, content: impl Into<String>) -> Result<(), RunClosed> {
        self.send(DriverEvent::Message {
            role,
            content: content.into(),
            tool: None,
        })
        .await
    }
}

/// Why a driver refused an answer to one of its permission requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// No such request waits (answered already, or its run ended).
    #[error("{0}")]
    NotPending(String),
    /// The answer is malformed or picks an option that was not offered.
    #[error("{0}")]
    Invalid(String),
    /// This driver never asks for permission.
    #[error("this driver asks no permissions")]
    Unsupported,
}

/// An agent behind a uniform interface. A driver must end soon after `cancel` fires
/// (the session force-ends it after a grace period otherwise).
#[async_trait]
pub trait AgentDriver: Send + Sync + 'static {
    /// Checks a session's driver options when it is created or patched.
    fn validate_options(
        &self,
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String> {
        let _ = options;
        Ok(())
    }

    /// The session left this node (passivated, deleted, stopped or crashed): release
    /// whatever the driver keeps for it (an agent process, a connection). Called from
    /// a drop, so it must not block; spawn any slow cleanup.
    fn release_session(&self, session_id: SessionId) {
        let _ = session_id;
    }

    /// Answers a permission request the driver waits on for a person (an `ask`
    /// policy). `answer` is the driver's own JSON shape.
    fn answer_permission(
        &self,
        session_id: SessionId,
        request_id: &str,
        answer: serde_json::Value,
    ) -> Result<(), AnswerError> {
        let _ = (session_id, request_id, answer);
        Err(AnswerError::Unsupported)
    }

    /// Runs one prompt to the end, reporting through `events`.
    async fn run(
        &self,
        request: RunRequest,
        events: DriverEvents,
        cancel: CancellationToken,
    ) -> DriverOutcome;
}

/// The drivers a node offers, by the name sessions pick them with.
#[derive(Clone, Default)]
pub struct DriverRegistry {
    drivers: BTreeMap<String, Arc<dyn AgentDriver>>,
}

impl DriverRegistry {
    /// A registry with the scripted driver under `scripted`.
    pub fn with_scripted() -> Self {
        let mut r = Self::default();
        r.insert("scripted", Arc::new(crate::scripted::ScriptedDriver));
        r
    }

    /// Adds or replaces a driver.
    pub fn insert(&mut self, name: impl Into<String>, driver: Arc<dyn AgentDriver>) {
        self.drivers.insert(name.into(), driver);
    }

    /// The driver of that name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn AgentDriver>> {
        self.drivers.get(name).cloned()
    }

    /// Names of all drivers, sorted.
    pub fn names(&self) -> Vec<String> {
        self.drivers.keys().cloned().collect()
    }

    /// Checks that `name` exists and accepts `options`.
    pub fn validate(
        &self,
        name: &str,
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String> {
        match self.drivers.get(name) {
            None => Err(format!(
                "unknown driver '{name}' (available: {})",
                self.names().join(", ")
            )),
            Some(d) => d.validate_options(options),
        }
    }
}

impl std::fmt::Debug for DriverRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.drivers.keys()).finish()
    }
}
