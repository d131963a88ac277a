//! The ACP driver against a real agent process: the Node.js test agent in
//! `tests/fixtures/acp-agent` (run `npm ci` there first), whose behaviour the prompt
//! text picks (see its header).

#[path = "acp_driver/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use harness::{
    Running, alive, driver_with, messages, pending_permission, pid, profile, run, run_with, texts,
    wait_until, whoami,
};
use sessiond_actors::{AgentDriver, DriverEvent, DriverOutcome};
use sessiond_drivers::acp::{
    AcpDriver, AcpProfile, InheritEnv, PermissionAnswer, PermissionPolicy,
};
use sessiond_store::{Role, SessionConfig, SessionId};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chunks_become_one_message() {
    let driver = driver_with(|_| {});
    let (outcome, events) = run(&driver, SessionId::generate(), "hello").await;
    assert_eq!(outcome, DriverOutcome::Completed);
    assert_eq!(messages(&events).len(), 1, "{events:?}");
    assert_eq!(texts(&events, Role::Assistant), ["Hello!"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thoughts_become_thinking() {
    let driver = driver_with(|_| {});
    let (outcome, events) = run(&driver, SessionId::generate(), "think").await;
    assert_eq!(outcome, DriverOutcome::Completed);
    let roles: Vec<Role> = messages(&events).iter().map(|m| m.0).collect();
    assert_eq!(roles, [Role::Thinking, Role::Assistant]);
    assert_eq!(texts(&events, Role::Thinking), ["pondering the question"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_and_results() {
    let driver = driver_with(|_| {});
    let session = SessionId::generate();
    let (outcome, events) = run(&driver, session, "tool").await;
    assert_eq!(outcome, DriverOutcome::Completed);
    let msgs = messages(&events);
    let roles: Vec<Role> = msgs.iter().map(|m| m.0).collect();
    assert_eq!(
        roles,
        [Role::ToolCall, Role::ToolResult, Role::Assistant],
        "{msgs:?}"
    );
    let (_, title, call) = &msgs[0];
    let call = call.as_ref().expect("tool info");
    assert_eq!(title, "Read notes.txt");
    assert_eq!(call.call_id.as_deref(), Some("call-1"));
    assert_eq!(call.name.as_deref(), Some("read"));
    assert_eq!(
        call.input,
        Some(serde_json::json!({"path": "/tmp/notes.txt"}))
    );
    assert_eq!(call.path.as_deref(), Some("/tmp/notes.txt"));
    let (_, result, info) = &msgs[1];
    let info = info.as_ref().expect("tool info");
    assert_eq!(result, "notes content");
    assert_eq!(info.call_id, call.call_id);
    assert!(!info.is_error);

    let (_, events) = run(&driver, session, "tool-fail").await;
    let msgs = messages(&events);
    assert_eq!(msgs[1].0, Role::ToolResult);
    assert_eq!(msgs[1].1, "no such file");
    assert!(msgs[1].2.as_ref().is_some_and(|t| t.is_error));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_become_system_messages() {
    let driver = driver_with(|_| {});
    let (outcome, events) = run(&driver, SessionId::generate(), "plan").await;
    assert_eq!(outcome, DriverOutcome::Completed);
    let plans = texts(&events, Role::System);
    assert_eq!(
        plans,
        ["plan:\n- [x] look around (high)\n- [~] change things\n- [ ] check the result (low)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_policies_allow_and_deny() {
    for (policy, chosen) in [
        (PermissionPolicy::Allow, "allow"),
        (PermissionPolicy::Deny, "reject"),
    ] {
        let driver = driver_with(|p| p.permission_policy = policy);
        let (outcome, events) = run(&driver, SessionId::generate(), "permission").await;
        assert_eq!(outcome, DriverOutcome::Completed);
        assert_eq!(
            texts(&events, Role::Assistant),
            [format!("chosen: {chosen}")]
        );
        let notes = texts(&events, Role::System);
        assert_eq!(notes.len(), 1, "{events:?}");
        assert!(
            notes[0].contains(policy.as_str()) && notes[0].contains(chosen),
            "{notes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_ask_waits_for_an_answer() {
    let driver = driver_with(|p| p.permission_policy = PermissionPolicy::Ask);
    let session = SessionId::generate();
    let mut running = Running::start(&driver, session, "permission", SessionConfig::default());
    let (request_id, input) = pending_permission(&mut running).await;
    assert_eq!(input["tool_call"]["title"], "Write notes.txt");
    assert_eq!(input["options"][0]["option_id"], "allow");

    running
        .wait_for("activity while the request waits", |e| {
            matches!(e, DriverEvent::Activity)
        })
        .await;

    let other = SessionId::generate();
    let allow = PermissionAnswer::Selected {
        option_id: "allow".into(),
    };
    assert!(
        driver
            .answer_permission(other, &request_id, allow.clone())
            .is_err()
    );
    let maybe = PermissionAnswer::Selected {
        option_id: "maybe".into(),
    };
    assert!(
        driver
            .answer_permission(session, &request_id, maybe)
            .is_err()
    );
    driver
        .answer_permission(session, &request_id, allow.clone())
        .expect("answered");
    let (outcome, events) = running.finish().await;
    assert_eq!(outcome, DriverOutcome::Completed);
    assert_eq!(texts(&events, Role::Assistant), ["chosen: allow"]);
    assert!(
        driver
            .answer_permission(session, &request_id, allow)
            .is_err(),
        "answered twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_answers_a_waiting_permission_request() {
    let driver = driver_with(|p| p.permission_policy = PermissionPolicy::Ask);
    let session = SessionId::generate();
    let mut running = Running::start(&driver, session, "permission", SessionConfig::default());
    let (request_id, _) = pending_permission(&mut running).await;
    running.cancel.cancel();
    let (outcome, _) = running.finish().await;
    assert_eq!(outcome, DriverOutcome::Cancelled);
    let late = driver.answer_permission(session, &request_id, PermissionAnswer::Cancelled);
    assert!(late.is_err(), "the request is gone with its run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_turn_and_keeps_the_agent() {
    let driver = driver_with(|_| {});
    let session = SessionId::generate();
    let before = pid(&driver, session).await;
    let mut running = Running::start(&driver, session, "slow", SessionConfig::default());
    running.wait_for("the agent streaming", |_| true).await;
    running.cancel.cancel();
    let cancelled_at = Instant::now();
    let (outcome, events) = running.finish().await;
    assert_eq!(outcome, DriverOutcome::Cancelled);
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "took {:?}",
        cancelled_at.elapsed()
    );
    // What the agent said before the cancel is kept.
    let said = texts(&events, Role::Assistant).concat();
    assert!(said.starts_with("tick 0 "), "{events:?}");
    assert_eq!(
        pid(&driver, session).await,
        before,
        "the same process serves the next run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_ignores_cancel_is_killed_after_the_grace() {
    let driver = driver_with(|p| p.cancel_grace_ms = 500);
    let session = SessionId::generate();
    let before = pid(&driver, session).await;
    let mut running = Running::start(&driver, session, "ignore-cancel", SessionConfig::default());
    running.wait_for("the agent streaming", |_| true).await;
    running.cancel.cancel();
    let (outcome, _) = running.finish().await;
    assert_eq!(outcome, DriverOutcome::Cancelled);
    wait_until("the agent process is gone", || !alive(before)).await;
    let after = pid(&driver, session).await;
    assert_ne!(after, before, "a new process serves the next run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_fails_the_run_and_the_next_run_loads_the_session() {
    let driver = driver_with(|_| {});
    let session = SessionId::generate();
    let before = whoami(&driver, session, SessionConfig::default()).await;
    let (outcome, events) = run(&driver, session, "crash").await;
    let DriverOutcome::Failed(error) = outcome else {
        panic!("not failed: {outcome:?}")
    };
    assert!(
        error.starts_with("agent process exited") && error.contains('3'),
        "{error}"
    );
    assert_eq!(texts(&events, Role::Assistant), ["about to crash"]);

    let (outcome, events) = run_with(&driver, session, "pid", SessionConfig::default()).await;
    assert_eq!(outcome, DriverOutcome::Completed);
    let texts = texts(&events, Role::Assistant);
    assert_eq!(
        texts.len(),
        1,
        "replayed history is not written again: {events:?}"
    );
    let after: serde_json::Value = serde_json::from_str(&texts[0]).unwrap();
    assert_ne!(after["pid"], before["pid"]);
    assert_eq!(after["sessionId"], before["sessionId"], "session/load");
    assert_eq!(after["loaded"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_load_support_a_restart_gets_a_new_acp_session() {
    let driver = driver_with(|p| {
        p.env.insert("ACP_TEST_NO_LOAD".into(), "1".into());
    });
    let session = SessionId::generate();
    let before = whoami(&driver, session, SessionConfig::default()).await;
    let (outcome, _) = run(&driver, session, "crash").await;
    assert!(matches!(outcome, DriverOutcome::Failed(_)));
    let after = whoami(&driver, session, SessionConfig::default()).await;
    assert_ne!(after["sessionId"], before["sessionId"]);
    assert_eq!(after["loaded"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_session_kills_the_agent() {
    let driver = driver_with(|_| {});
    let session = SessionId::generate();
    let agent = pid(&driver, session).await;
    assert!(alive(agent));
    driver.release_session(session);
    wait_until("the agent process is gone", || !alive(agent)).await;
    // The session can come back: a new process.
    assert_ne!(pid(&driver, session).await, agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_driver_kills_every_agent() {
    let driver = driver_with(|_| {});
    let a = pid(&driver, SessionId::generate()).await;
    let b = pid(&driver, SessionId::generate()).await;
    assert_ne!(a, b, "two sessions, two processes");
    drop(driver);
    wait_until("both agents are gone", || !alive(a) && !alive(b)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cwd_and_env_come_from_the_session_over_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let driver = driver_with(|p| {
        p.env.insert("ACP_TEST_MARK".into(), "profile".into());
    });
    let default = whoami(&driver, SessionId::generate(), SessionConfig::default()).await;
    assert_eq!(default["mark"], "profile");
    assert_eq!(
        default["cwd"],
        std::env::current_dir().unwrap().display().to_string()
    );

    let config = SessionConfig {
        cwd: Some(dir.path().display().to_string()),
        env: [("ACP_TEST_MARK".to_owned(), "session".to_owned())].into(),
        ..SessionConfig::default()
    };
    let me = whoami(&driver, SessionId::generate(), config).await;
    assert_eq!(me["mark"], "session");
    let cwd = dir.path().canonicalize().unwrap().display().to_string();
    assert_eq!(me["cwd"], cwd);
    assert_eq!(me["sessionCwd"], dir.path().display().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inherit_env_narrows_what_the_agent_gets_from_the_node() {
    // Cargo sets CARGO_MANIFEST_DIR in this test process: the node's environment.
    let node_var = std::env::var("CARGO_MANIFEST_DIR").expect("run under cargo");
    let session = SessionId::generate;

    let whole = whoami(&driver_with(|_| {}), session(), SessionConfig::default()).await;
    assert_eq!(whole["manifestDir"], node_var.as_str());

    // Nothing from the node: the program is still found in the node's PATH, and
    // the profile's and the session's variables are all the agent has.
    let none = driver_with(|p| {
        p.inherit_env = InheritEnv::Whole(false);
        p.env.insert("ACP_TEST_MARK".into(), "profile".into());
    });
    let me = whoami(&none, session(), SessionConfig::default()).await;
    assert_eq!(me["manifestDir"], serde_json::Value::Null);
    assert_eq!(me["path"], serde_json::Value::Null);
    assert_eq!(me["mark"], "profile");

    let listed = driver_with(|p| {
        p.inherit_env =
            InheritEnv::Only(vec!["CARGO_MANIFEST_DIR".into(), "NOT_SET_ANYWHERE".into()]);
    });
    let me = whoami(&listed, session(), SessionConfig::default()).await;
    assert_eq!(me["manifestDir"], node_var.as_str());
    assert_eq!(me["path"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_failures_fail_the_run() {
    let failure = |profile: AcpProfile| async move {
        let driver = Arc::new(AcpDriver::new(profile));
        match run(&driver, SessionId::generate(), "hello").await.0 {
            DriverOutcome::Failed(error) => error,
            other => panic!("not failed: {other:?}"),
        }
    };
    let error = failure(AcpProfile::new("/nonexistent/acp-agent")).await;
    assert!(error.contains("cannot start agent"), "{error}");

    let mut exits = AcpProfile::new("node");
    exits.args = vec!["-e".into(), "process.exit(7)".into()];
    let error = failure(exits).await;
    assert!(
        error.contains("agent process exited") && error.contains('7'),
        "{error}"
    );

    let mut mute = AcpProfile::new("sleep");
    mute.args = vec!["30".into()];
    mute.startup_timeout_secs = 1;
    let error = failure(mute).await;
    assert_eq!(error, "agent did not start within 1s");

    let driver = AcpDriver::new(profile());
    assert!(driver.validate_options(&serde_json::Map::new()).is_ok());
    let options = serde_json::json!({"reply": "x"});
    assert!(
        driver
            .validate_options(options.as_object().unwrap())
            .is_err()
    );
}
