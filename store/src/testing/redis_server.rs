//! Real redis-server processes for tests, on free loopback ports, stopped on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server this process started. Killed (and its directory removed) on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

/// A free TCP port on 127.0.0.1 (bound then released; the caller binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

fn redis_server_binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

impl RedisServer {
    /// Starts a standalone server with no persistence and waits until it answers.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `--option value` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        // A port can be taken between free_port and bind: try a few.
        let mut last_err = String::new();
        for _ in 0..5 {
            let (port, dir) = (free_port(), tempfile::tempdir().expect("temp dir"));
            let child = command(port, &dir, &extra).spawn().unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}); install it (apt-get install \
                     redis-server) or set REDIS_SERVER"
                )
            });
            let mut server = Self {
                child,
                port,
                dir,
                extra: extra.clone(),
            };
            match server.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("redis-server did not start: {last_err}");
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and
    /// directory, as after a crash: what it persisted (AOF or RDB, if the extra
    /// arguments enable them) is loaded again.
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = command(self.port, &self.dir, &self.extra);
        self.child = cmd.spawn().expect("restart redis-server");
        if let Err(e) = self.wait_ready(Duration::from_secs(10)) {
            panic!("redis-server did not restart: {e}");
        }
    }

    fn wait_ready(&mut self, deadline: Duration) -> Result<(), String> {
        let end = Instant::now() + deadline;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}"));
            }
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(200))
                && redis::cmd("PING").query::<String>(&mut con).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err("no answer to PING".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(port: u16, dir: &tempfile::TempDir, extra: &[String]) -> Command {
    let mut cmd = Command::new(redis_server_binary());
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
