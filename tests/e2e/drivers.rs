//! The `openai` and `acp` drivers behind the HTTP API: profiles from `sessiond.toml`,
//! a fake OpenAI-compatible server (real HTTP and SSE), the Node.js ACP test agent
//! (`runtime/tests/fixtures/acp-agent`, installed with `npm ci` before the tests).

#[path = "../../runtime/tests/support/openai_server.rs"]
#[allow(dead_code)] // Shared with the driver tests, which use all of it.
mod openai_server;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use openai_server::{FakeServer, Reply, content, finish, reasoning, usage};
use serde_json::{Value, json};

use crate::harness::*;

/// Waits that include starting a Node.js agent on a loaded machine.
const NODE_DEADLINE: Duration = Duration::from_secs(60);

/// The test agent's `agent.mjs`, as an absolute path; panics with what to do when
/// `node` or the agent's packages are missing.
fn acp_agent() -> String {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the acp tests need `node` (Node.js 20+) in PATH"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime/tests/fixtures/acp-agent");
    assert!(
        dir.join("node_modules/@agentclientprotocol/sdk").is_dir(),
        "the ACP test agent is not installed: run `npm ci` in {}",
        dir.display()
    );
    dir.join("agent.mjs").display().to_string()
}

/// A TOML string (a JSON string is one, for the paths and URLs used here).
fn quoted(s: &str) -> String {
    Value::from(s).to_string()
}

/// `[drivers.fake]`: the fake server, model `test-model` priced at $2 / $10 per
/// million input / output tokens.
fn openai_config(base_url: &str, max_retries: u32) -> String {
    format!(
        r#"
[drivers.fake]
kind = "openai"
base_url = {base_url}
model = "test-model"
max_retries = {max_retries}
retry_base_ms = 10

[drivers.fake.prices.test-model]
input_per_mtok = 2.0
output_per_mtok = 10.0
"#,
        base_url = quoted(base_url),
    )
}

/// `[drivers.agent]`: the ACP test agent under `policy`.
fn acp_config(policy: &str) -> String {
    format!(
        r#"
[drivers.agent]
kind = "acp"
command = "node"
args = [{agent}]
permission_policy = "{policy}"
cancel_grace_ms = 1000
startup_timeout_secs = 60
"#,
        agent = quoted(&acp_agent()),
    )
}

/// Waits until the run `run_id` has an outcome and the session left running.
async fn wait_run_end(api: &Api, id: &str, run_id: &Value, within: Duration) -> Value {
    wait_until(&format!("run {run_id} ended"), within, || async {
        let s = api.session(id).await;
        let ended = s["last_run"]["run_id"] == *run_id
            && !s["last_run"]["outcome"].is_null()
            && s["status"] != "running";
        ended.then_some(s)
    })
    .await
}

/// `(role, content)` of each message.
fn roles_and_texts(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(r, c)| (r.to_string(), c.to_string()))
        .collect()
}

/// The data of SSE message events.
fn data(events: &[Sse]) -> Vec<Value> {
    events.iter().map(|e| e.data.clone()).collect()
}

fn approx(actual: &Value, expected: f64) -> bool {
    actual
        .as_f64()
        .is_some_and(|a| (a - expected).abs() < 1e-12)
}

/// An openai profile over HTTP on SQLite: the streamed answer and its reasoning in
/// the transcript, usage priced and summed, the system prompt and history sent to
/// the server, and SSE replay and resume across runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_profile_streams_prices_replays_history_and_resumes_over_sse() {
    let fake = FakeServer::start(vec![
        Reply::stream(vec![
            reasoning("the user greets"),
            content("Hello"),
            content(" there"),
            finish(),
            usage(100, 20),
        ]),
        Reply::stream(vec![content("second answer"), finish(), usage(50, 10)]),
        Reply::stream(vec![content("third answer"), finish(), usage(5, 1)]),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &openai_config(&fake.base_url, 0));
    assert!(dir.path().join("data/sessiond.db").exists(), "sqlite store");
    let api = server.api();
    let id = api
        .create(
            "demo",
            json!({"driver": "fake", "system_prompt": "Answer briefly."}),
        )
        .await;
    assert_eq!(api.session(&id).await["driver"], "fake");

    let first = api.send(&id, "hi").await;
    let s = wait_run_end(&api, &id, &first["run_id"], DEADLINE).await;
    assert_eq!(s["last_run"]["outcome"], "completed", "{s}");
    assert_eq!(s["last_seq"], 3);
    let history = api.history(&id).await;
    assert_eq!(
        roles_and_texts(&history),
        pairs(&[
            ("user", "hi"),
            ("thinking", "the user greets"),
            ("assistant", "Hello there"),
        ])
    );
    assert!(history[1..].iter().all(|m| m["run_id"] == first["run_id"]));
    assert_eq!(s["usage"]["input_tokens"], 100);
    assert_eq!(s["usage"]["output_tokens"], 20);
    // (100 * 2 + 20 * 10) / 1e6 dollars.
    assert!(approx(&s["usage"]["cost_usd"], 0.0004), "{s}");
    assert_eq!(s["last_run"]["usage"]["input_tokens"], 100);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body["model"], "test-model");
    assert_eq!(requests[0].body["stream"], true);
    assert_eq!(
        requests[0].body["messages"],
        json!([
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "hi"},
        ])
    );

    // SSE from after_seq=1: the stored messages, then the next run live.
    let mut events = api.events(&id, Some(1), None).await;
    let replay = events.messages_until(1, 3).await;
    assert_eq!(data(&replay), history[1..3].to_vec());
    let second = api.send(&id, "more").await;
    assert_eq!(second["message_seq"], 4);
    let live = events.messages_until(3, 5).await;
    assert_eq!(
        roles_and_texts(&data(&live)),
        pairs(&[("user", "more"), ("assistant", "second answer")])
    );
    let s = wait_run_end(&api, &id, &second["run_id"], DEADLINE).await;
    assert_eq!(s["usage"]["input_tokens"], 150);
    assert_eq!(s["usage"]["output_tokens"], 30);
    assert!(approx(&s["usage"]["cost_usd"], 0.0006), "{s}");
    // The history is replayed without the reasoning.
    assert_eq!(
        fake.requests()[1].body["messages"],
        json!([
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello there"},
            {"role": "user", "content": "more"},
        ])
    );
    drop(events);

    // Resume in the middle with Last-Event-ID: each message once, then live.
    let mut resumed = api.events(&id, None, Some(2)).await;
    let rest = resumed.messages_until(2, 5).await;
    let third = api.send(&id, "third").await;
    let more = resumed.messages_until(5, 7).await;
    wait_run_end(&api, &id, &third["run_id"], DEADLINE).await;
    let history = api.history(&id).await;
    assert_eq!(history.len(), 7);
    assert_eq!(data(&rest), history[2..5].to_vec());
    assert_eq!(data(&more), history[5..7].to_vec());
    assert_eq!(history[6]["content"], "third answer");
}

/// A server answering 500: the run fails after its retries with the status in the
/// error and a system note, and the session takes the next prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_server_errors_fail_the_run_and_the_session_goes_on() {
    let error = Reply::Error {
        status: 500,
        message: "model overloaded".into(),
        retry_after: None,
    };
    // Three attempts (max_retries = 2) all answered 500; the next request succeeds.
    let fake = FakeServer::start(vec![
        error.clone(),
        error.clone(),
        error,
        Reply::stream(vec![content("recovered"), finish(), usage(3, 2)]),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &openai_config(&fake.base_url, 2));
    let api = server.api();
    let id = api.create("demo", json!({"driver": "fake"})).await;

    let failed = api.send(&id, "hi").await;
    let s = wait_run_end(&api, &id, &failed["run_id"], DEADLINE).await;
    assert_eq!(s["last_run"]["outcome"], "failed", "{s}");
    let error = s["last_run"]["error"].as_str().expect("an error");
    assert!(error.contains("500"), "{error}");
    assert!(error.contains("model overloaded"), "{error}");
    assert_eq!(fake.requests().len(), 3, "one request and two retries");
    let history = api.history(&id).await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[1]["role"], "system");
    assert_eq!(history[1]["run_id"], failed["run_id"]);
    let note = history[1]["content"].as_str().unwrap();
    assert!(
        note.starts_with("run failed: ") && note.contains("500"),
        "{note}"
    );
    assert_eq!(s["usage"]["input_tokens"], 0);

    let next = api.send(&id, "again").await;
    assert_eq!(next["queued"], false);
    let s = wait_run_end(&api, &id, &next["run_id"], DEADLINE).await;
    assert_eq!(s["last_run"]["outcome"], "completed", "{s}");
    assert!(s["last_run"]["error"].is_null());
    let history = api.history(&id).await;
    assert_eq!(history.last().unwrap()["content"], "recovered");
    // The failure note is not replayed; the two prompts merge into one user turn.
    assert_eq!(
        fake.requests()[3].body["messages"],
        json!([{"role": "user", "content": "hi\n\nagain"}])
    );
}

/// An acp profile over HTTP: text, tool calls and results, thinking, and SSE replay
/// and resume across the runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acp_profile_runs_the_agent_and_resumes_over_sse() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &acp_config("deny"));
    let api = server.api();
    let id = api.create("demo", json!({"driver": "agent"})).await;

    let hello = api.send(&id, "hello").await;
    let s = wait_run_end(&api, &id, &hello["run_id"], NODE_DEADLINE).await;
    assert_eq!(s["last_run"]["outcome"], "completed", "{s}");
    assert_eq!(
        roles_and_texts(&api.history(&id).await),
        pairs(&[("user", "hello"), ("assistant", "Hello!")])
    );

    let mut events = api.events(&id, Some(1), None).await;
    let replay = events.messages_until(1, 2).await;
    assert_eq!(replay[0].data["content"], "Hello!");

    let tool = api.send(&id, "tool").await;
    let s = wait_run_end(&api, &id, &tool["run_id"], DEADLINE).await;
    assert_eq!(s["last_run"]["outcome"], "completed", "{s}");
    let end = s["last_seq"].as_u64().unwrap();
    let live = events.messages_until(2, end).await;
    assert_eq!(
        roles_and_texts(&data(&live)),
        pairs(&[
            ("user", "tool"),
            ("tool_call", "Read notes.txt"),
            ("tool_result", "notes content"),
            ("assistant", "read it"),
        ])
    );
    let (call, result) = (&live[1].data, &live[2].data);
    assert_eq!(call["tool_call_id"], "call-1");
    assert_eq!(call["tool_name"], "read");
    assert_eq!(call["tool_input"], json!({"path": "/tmp/notes.txt"}));
    assert_eq!(call["tool_path"], "/tmp/notes.txt");
    assert_eq!(result["tool_call_id"], call["tool_call_id"]);
    drop(events);

    // Resume in the middle of the tool run, then the next run live.
    let mut resumed = api.events(&id, None, Some(3)).await;
    let rest = resumed.messages_until(3, end).await;
    let think = api.send(&id, "think").await;
    let s = wait_run_end(&api, &id, &think["run_id"], DEADLINE).await;
    assert_eq!(s["last_run"]["outcome"], "completed", "{s}");
    let last = s["last_seq"].as_u64().unwrap();
    let more = resumed.messages_until(end, last).await;
    assert_eq!(
        roles_and_texts(&data(&more)),
        pairs(&[
            ("user", "think"),
            ("thinking", "pondering the question"),
            ("assistant", "done thinking"),
        ])
    );
    let history = api.history(&id).await;
    assert_eq!(history.len() as u64, last);
    assert_eq!(data(&rest), history[3..end as usize].to_vec());
    assert_eq!(data(&more), history[end as usize..].to_vec());
}

/// `permission_policy = "ask"`: the pending request is in the transcript, a person
/// answers it over HTTP, and the agent gets the answer; stale, unknown and
/// unsupported answers are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acp_permission_requests_are_answered_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &acp_config("ask"));
    let api = server.api();
    let id = api.create("demo", json!({"driver": "agent"})).await;
    let answer = |request_id: &str| format!("/v1/sessions/{id}/permissions/{request_id}");

    let run = api.send(&id, "permission").await;
    let pending = wait_until("a pending permission request", NODE_DEADLINE, || async {
        api.history(&id).await.into_iter().find(|m| {
            m["role"] == "system"
                && m["tool_name"] == "permission"
                && m["tool_input"]["request_id"].is_string()
        })
    })
    .await;
    assert_eq!(pending["run_id"], run["run_id"]);
    assert_eq!(pending["tool_call_id"], "call-p");
    let content = pending["content"].as_str().unwrap();
    assert!(
        content.starts_with("permission pending for 'Write notes.txt'"),
        "{content}"
    );
    let input = &pending["tool_input"];
    assert_eq!(input["tool_call"]["id"], "call-p");
    let request_id = input["request_id"].as_str().unwrap().to_string();
    let allow = input["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "allow_once")
        .expect("an allow_once option")["option_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The run waits for the answer.
    assert_eq!(api.session(&id).await["status"], "running");

    // An option the agent did not offer is refused; the request still waits.
    api.post(
        &answer(&request_id),
        json!({"outcome": "selected", "option_id": "maybe"}),
    )
    .await
    .assert_error(400, "invalid_request");
    let answered = api
        .post(
            &answer(&request_id),
            json!({"outcome": "selected", "option_id": allow}),
        )
        .await;
    assert_eq!(answered.status, 200, "{:?}", answered.body);
    assert_eq!(answered.body["status"], "answered");
    assert_eq!(answered.body["request_id"], request_id.as_str());

    let s = wait_run_end(&api, &id, &run["run_id"], DEADLINE).await;
    assert_eq!(s["last_run"]["outcome"], "completed", "{s}");
    let history = api.history(&id).await;
    let after: Vec<_> = history
        .iter()
        .skip_while(|m| m["seq"] != pending["seq"])
        .skip(1)
        .cloned()
        .collect();
    assert_eq!(
        roles_and_texts(&after),
        pairs(&[
            (
                "system",
                &format!("permission request {request_id} answered: option `{allow}` selected")
            ),
            ("assistant", &format!("chosen: {allow}")),
        ])
    );

    // Answered already, or never asked: not found. Another session: not found.
    api.post(&answer(&request_id), json!({"outcome": "cancelled"}))
        .await
        .assert_error(404, "not_found");
    api.post(
        &answer("01a1fca6-b0a9-735c-9e7a-bea7febb46e1"),
        json!({"outcome": "cancelled"}),
    )
    .await
    .assert_error(404, "not_found");
    // A driver that asks no permissions: conflict.
    let scripted = api.create("demo", json!({})).await;
    api.post(
        &format!("/v1/sessions/{scripted}/permissions/{request_id}"),
        json!({"outcome": "cancelled"}),
    )
    .await
    .assert_error(409, "conflict");

    // A `cancelled` answer reaches the agent as such.
    let run = api.send(&id, "permission").await;
    let pending = wait_until("a second pending request", DEADLINE, || async {
        api.history(&id)
            .await
            .into_iter()
            .find(|m| m["run_id"] == run["run_id"] && m["tool_input"]["request_id"].is_string())
    })
    .await;
    let request_id = pending["tool_input"]["request_id"].as_str().unwrap();
    let answered = api
        .post(&answer(request_id), json!({"outcome": "cancelled"}))
        .await;
    assert_eq!(answered.status, 200, "{:?}", answered.body);
    let s = wait_run_end(&api, &id, &run["run_id"], DEADLINE).await;
    assert_eq!(s["last_run"]["outcome"], "completed", "{s}");
    let history = api.history(&id).await;
    assert_eq!(history.last().unwrap()["content"], "chosen: cancelled");
}

/// Abort of a running acp turn: `aborted`, the partial output kept, the session
/// leaves running, and the same agent process takes the next prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acp_abort_ends_the_turn_and_the_agent_takes_the_next_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &acp_config("deny"));
    let api = server.api();
    let id = api.create("demo", json!({"driver": "agent"})).await;
    // The agent is started by the first run, so the slow prompt reaches it at once.
    let pid = agent_pid(&api, &id).await;

    let slow = api.send(&id, "slow").await;
    api.wait_status(&id, "running").await;
    // The agent's chunks become one message at the end of the turn, so no output is
    // visible yet; the prompt reached the agent (already running) when the run began.
    let abort = api
        .post(&format!("/v1/sessions/{id}/abort"), json!({}))
        .await;
    assert_eq!(abort.status, 200, "{:?}", abort.body);
    assert_eq!(abort.body["status"], "aborted");
    assert_eq!(abort.body["run_id"], slow["run_id"]);
    let s = wait_run_end(&api, &id, &slow["run_id"], DEADLINE).await;
    assert_eq!(s["status"], "idle");
    assert_eq!(s["last_run"]["outcome"], "aborted");
    // The partial answer is flushed at the end of the cancelled turn.
    let history = api.history(&id).await;
    let partial = history
        .iter()
        .find(|m| m["run_id"] == slow["run_id"] && m["role"] == "assistant")
        .expect("the partial answer");
    assert!(
        partial["content"].as_str().unwrap().starts_with("tick 0"),
        "{partial}"
    );

    let hello = api.send(&id, "hello").await;
    assert_eq!(hello["queued"], false);
    let s = wait_run_end(&api, &id, &hello["run_id"], DEADLINE).await;
    assert_eq!(s["last_run"]["outcome"], "completed", "{s}");
    assert_eq!(api.history(&id).await.last().unwrap()["content"], "Hello!");
    assert_eq!(
        agent_pid(&api, &id).await,
        pid,
        "the agent honoured the cancel and was kept"
    );
}

/// Runs the `pid` prompt; returns what the agent says about itself.
async fn agent_pid(api: &Api, id: &str) -> u64 {
    whoami(api, id).await["pid"].as_u64().expect("a pid")
}

/// Runs the `pid` prompt; returns the agent's JSON answer.
async fn whoami(api: &Api, id: &str) -> Value {
    let run = api.send(id, "pid").await;
    let s = wait_run_end(api, id, &run["run_id"], NODE_DEADLINE).await;
    assert_eq!(s["last_run"]["outcome"], "completed", "{s}");
    let history = api.history(id).await;
    let answer = history.last().unwrap();
    assert_eq!(answer["run_id"], run["run_id"]);
    serde_json::from_str(answer["content"].as_str().unwrap()).expect("the agent's JSON")
}

/// A session's `env`: provider keys refused with the key named, others kept, shown
/// on the session and given to the agent's process with the session's `cwd`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_env_is_validated_shown_and_reaches_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &acp_config("deny"));
    let api = server.api();

    let refused = api
        .post(
            "/v1/projects/demo/sessions",
            json!({"env": {"OPENAI_API_KEY": "x"}}),
        )
        .await;
    refused.assert_error(400, "invalid_request");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("OPENAI_API_KEY"), "{message}");
    api.post(
        "/v1/projects/demo/sessions",
        json!({"driver": "agent", "env": {"anthropic_api_key": "x"}}),
    )
    .await
    .assert_error(400, "invalid_request");

    let id = api
        .create("demo", json!({"env": {"RUST_LOG": "debug"}}))
        .await;
    assert_eq!(api.session(&id).await["env"], json!({"RUST_LOG": "debug"}));

    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().canonicalize().unwrap().display().to_string();
    let id = api
        .create(
            "demo",
            json!({"driver": "agent", "env": {"ACP_TEST_MARK": "from-session"}, "cwd": cwd}),
        )
        .await;
    let s = api.session(&id).await;
    assert_eq!(s["env"], json!({"ACP_TEST_MARK": "from-session"}));
    assert_eq!(s["cwd"], cwd.as_str());
    let me = whoami(&api, &id).await;
    assert_eq!(me["mark"], "from-session");
    assert_eq!(me["cwd"], cwd.as_str());
    assert_eq!(me["sessionCwd"], cwd.as_str());
}

/// The agent's ACP session survives a crash of sessiond: its id is stored with the
/// session, and the agent started after the restart loads it (`session/load`)
/// instead of starting a new conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acp_session_is_loaded_again_after_a_kill_9_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_config(dir.path(), &acp_config("deny"));
    let api = server.api();
    let id = api.create("demo", json!({"driver": "agent"})).await;
    let before = whoami(&api, &id).await;
    assert_eq!(before["loaded"], false, "{before}");
    server.restart();
    let api = server.api();
    let after = whoami(&api, &id).await;
    assert_ne!(after["pid"], before["pid"], "a new agent process");
    assert_eq!(
        after["sessionId"], before["sessionId"],
        "the same ACP session"
    );
    assert_eq!(after["loaded"], true, "loaded with session/load: {after}");
}
