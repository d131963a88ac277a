//! The `openai` driver behind the HTTP API, against the fake OpenAI-compatible server.

use super::*;

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
