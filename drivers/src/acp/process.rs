//! One agent process: spawning it in its own process group, its ACP connection, the
//! handshake (`initialize`, then `session/load` or `session/new`), draining its
//! stderr, and killing its process group (`killpg`, a syscall through `nix`).
//!
//! Three tasks serve a process: the connection (the SDK's dispatch loop), a
//! supervisor that reaps the process and kills its group when told to, and a stderr
//! drain. They share one stop token: whichever ends first (the process exits, the
//! connection closes, the driver lets go) brings the others down.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    ClientCapabilities, Implementation, InitializeRequest, LoadSessionRequest, NewSessionRequest,
    RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse,
    SessionId as AcpSessionId, SessionNotification, SessionUpdate,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Agent, ByteStreams, Client};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use sessiond_store::SessionId;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::environment::AgentEnv;

/// What the agent sends that a run must handle, in arrival order.
pub(super) enum Inbound {
    /// A `session/update` notification (boxed, like the next: both are large, and
    /// the channel holds many).
    Update(Box<SessionUpdate>),
    /// A `session/request_permission` request and the handle to answer it with.
    Permission(Box<PermissionRequest>),
}

/// A permission request and the handle to answer it with.
pub(super) type PermissionRequest = (
    RequestPermissionRequest,
    Responder<RequestPermissionResponse>,
);

/// Where the connection delivers [`Inbound`] messages: the current run's channel, or
/// nothing between runs (updates are then dropped, such as the history an agent
/// replays on `session/load`, and permission requests are answered `cancelled`).
type Inbox = Arc<Mutex<Option<mpsc::Sender<Inbound>>>>;

/// How to start an agent.
pub(super) struct Launch<'a> {
    pub(super) session_id: SessionId,
    pub(super) command: &'a str,
    pub(super) args: &'a [String],
    pub(super) cwd: PathBuf,
    pub(super) env: AgentEnv,
    /// The ACP session to load, when an earlier process of this session had one.
    pub(super) resume: Option<AcpSessionId>,
    /// Fires when the agent must go (the session was released, the driver dropped).
    pub(super) stop: CancellationToken,
}

/// A live agent process with an open ACP session. Dropping it kills its process group.
pub(super) struct AgentProcess {
    /// The process id, which is also its process group id.
    pub(super) pid: u32,
    /// The connection to the agent.
    pub(super) cx: ConnectionTo<Agent>,
    /// The ACP session the runs prompt.
    pub(super) acp_session: AcpSessionId,
    /// The agent's cumulative cost in USD as last reported.
    pub(super) cost_seen_usd: f64,
    inbox: Inbox,
    stop: CancellationToken,
    exit: watch::Receiver<Option<String>>,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl AgentProcess {
    /// Spawns the agent and opens its ACP session. On error, nothing is left running.
    pub(super) async fn start(launch: Launch<'_>) -> Result<Self, String> {
        let Launch {
            session_id,
            command,
            args,
            cwd,
            env,
            resume,
            stop,
        } = launch;
        let mut spawn = Command::new(env.program(command, std::env::var_os("PATH")));
        if env.clear {
            spawn.env_clear();
        }
        let mut child = spawn
            .args(args)
            .current_dir(&cwd)
            .envs(&env.vars)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that cancel can kill whatever it started as well.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start agent '{command}': {e}"))?;
        let pid = child.id().ok_or("agent process exited at once")?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("agent process has no stdio pipes".into());
        };
        debug!(session_id = %session_id, pid, command, "agent process started");
        // Until the handshake succeeds, any early return kills the process.
        let kill_on_error = stop.clone().drop_guard();

        let (exit_tx, exit) = watch::channel(None);
        let closed = CancellationToken::new();
        let supervisor = Supervisor {
            pid,
            stop: stop.clone(),
            closed: closed.clone(),
            exit_tx,
            session_id,
        };
        tokio::spawn(supervisor.run(child));
        tokio::spawn(drain_stderr(stderr, session_id, stop.clone()));

        let inbox = Inbox::default();
        let (cx_tx, cx_rx) = oneshot::channel();
        let transport = ByteStreams::new(stdin.compat_write(), stdout.compat());
        tokio::spawn(connect(
            transport,
            inbox.clone(),
            cx_tx,
            (stop.clone(), closed),
            session_id,
        ));

        let mut process = Self {
            pid,
            cx: cx_rx
                .await
                .map_err(|_| "agent connection did not open".to_owned())?,
            acp_session: AcpSessionId::new(""),
            cost_seen_usd: 0.0,
            inbox,
            stop,
            exit,
        };
        match handshake(&process.cx, &cwd, resume, session_id).await {
            Ok(id) => process.acp_session = id,
            Err(e) => return Err(process.failure("agent startup failed", &e).await),
        }
        kill_on_error.disarm();
        Ok(process)
    }

    /// Routes the agent's updates and requests to a run's channel.
    pub(super) fn attach(&self, tx: mpsc::Sender<Inbound>) {
        *self.inbox.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
    }

    /// Stops routing to the run's channel.
    pub(super) fn detach(&self) {
        *self.inbox.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Whether the process and its connection still serve.
    pub(super) fn is_alive(&self) -> bool {
        !self.stop.is_cancelled() && !self.cx.is_incoming_closed()
    }

    /// Kills the process group (without waiting).
    pub(super) fn kill(&self) {
        self.stop.cancel();
    }

    /// Waits until the process has exited; says how it ended.
    pub(super) async fn exited(&self) -> String {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(status) => status.clone().unwrap_or_default(),
            Err(_) => "agent process is gone".into(),
        }
    }

    /// The error text for an ACP request that failed: the exit status when the
    /// connection failed because the process exited (or was killed: the supervisor
    /// kills a process soon after it closes its stdout).
    pub(super) async fn failure(&self, context: &str, e: &agent_client_protocol::Error) -> String {
        let gone = agent_client_protocol::is_incoming_transport_closed(e)
            || agent_client_protocol::is_connection_terminated(e);
        if gone || !self.is_alive() {
            let exit = tokio::time::timeout(EXIT_GRACE * 5, self.exited()).await;
            return match exit {
                Ok(status) => format!("agent process exited: {status}"),
                Err(_) => "agent process closed its connection".into(),
            };
        }
        format!("{context}: {}", e.message)
    }
}

/// `initialize`, then `session/load` when asked for and supported, else
/// `session/new`; returns the ACP session id.
async fn handshake(
    cx: &ConnectionTo<Agent>,
    cwd: &std::path::Path,
    resume: Option<AcpSessionId>,
    session_id: SessionId,
) -> Result<AcpSessionId, agent_client_protocol::Error> {
    // No fs and no terminal capability: the agent uses its own tools for files and
    // commands, inside its working directory, under the permission policy.
    let init = InitializeRequest::new(ProtocolVersion::V1)
        .client_capabilities(ClientCapabilities::new())
        .client_info(Implementation::new("sessiond", env!("CARGO_PKG_VERSION")));
    let init = cx.send_request(init).block_task().await?;
    if let Some(id) = resume
        && init.agent_capabilities.load_session
    {
        match cx
            .send_request(LoadSessionRequest::new(id.clone(), cwd))
            .block_task()
            .await
        {
            Ok(_) => return Ok(id),
            // It may have lost the session (its storage was wiped): start over.
            Err(e) => {
                warn!(session_id = %session_id, error = %e.message, "session/load failed, starting a new acp session")
            }
        }
    }
    let created = cx
        .send_request(NewSessionRequest::new(cwd))
        .block_task()
        .await?;
    Ok(created.session_id)
}

/// Runs the ACP connection until the process closes its stdout or `stop` fires;
/// then fires `closed`.
async fn connect<T>(
    transport: T,
    inbox: Inbox,
    cx_tx: oneshot::Sender<ConnectionTo<Agent>>,
    (stop, closed): (CancellationToken, CancellationToken),
    session_id: SessionId,
) where
    T: agent_client_protocol::ConnectTo<Client> + 'static,
{
    let updates = inbox.clone();
    let requests = inbox;
    let result = Client
        .v1()
        .name("sessiond")
        .on_receive_notification(
            async move |notification: SessionNotification, _cx| {
                let tx = updates
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some(tx) = tx {
                    // Bounded: a slow run slows the agent down instead of queueing.
                    let _ = tx
                        .send(Inbound::Update(Box::new(notification.update)))
                        .await;
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |request: RequestPermissionRequest, responder, _cx| {
                let tx = requests
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let inbound = Inbound::Permission(Box::new((request, responder)));
                let unanswered = match tx {
                    Some(tx) => match tx.send(inbound).await {
                        Ok(()) => return Ok(()),
                        Err(mpsc::error::SendError(inbound)) => inbound,
                    },
                    None => inbound,
                };
                match unanswered {
                    Inbound::Permission(request) => request.1.respond(
                        RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled),
                    ),
                    Inbound::Update(_) => Ok(()),
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(transport, async move |cx: ConnectionTo<Agent>| {
            let _ = cx_tx.send(cx.clone());
            tokio::select! {
                () = stop.cancelled() => {}
                () = cx.incoming_closed() => {}
            }
            Ok(())
        })
        .await;
    if let Err(e) = result {
        debug!(session_id = %session_id, error = %e, "agent connection failed");
    }
    closed.cancel();
}

/// How long a process that closed its stdout gets to exit by itself before its
/// group is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Watches one agent process.
struct Supervisor {
    pid: u32,
    /// Kill now.
    stop: CancellationToken,
    /// The connection ended: kill after [`EXIT_GRACE`] unless it exits first.
    closed: CancellationToken,
    exit_tx: watch::Sender<Option<String>>,
    session_id: SessionId,
}

impl Supervisor {
    /// Reaps the process, killing its group first when told to; then publishes how
    /// it ended and fires `stop`, which ends the connection and the stderr drain.
    async fn run(self, mut child: Child) {
        let pid = self.pid;
        // Should the runtime drop this task (shutdown), the group still goes.
        let mut guard = GroupKillGuard(Some(pid));
        let exited = tokio::select! {
            biased;
            status = child.wait() => Some(status),
            () = self.stop.cancelled() => None,
            () = self.closed.cancelled() => {
                tokio::time::timeout(EXIT_GRACE, child.wait()).await.ok()
            }
        };
        // Whatever it started may still run; when it still runs itself, kill before
        // reaping, so that the group id cannot have been reused.
        if let Err(e) = kill_group(pid) {
            warn!(session_id = %self.session_id, pgid = pid, error = %e, "cannot kill the agent's process group");
        }
        let status = match exited {
            Some(status) => status,
            None => child.wait().await,
        };
        guard.0 = None;
        let status = match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("cannot wait for it: {e}"),
        };
        debug!(session_id = %self.session_id, pid, status = %status, "agent process ended");
        self.stop.cancel();
        let _ = self.exit_tx.send(Some(status));
    }
}

/// Forwards the agent's stderr to tracing, line by line, until it closes (or soon
/// after the process is gone: a grandchild that escaped the kill may hold it open).
async fn drain_stderr(stderr: ChildStderr, session_id: SessionId, stop: CancellationToken) {
    let mut lines = BufReader::new(stderr).lines();
    let drain = async move {
        while let Ok(Some(line)) = lines.next_line().await {
            debug!(session_id = %session_id, line = %line, "agent stderr");
        }
    };
    tokio::pin!(drain);
    tokio::select! {
        () = &mut drain => return,
        () = stop.cancelled() => {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// Sends `SIGKILL` to the process group `pgid`: one `killpg` syscall, which neither
/// blocks nor spawns anything, so it is also fit for a `Drop`. A group that is gone
/// already (`ESRCH`) is no error.
fn kill_group(pgid: u32) -> nix::Result<()> {
    let pgid = i32::try_from(pgid).map_err(|_| Errno::EINVAL)?;
    // 0 and 1 would signal our own group or every process we may signal.
    if pgid <= 1 {
        return Err(Errno::EINVAL);
    }
    match killpg(Pid::from_raw(pgid), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Kills the process group when dropped: the last resort when the supervisor task is
/// dropped with the runtime. Only a signal: the child itself is reaped by tokio
/// (`kill_on_drop` hands it to tokio's orphan reaper), nothing waits here.
struct GroupKillGuard(Option<u32>);

impl Drop for GroupKillGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // Nobody to tell (and no logging from a drop): a failure only means the
            // group is out of reach, which the supervisor would have hit as well.
            let _ = kill_group(pgid);
        }
    }
}
