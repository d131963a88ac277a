//! Helpers for the ACP driver tests: the test agent's profile, runs in the
//! background, and what the agent says about itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sessiond_actors::{AgentDriver, DriverEvent, DriverEvents, DriverOutcome, RunRequest};
use sessiond_drivers::acp::{AcpDriver, AcpProfile};
use sessiond_store::{Role, RunId, SessionConfig, SessionId, ToolInfo};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

/// Generous: this runs on loaded machines, and each agent is a Node.js process.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

pub(crate) fn fixture() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/acp-agent");
    assert!(
        dir.join("node_modules/@agentclientprotocol/sdk").is_dir(),
        "the ACP test agent is not installed: run `npm ci` in {}",
        dir.display()
    );
    dir
}

pub(crate) fn profile() -> AcpProfile {
    let mut profile = AcpProfile::new("node");
    profile.args = vec![fixture().join("agent.mjs").display().to_string()];
    profile.startup_timeout_secs = 60;
    profile.cancel_grace_ms = 1000;
    profile
}

pub(crate) fn driver_with(edit: impl FnOnce(&mut AcpProfile)) -> Arc<AcpDriver> {
    let mut profile = profile();
    edit(&mut profile);
    Arc::new(AcpDriver::new(profile))
}

pub(crate) fn request(session_id: SessionId, prompt: &str, config: SessionConfig) -> RunRequest {
    RunRequest {
        session_id,
        run_id: RunId::generate(),
        history: Vec::new(),
        prompt: prompt.into(),
        model: None,
        system_prompt: None,
        options: serde_json::Map::new(),
        config,
        driver_state: Default::default(),
    }
}

/// A run in the background: its events as they come, its outcome at the end.
pub(crate) struct Running {
    events: mpsc::Receiver<DriverEvent>,
    seen: Vec<DriverEvent>,
    pub(crate) cancel: CancellationToken,
    done: tokio::task::JoinHandle<DriverOutcome>,
}

impl Running {
    pub(crate) fn start(
        driver: &Arc<AcpDriver>,
        session: SessionId,
        prompt: &str,
        config: SessionConfig,
    ) -> Self {
        let (tx, events) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let (driver, token) = (driver.clone(), cancel.clone());
        let request = request(session, prompt, config);
        let done =
            tokio::spawn(async move { driver.run(request, DriverEvents::new(tx), token).await });
        Self {
            events,
            seen: Vec::new(),
            cancel,
            done,
        }
    }

    /// Waits for an event matching `want` and returns it.
    pub(crate) async fn wait_for(
        &mut self,
        what: &str,
        want: impl Fn(&DriverEvent) -> bool,
    ) -> DriverEvent {
        let end = Instant::now() + DEADLINE;
        loop {
            let event = tokio::time::timeout_at(end, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {:?}", self.seen))
                .unwrap_or_else(|| panic!("the run ended before {what}; saw {:?}", self.seen));
            self.seen.push(event.clone());
            if want(&event) {
                return event;
            }
        }
    }

    /// Waits for the outcome; returns it with every event.
    pub(crate) async fn finish(mut self) -> (DriverOutcome, Vec<DriverEvent>) {
        let outcome = timeout(DEADLINE, self.done)
            .await
            .expect("run timed out")
            .expect("run panicked");
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
        (outcome, self.seen)
    }
}

pub(crate) async fn run_with(
    driver: &Arc<AcpDriver>,
    session: SessionId,
    prompt: &str,
    config: SessionConfig,
) -> (DriverOutcome, Vec<DriverEvent>) {
    Running::start(driver, session, prompt, config)
        .finish()
        .await
}

pub(crate) async fn run(
    driver: &Arc<AcpDriver>,
    session: SessionId,
    prompt: &str,
) -> (DriverOutcome, Vec<DriverEvent>) {
    run_with(driver, session, prompt, SessionConfig::default()).await
}

/// The messages of a run, without activity and usage.
pub(crate) fn messages(events: &[DriverEvent]) -> Vec<(Role, String, Option<ToolInfo>)> {
    events
        .iter()
        .filter_map(|e| match e {
            DriverEvent::Message {
                role,
                content,
                tool,
            } => Some((*role, content.clone(), tool.clone())),
            _ => None,
        })
        .collect()
}

pub(crate) fn texts(events: &[DriverEvent], role: Role) -> Vec<String> {
    messages(events)
        .into_iter()
        .filter(|m| m.0 == role)
        .map(|m| m.1)
        .collect()
}

/// What the agent says about itself (the `pid` prompt).
pub(crate) async fn whoami(
    driver: &Arc<AcpDriver>,
    session: SessionId,
    config: SessionConfig,
) -> serde_json::Value {
    let (outcome, events) = run_with(driver, session, "pid", config).await;
    assert_eq!(outcome, DriverOutcome::Completed, "{events:?}");
    let replies = texts(&events, Role::Assistant);
    assert_eq!(replies.len(), 1, "{events:?}");
    serde_json::from_str(&replies[0]).expect("pid reply is JSON")
}

pub(crate) async fn pid(driver: &Arc<AcpDriver>, session: SessionId) -> u64 {
    whoami(driver, session, SessionConfig::default()).await["pid"]
        .as_u64()
        .expect("a pid")
}

pub(crate) fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls `cond` until it holds; panics after `DEADLINE`.
pub(crate) async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the system message of a pending permission request; returns its id and
/// the request as JSON.
pub(crate) async fn pending_permission(running: &mut Running) -> (String, serde_json::Value) {
    let pending = running
        .wait_for("the pending permission", |e| {
            matches!(
                e,
                DriverEvent::Message {
                    role: Role::System,
                    ..
                }
            )
        })
        .await;
    let DriverEvent::Message {
        tool: Some(tool), ..
    } = pending
    else {
        panic!("no tool info: {pending:?}")
    };
    let input = tool.input.expect("the request as JSON");
    let id = input["request_id"]
        .as_str()
        .expect("a request id")
        .to_owned();
    (id, input)
}
