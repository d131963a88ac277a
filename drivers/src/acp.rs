//! The Agent Client Protocol driver: an ACP agent (Claude Code, Gemini CLI, Codex and
//! others through their ACP adapters) run as a subprocess speaking ACP v1 over stdio.
//!
//! # Lifecycle
//! - One agent process per session, started on the session's first run: spawned in
//!   its own process group, then `initialize` (no fs and no terminal capability: the
//!   agent works on files and commands with its own tools, in its working directory,
//!   under the permission policy), then `session/new` with the working directory and
//!   no MCP servers.
//! - Later runs of the session reuse the process and its ACP session. When a process
//!   is started again for a session that had an ACP session (the last one crashed),
//!   the driver sends `session/load` if the agent advertises `loadSession`, and falls
//!   back to `session/new` when that fails. History the agent replays on load is not
//!   written to the transcript again.
//! - A run sends `session/prompt` with the prompt text; the stop reason decides the
//!   outcome: `end_turn`, `max_tokens`, `max_turn_requests` complete (the last two
//!   with a system note), `cancelled` is `Cancelled`, `refusal` fails the run.
//! - Cancel sends `session/cancel`; if the prompt has not returned after
//!   [`AcpProfile::cancel_grace_ms`], the process group is killed and the next run
//!   starts a new process. Either way the run ends `Cancelled`.
//! - A process that exits mid-run fails the run (`agent process exited: ...`); the
//!   next run starts a new one.
//! - [`AgentDriver::release_session`] kills the session's process group in the
//!   background; dropping the driver kills every agent it runs.
//! - The agent's stderr goes to tracing at debug level, with the session id.
//!
//! # Transcript
//! - Message and thought chunks accumulate into one assistant or thinking message,
//!   flushed when the kind or the agent's `messageId` changes, when any other update
//!   or a permission request arrives, at the end of the turn (also a cancelled or
//!   failed one), and past 16 KiB (at a newline when there is one). Updates that add
//!   no message yet report `Activity`, at most once a second.
//! - `tool_call`: a tool_call message (content: the title; `call_id`: the
//!   `toolCallId`; `name`: the agent's tool name, else its kind such as `read`;
//!   `input`: `rawInput`; `path`: the first location). `tool_call_update` with status
//!   `completed` or `failed`: a tool_result message with the same `call_id` (content:
//!   the call's text content, else `rawOutput`; `is_error` when failed).
//! - `plan`: a system message, one line per entry (`[x]` done, `[~]` in progress),
//!   the entries as JSON in `input`.
//! - `usage_update`: usage with `context_tokens` (and the growth of a USD cost).
//! - Permission requests: a system message (`name` `permission`, `call_id` the tool
//!   call, `input` the request as JSON: `request_id` under `ask`, `tool_call`,
//!   `options`), answered by [`AcpProfile::permission_policy`]; under `ask`, the run
//!   reports `Activity` every 5 s while it waits, and a cancelled or ended run
//!   answers `cancelled`.
//!
//! Process groups are killed with `killpg(pgid, SIGKILL)` through `nix` (the workspace
//! forbids unsafe code of its own): a syscall, so no drop ever spawns or waits.
//!
//! # Layout
//! - `process`: spawning, the connection, the handshake, killing the group
//! - `run`: one prompt turn, permission requests, cancellation
//! - `updates`: `session/update` notifications to transcript events
//! - `permission`: the permission policy and the requests waiting for a person
//! - `environment`: what the agent process inherits and where its program is found

mod environment;
mod permission;
mod process;
mod run;
mod updates;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use agent_client_protocol::v1::schema::SessionId as AcpSessionId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sessiond_actors::{
    AgentDriver, AnswerError, DriverEvent, DriverEvents, DriverOutcome, RunRequest,
};
use sessiond_store::{SessionConfig, SessionId};
use tokio_util::sync::CancellationToken;

pub use environment::InheritEnv;
pub use permission::{PermissionAnswer, PermissionPolicy};

use environment::AgentEnv;

use process::{AgentProcess, Launch};
use run::Turn;

/// How to run an ACP agent (one profile per driver instance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcpProfile {
    /// The program to run, looked up in `PATH` (`npx`, `node`, `gemini`, ...).
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Working directory of sessions whose `config.cwd` is unset (a session's own
    /// `cwd` wins). Default: the node's current directory. Relative paths are taken
    /// from the node's current directory. It is also the cwd of the ACP session.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Which of the node's environment variables the agent inherits: `true` (all,
    /// the default), `false` (none) or a list of names such as `["PATH", "HOME"]`.
    /// The node's environment holds the node's secrets; narrow it for agents that
    /// run untrusted work.
    #[serde(default)]
    pub inherit_env: InheritEnv,
    /// Environment variables for the agent, on top of what it inherits from the
    /// node (it needs `PATH`, `HOME` and its API keys from one or the other). A
    /// session's `config.env` is merged on top of these.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How the agent's permission requests are answered: `allow`, `deny` or `ask`.
    /// Default `deny`: an unattended agent does nothing it has to ask for.
    #[serde(default)]
    pub permission_policy: PermissionPolicy,
    /// How long the agent gets to end a cancelled turn before its process group is
    /// killed, in milliseconds. Default 3000.
    #[serde(default = "default_cancel_grace_ms")]
    pub cancel_grace_ms: u64,
    /// How long starting the agent may take (spawn, `initialize`, `session/new` or
    /// `session/load`), in seconds. Default 30.
    #[serde(default = "default_startup_timeout_secs")]
    pub startup_timeout_secs: u64,
}

fn default_cancel_grace_ms() -> u64 {
    3000
}

fn default_startup_timeout_secs() -> u64 {
    30
}

impl AcpProfile {
    /// A profile running `command` with the defaults.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            args: Vec::new(),
            cwd: None,
            inherit_env: InheritEnv::default(),
            env: BTreeMap::new(),
            permission_policy: PermissionPolicy::default(),
            cancel_grace_ms: default_cancel_grace_ms(),
            startup_timeout_secs: default_startup_timeout_secs(),
        }
    }

    /// The working directory for a session (absolute, as ACP requires).
    fn working_dir(&self, config: &SessionConfig) -> PathBuf {
        let chosen = config
            .cwd
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| self.cwd.clone());
        match chosen {
            Some(dir) => std::path::absolute(&dir).unwrap_or(dir),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }

    /// The environment for a session: what it inherits from the node, then the
    /// profile's variables, then the session's on top.
    fn environment(&self, config: &SessionConfig) -> AgentEnv {
        AgentEnv::build(&self.inherit_env, &self.env, &config.env, |name| {
            std::env::var_os(name)
        })
    }
}

/// Key of the agent's ACP session id in the session's driver state.
pub const ACP_SESSION_KEY: &str = "acp_session_id";

/// A session's place in the driver.
struct Slot {
    /// Fires when the session is released (or the driver dropped): its agent goes.
    released: CancellationToken,
    /// The idle agent process, between runs.
    agent: Option<AgentProcess>,
    /// The last ACP session of this session, for `session/load` after a restart.
    acp_session: Option<AcpSessionId>,
    /// A run holds the agent.
    busy: bool,
}

/// The ACP driver. See the module documentation.
pub struct AcpDriver {
    profile: AcpProfile,
    sessions: Mutex<HashMap<SessionId, Slot>>,
    permissions: permission::PendingPermissions,
    /// Cancelled on drop: every agent goes.
    root: CancellationToken,
}

impl std::fmt::Debug for AcpDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpDriver")
            .field("profile", &self.profile)
            .field("sessions", &self.lock_sessions().len())
            .finish()
    }
}

impl Drop for AcpDriver {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

impl AcpDriver {
    /// A driver running agents as `profile` says.
    pub fn new(profile: AcpProfile) -> Self {
        Self {
            profile,
            sessions: Mutex::default(),
            permissions: permission::PendingPermissions::default(),
            root: CancellationToken::new(),
        }
    }

    /// Answers a permission request that waits for a person (policy `ask`); the
    /// request id is the `request_id` of the pending request's system message.
    /// `NotFound` when no such request waits in that session (answered already, or
    /// its run ended), `InvalidRequest` when the option is not one it offered.
    pub fn answer_permission(
        &self,
        session_id: SessionId,
        request_id: &str,
        answer: PermissionAnswer,
    ) -> crate::Result<()> {
        self.permissions.answer(session_id, request_id, answer)
    }

    fn lock_sessions(&self) -> MutexGuard<'_, HashMap<SessionId, Slot>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the session's agent for a run.
    fn checkout(&self, session_id: SessionId) -> Result<Lease<'_>, String> {
        let mut sessions = self.lock_sessions();
        let slot = sessions.entry(session_id).or_insert_with(|| Slot {
            released: self.root.child_token(),
            agent: None,
            acp_session: None,
            busy: false,
        });
        if slot.busy {
            return Err("another run of this session is using the agent".into());
        }
        slot.busy = true;
        Ok(Lease {
            driver: self,
            session_id,
            released: slot.released.clone(),
            agent: slot.agent.take(),
            acp_session: slot.acp_session.clone(),
        })
    }

    /// Starts the session's agent; `Err` is the run's outcome.
    async fn start(
        &self,
        lease: &Lease<'_>,
        config: &SessionConfig,
        cancel: &CancellationToken,
    ) -> Result<AgentProcess, DriverOutcome> {
        let launch = Launch {
            session_id: lease.session_id,
            command: &self.profile.command,
            args: &self.profile.args,
            cwd: self.profile.working_dir(config),
            env: self.profile.environment(config),
            resume: lease.acp_session.clone(),
            stop: lease.released.child_token(),
        };
        let limit = Duration::from_secs(self.profile.startup_timeout_secs);
        tokio::select! {
            started = tokio::time::timeout(limit, AgentProcess::start(launch)) => match started {
                Ok(Ok(agent)) => Ok(agent),
                Ok(Err(e)) => Err(DriverOutcome::Failed(e)),
                Err(_) => Err(DriverOutcome::Failed(format!(
                    "agent did not start within {}s",
                    self.profile.startup_timeout_secs
                ))),
            },
            // Dropping the half-started agent kills it.
            () = cancel.cancelled() => Err(DriverOutcome::Cancelled),
        }
    }
}

/// A run's hold on its session's agent; gives the agent back when dropped, also when
/// the run's future is dropped halfway (then the agent is not given back: it dies).
struct Lease<'a> {
    driver: &'a AcpDriver,
    session_id: SessionId,
    released: CancellationToken,
    agent: Option<AgentProcess>,
    acp_session: Option<AcpSessionId>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut sessions = self.driver.lock_sessions();
        // A session released meanwhile has no slot (or a new one): the agent, if
        // any, is dropped, which kills it.
        if self.released.is_cancelled() {
            return;
        }
        if let Some(slot) = sessions.get_mut(&self.session_id) {
            slot.busy = false;
            slot.agent = self.agent.take();
            if self.acp_session.is_some() {
                slot.acp_session = self.acp_session.take();
            }
        }
    }
}

#[async_trait]
impl AgentDriver for AcpDriver {
    fn validate_options(
        &self,
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String> {
        // Everything is in the profile; the session's cwd and env are in its config.
        match options.keys().next() {
            None => Ok(()),
            Some(key) => Err(format!(
                "the acp driver takes no driver options (got '{key}')"
            )),
        }
    }

    fn answer_permission(
        &self,
        session_id: SessionId,
        request_id: &str,
        answer: serde_json::Value,
    ) -> Result<(), AnswerError> {
        let answer: PermissionAnswer = serde_json::from_value(answer).map_err(|e| {
            AnswerError::Invalid(format!(
                "invalid answer ({e}): expected {{\"outcome\": \"selected\", \"option_id\": \"...\"}} \
                 or {{\"outcome\": \"cancelled\"}}"
            ))
        })?;
        match self.permissions.answer(session_id, request_id, answer) {
            Ok(()) => Ok(()),
            Err(crate::Error::NotFound(m)) => Err(AnswerError::NotPending(m)),
            Err(e) => Err(AnswerError::Invalid(e.to_string())),
        }
    }

    fn release_session(&self, session_id: SessionId) {
        let slot = self.lock_sessions().remove(&session_id);
        if let Some(slot) = slot {
            // The agent's supervisor kills its group and reaps it in the background.
            slot.released.cancel();
        }
    }

    async fn run(
        &self,
        request: RunRequest,
        events: DriverEvents,
        cancel: CancellationToken,
    ) -> DriverOutcome {
        let mut lease = match self.checkout(request.session_id) {
            Ok(lease) => lease,
            Err(e) => return DriverOutcome::Failed(e),
        };
        // After a restart (of the node, or of the session elsewhere) the slot is new:
        // the stored id lets the agent `session/load` the conversation.
        let stored = request
            .driver_state
            .get(ACP_SESSION_KEY)
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        if lease.acp_session.is_none() {
            lease.acp_session = stored.clone().map(AcpSessionId::new);
        }
        let mut agent = match lease.agent.take() {
            Some(agent) => agent,
            None => match self.start(&lease, &request.config, &cancel).await {
                Ok(agent) => agent,
                Err(outcome) => return outcome,
            },
        };
        lease.acp_session = Some(agent.acp_session.clone());
        if stored.as_deref() != Some(&*agent.acp_session.0) {
            let mut state = request.driver_state.clone();
            state.insert(
                ACP_SESSION_KEY.into(),
                agent.acp_session.0.to_string().into(),
            );
            if events.send(DriverEvent::State(state)).await.is_err() {
                return DriverOutcome::Cancelled;
            }
        }
        let turn = Turn {
            agent: &mut agent,
            session_id: request.session_id,
            policy: self.profile.permission_policy,
            cancel_grace: Duration::from_millis(self.profile.cancel_grace_ms),
            permissions: &self.permissions,
            events: &events,
        };
        let end = turn.run(request.prompt, &cancel).await;
        if end.keep {
            lease.agent = Some(agent);
        }
        end.outcome
    }
}
