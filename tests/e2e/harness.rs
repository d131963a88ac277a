//! Test harness: `sessiond` processes, a JSON/SSE client, waiting with deadlines.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

pub use sessiond_store::testing::redis_server::RedisServer;
pub use sessiond_store::testing::wait_until;

/// Generous: CI runs on 2 loaded cores.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A `sessiond serve` process. Killed with SIGKILL on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    args: Vec<String>,
}

/// Where a server keeps its data.
#[derive(Clone)]
pub enum Store {
    /// Embedded SQLite in this directory.
    Sqlite(PathBuf),
    /// Redis at this URL.
    Redis(String),
    /// Everything in memory, gone with the process (`serve --memory`).
    Memory,
}

impl Store {
    fn args(&self) -> Vec<String> {
        match self {
            Store::Sqlite(dir) => vec!["--data-dir".into(), dir.display().to_string()],
            // A stable node id, as a deployment gives each node: after a crash the
            // restarted node takes its leases back at once.
            Store::Redis(url) => vec![
                "--redis".into(),
                url.clone(),
                "--node-id".into(),
                format!(
                    "node-{}",
                    sessiond_store::testing::redis_server::free_port()
                ),
            ],
            Store::Memory => vec!["--memory".into()],
        }
    }
}

impl Server {
    /// Starts a server on a free port over `store` and waits until it listens.
    pub fn start(store: &Store) -> Self {
        Self::start_with(store.args(), None)
    }

    /// Starts `sessiond serve <args>` (plus `--listen 127.0.0.1:0` unless `cwd` is
    /// given, in which case the defaults apply) and waits for its address line.
    pub fn start_with(args: Vec<String>, cwd: Option<&Path>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessiond"));
        cmd.arg("serve");
        if cwd.is_none() {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(&args)
            .env(
                "RUST_LOG",
                std::env::var("SESSIOND_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().expect("spawn sessiond");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("sessiond listening on ") {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(url);
                }
            }
        });
        let url = match rx.recv_timeout(DEADLINE) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("sessiond did not report its address within {DEADLINE:?}");
            }
        };
        Self { child, url, args }
    }

    /// Writes `toml` to `dir/sessiond.toml` and starts `sessiond serve --config` with
    /// it, over SQLite in `dir/data`.
    pub fn start_with_config(dir: &Path, toml: &str) -> Self {
        let config = dir.join("sessiond.toml");
        std::fs::write(&config, toml).expect("write sessiond.toml");
        let data = dir.join("data");
        Self::start_with(
            vec![
                "--config".into(),
                config.display().to_string(),
                "--data-dir".into(),
                data.display().to_string(),
            ],
            None,
        )
    }

    /// Writes `toml` to `dir/sessiond.toml` and starts `sessiond serve --config` with
    /// it over `store`.
    pub fn start_configured(store: &Store, dir: &Path, toml: &str) -> Self {
        let config = dir.join("sessiond.toml");
        std::fs::write(&config, toml).expect("write sessiond.toml");
        let mut args = vec!["--config".into(), config.display().to_string()];
        args.extend(store.args());
        Self::start_with(args, None)
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// The same server again (same store) on a new port, after `kill9`.
    pub fn restart(&mut self) {
        self.kill9();
        // The old process is dead; dropping its handle is harmless.
        *self = Server::start_with(self.args.clone(), None);
    }

    /// Sends SIGTERM and waits (up to the deadline) for the process to exit.
    pub fn sigterm_and_wait(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < end,
                "sessiond did not exit within {DEADLINE:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client of this server.
    pub fn api(&self) -> Api {
        Api::new(&self.url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A client of the API: the typed steps of a test (create, send, read, wait) go
/// through the Rust SDK (`sessiond_client::Client`); the wire-level checks (raw
/// status codes, bodies, SSE ids) through `raw` and the SSE helpers.
#[derive(Clone)]
pub struct Api {
    /// Base URL.
    pub base: String,
    http: reqwest::Client,
    /// The SDK's client of the same server.
    pub client: sessiond_client::Client,
}

/// An HTTP answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// Asserts the error shape with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status of {:?}", self.body);
        assert_eq!(self.body["error"]["code"], code, "code of {:?}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "message of {:?}",
            self.body
        );
    }
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            client: sessiond_client::Client::new(base)
                .expect("a server URL")
                .with_timeout(Duration::from_secs(30)),
        }
    }

    pub async fn raw(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> Answer {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.raw(reqwest::Method::POST, path, Some(&body.to_string()))
            .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.raw(reqwest::Method::GET, path, None).await
    }

    /// `POST path body`, asserting `status`; returns the body.
    pub async fn ok(&self, path: &str, body: Value, status: u16) -> Value {
        let a = self.post(path, body).await;
        assert_eq!(a.status, status, "POST {path}: {:?}", a.body);
        a.body
    }

    /// `GET path`, asserting 200; returns the body.
    pub async fn fetch(&self, path: &str) -> Value {
        let a = self.get(path).await;
        assert_eq!(a.status, 200, "GET {path}: {:?}", a.body);
        a.body
    }

    /// The value of one Prometheus series (`name{labels}` as rendered) on
    /// `/metrics`; 0 when the series was never recorded.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().expect("a number"))
    }

    /// Creates a session (the body is a create request's JSON); returns its id.
    pub async fn create(&self, project: &str, body: Value) -> String {
        let req: sessiond_client::model::CreateSessionRequest =
            serde_json::from_value(body).expect("a create request");
        let created = self.client.create_session(project, &req).await;
        created.expect("create").session.id
    }

    /// Sends a prompt; returns the receipt.
    pub async fn send(&self, id: &str, prompt: &str) -> Value {
        let receipt = self.client.send(id, prompt).await.expect("send");
        serde_json::to_value(receipt).unwrap()
    }

    /// The session object.
    pub async fn session(&self, id: &str) -> Value {
        let got = self.client.get_session(id).await.expect("get");
        serde_json::to_value(got.session).unwrap()
    }

    /// The whole transcript.
    pub async fn history(&self, id: &str) -> Vec<Value> {
        let page = sessiond_client::ops::History {
            limit: Some(1000),
            ..Default::default()
        };
        let page = self.client.history(id, &page).await.expect("history");
        page.messages
            .into_iter()
            .map(|m| serde_json::to_value(m).unwrap())
            .collect()
    }

    /// Waits until the session is not running and its log reaches `seq`.
    pub async fn wait_settled(&self, id: &str, seq: u64) -> Value {
        wait_until("session settled", DEADLINE, || async {
            let s = self.session(id).await;
            (s["status"] != "running" && s["last_seq"].as_u64() >= Some(seq)).then_some(s)
        })
        .await
    }

    /// Waits until the session reports `status`.
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        wait_until(&format!("status {status}"), DEADLINE, || async {
            let s = self.session(id).await;
            (s["status"] == status).then_some(s)
        })
        .await
    }

    /// Opens an SSE stream at `path`.
    pub async fn sse(&self, path: &str) -> Events {
        let resp = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("sse request");
        assert_eq!(resp.status(), 200, "sse status");
        Events {
            inner: Box::pin(eventsource_stream::Eventsource::eventsource(
                resp.bytes_stream(),
            )),
        }
    }

    /// Opens the SSE stream of a session.
    pub async fn events(
        &self,
        id: &str,
        after_seq: Option<u64>,
        last_event_id: Option<u64>,
    ) -> Events {
        let mut url = format!("{}/v1/sessions/{id}/events", self.base);
        if let Some(a) = after_seq {
            url.push_str(&format!("?after_seq={a}"));
        }
        let mut req = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream");
        if let Some(l) = last_event_id {
            req = req.header("last-event-id", l.to_string());
        }
        let resp = req.send().await.expect("sse request");
        assert_eq!(resp.status(), 200, "sse status");
        Events::of(resp)
    }

    /// Opens the SSE stream of a project; it is subscribed once this returns.
    pub async fn project_events(&self, project: &str) -> Events {
        let resp = reqwest::Client::new()
            .get(format!("{}/v1/projects/{project}/events", self.base))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("sse request");
        assert_eq!(resp.status(), 200, "sse status");
        Events::of(resp)
    }
}

/// An open SSE stream.
pub struct Events {
    inner: std::pin::Pin<
        Box<
            dyn futures::Stream<
                    Item = Result<
                        eventsource_stream::Event,
                        eventsource_stream::EventStreamError<reqwest::Error>,
                    >,
                > + Send,
        >,
    >,
}

/// One SSE event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: String,
    pub id: String,
    pub data: Value,
}

impl Events {
    fn of(resp: reqwest::Response) -> Self {
        Events {
            inner: Box::pin(eventsource_stream::Eventsource::eventsource(
                resp.bytes_stream(),
            )),
        }
    }

    /// The next event, within the deadline.
    pub async fn next(&mut self) -> Sse {
        let ev = tokio::time::timeout(DEADLINE, self.inner.next())
            .await
            .expect("an SSE event within the deadline")
            .expect("stream open")
            .expect("valid SSE");
        Sse {
            event: ev.event,
            id: ev.id,
            data: serde_json::from_str(&ev.data).unwrap_or(Value::Null),
        }
    }

    /// Message events until one with `seq` arrives; status events are skipped.
    /// Panics on a duplicate or out-of-order seq.
    pub async fn messages_until(&mut self, after: u64, seq: u64) -> Vec<Sse> {
        let mut out = Vec::new();
        let mut last = after;
        while last < seq {
            let ev = self.next().await;
            if ev.event != "message" {
                continue;
            }
            let s = ev.data["seq"].as_u64().unwrap();
            assert_eq!(
                s,
                last + 1,
                "SSE messages must be dense, in order, each once"
            );
            assert_eq!(ev.id, s.to_string(), "the SSE id is the seq");
            last = s;
            out.push(ev);
        }
        out
    }
}

impl Store {
    /// The same store opened from the test (tenant `default`), to look at what the
    /// API does not show (the archive). Not for `Memory`.
    pub async fn open(&self) -> sessiond_store::Backend {
        match self {
            Store::Sqlite(dir) => {
                sessiond_store::backend::sqlite::open_sqlite(&dir.join("sessiond.db"))
                    .await
                    .expect("open sqlite")
            }
            Store::Redis(url) => sessiond_store::backend::redis::connect_redis(url)
                .await
                .expect("connect redis"),
            Store::Memory => panic!("a memory store lives inside its server process"),
        }
    }
}

/// Both stores, for tests that must hold on each; the Redis server lives as long
/// as the returned guard.
pub fn stores() -> Vec<(Store, Option<RedisServer>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::Sqlite(dir.path().join("data"));
    let redis = RedisServer::start();
    let rdir = tempfile::tempdir().unwrap();
    vec![
        (sqlite, None, dir),
        (Store::Redis(redis.url()), Some(redis), rdir),
    ]
}
