//! The `acp` driver behind the HTTP API, against the Node.js ACP test agent.

use super::*;

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

/// An agent process lives only while its session is on the node: when the node
/// stops (SIGTERM), the session leaves and its agent's process is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acp_agent_process_stops_with_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_config(dir.path(), &acp_config("deny"));
    let api = server.api();
    let id = api.create("demo", json!({"driver": "agent"})).await;
    let pid = agent_pid(&api, &id).await;
    let proc_dir = format!("/proc/{pid}");
    assert!(Path::new(&proc_dir).exists(), "the agent runs");
    assert!(server.sigterm_and_wait().success());
    wait_until("the agent process is gone", NODE_DEADLINE, || async {
        // A zombie keeps its /proc entry until reaped by init; count it as gone.
        let status = std::fs::read_to_string(format!("{proc_dir}/status")).unwrap_or_default();
        (status.is_empty() || status.contains("State:\tZ")).then_some(())
    })
    .await;
}

/// Waits until process `pid` is gone (a zombie waiting for init counts as gone).
async fn wait_process_gone(pid: u64) {
    let proc_dir = format!("/proc/{pid}");
    wait_until("the agent process is gone", NODE_DEADLINE, || async {
        let status = std::fs::read_to_string(format!("{proc_dir}/status")).unwrap_or_default();
        (status.is_empty() || status.contains("State:\tZ")).then_some(())
    })
    .await;
}

/// Passivation stops the agent's process with the idle session's actor; the next
/// prompt starts a new one and the conversation goes on (session/load).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passivation_stops_the_agent_process_and_the_next_prompt_starts_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[session]\nidle_after_ms = 500\n{}", acp_config("deny"));
    let server = Server::start_with_config(dir.path(), &config);
    let api = server.api();
    let id = api.create("demo", json!({"driver": "agent"})).await;
    let pid = agent_pid(&api, &id).await;
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the agent runs"
    );
    wait_process_gone(pid).await;
    let node = api.fetch("/v1/node").await;
    assert_eq!(node["resident_sessions"], 0, "the session was passivated");
    let again = agent_pid(&api, &id).await;
    assert_ne!(again, pid, "a new agent process");
}

/// Deleting a session stops its agent's process at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_stops_the_agent_process() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &acp_config("deny"));
    let api = server.api();
    let id = api.create("demo", json!({"driver": "agent"})).await;
    let pid = agent_pid(&api, &id).await;
    let del = api
        .raw(reqwest::Method::DELETE, &format!("/v1/sessions/{id}"), None)
        .await;
    assert_eq!(del.status, 204, "{:?}", del.body);
    wait_process_gone(pid).await;
}
