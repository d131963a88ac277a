//! The OpenAI-compatible driver against a fake server speaking real HTTP and SSE.

#[path = "support/openai_server.rs"]
mod openai_server;

use std::time::Duration;

use openai_server::{FakeServer, Reply, StreamEnd, content, finish, reasoning, usage};
use serde_json::json;
use sessiond_actors::{AgentDriver, DriverEvent, DriverEvents, DriverOutcome, RunRequest};
use sessiond_drivers::openai::{ModelPrice, OpenAiDriver, OpenAiProfile};
use sessiond_store::{Message, Role, RunId, SessionId, Usage};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Generous: the suite must pass on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(20);

const KEY_VAR: &str = "SESSIOND_TEST_OPENAI_KEY";

fn profile(server: &FakeServer) -> OpenAiProfile {
    let mut p = OpenAiProfile::new(&server.base_url);
    p.model = Some("test-model".into());
    p.retry_base_ms = 10;
    p.request_timeout_secs = 30;
    p
}

fn msg(role: Role, content: &str) -> Message {
    sessiond_store::testing::conformance::msg(0, role, content)
}

fn request(prompt: &str) -> RunRequest {
    RunRequest {
        session_id: SessionId::generate(),
        run_id: RunId::generate(),
        history: vec![msg(Role::User, prompt)],
        prompt: prompt.into(),
        model: None,
        system_prompt: None,
        options: Default::default(),
        config: Default::default(),
        driver_state: Default::default(),
    }
}

/// Runs the driver to its end; returns the outcome and every event it sent.
async fn run(profile: OpenAiProfile, request: RunRequest) -> (DriverOutcome, Vec<DriverEvent>) {
    let driver = OpenAiDriver::new(profile).unwrap();
    let (tx, mut rx) = mpsc::channel(1000);
    let run = driver.run(request, DriverEvents::new(tx), CancellationToken::new());
    let outcome = timeout(DEADLINE, run).await.expect("run timed out");
    let mut events = vec![];
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (outcome, events)
}

/// The transcript messages among `events`.
fn messages(events: &[DriverEvent]) -> Vec<(Role, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            DriverEvent::Message { role, content, .. } => Some((*role, content.clone())),
            _ => None,
        })
        .collect()
}

fn usages(events: &[DriverEvent]) -> Vec<Usage> {
    events
        .iter()
        .filter_map(|e| match e {
            DriverEvent::Usage(u) => Some(*u),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn streamed_text_becomes_one_message_with_priced_usage() {
    let server = FakeServer::start(vec![Reply::stream(vec![
        content("Six times "),
        content("seven is "),
        content("42."),
        finish(),
        usage(1000, 500),
    ])])
    .await;
    let mut p = profile(&server);
    p.prices.insert(
        "test-model".into(),
        ModelPrice {
            input_per_mtok: 2.0,
            output_per_mtok: 6.0,
        },
    );
    let mut req = request("what is 6*7?");
    req.system_prompt = Some("be brief".into());
    req.history = vec![
        msg(Role::User, "hello"),
        msg(Role::Thinking, "a greeting"),
        msg(Role::Assistant, "hi there"),
        msg(Role::User, "what is 6*7?"),
    ];
    req.options = json!({"temperature": 0.5}).as_object().cloned().unwrap();
    let (outcome, events) = run(p, req).await;

    assert_eq!(outcome, DriverOutcome::Completed);
    assert_eq!(
        messages(&events),
        vec![(Role::Assistant, "Six times seven is 42.".to_string())]
    );
    let u = usages(&events);
    assert_eq!(u.len(), 1);
    assert_eq!(
        (u[0].input_tokens, u[0].output_tokens, u[0].context_tokens),
        (1000, 500, 1500)
    );
    assert!((u[0].cost_usd - 0.005).abs() < 1e-12, "{}", u[0].cost_usd);
    assert!(events.contains(&DriverEvent::Activity));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi there"},
            {"role": "user", "content": "what is 6*7?"},
        ])
    );
    assert!(requests[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn reasoning_comes_as_a_thinking_message_before_the_answer() {
    let server = FakeServer::start(vec![Reply::stream(vec![
        reasoning("The user wants "),
        reasoning("a number."),
        content("4"),
        content("2"),
        finish(),
    ])])
    .await;
    let (outcome, events) = run(profile(&server), request("a number")).await;
    assert_eq!(outcome, DriverOutcome::Completed);
    assert_eq!(
        messages(&events),
        vec![
            (Role::Thinking, "The user wants a number.".to_string()),
            (Role::Assistant, "42".to_string()),
        ]
    );
    assert!(usages(&events).is_empty());
}

#[tokio::test]
async fn throttled_requests_are_retried_after_retry_after() {
    let server = FakeServer::start(vec![
        Reply::Error {
            status: 429,
            message: "rate limit reached".into(),
            retry_after: Some(1),
        },
        Reply::stream(vec![content("ok"), finish()]),
    ])
    .await;
    let mut p = profile(&server);
    // A backoff of this size would blow the deadline: only Retry-After fits.
    p.retry_base_ms = 60_000;
    let (outcome, events) = run(p, request("hi")).await;
    assert_eq!(outcome, DriverOutcome::Completed);
    assert_eq!(messages(&events), vec![(Role::Assistant, "ok".to_string())]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
}

#[tokio::test]
async fn server_errors_fail_the_run_after_max_retries() {
    let server = FakeServer::start(vec![Reply::Error {
        status: 500,
        message: "the model crashed".into(),
        retry_after: None,
    }])
    .await;
    let mut p = profile(&server);
    p.max_retries = 2;
    let (outcome, events) = run(p, request("hi")).await;
    let DriverOutcome::Failed(error) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(error.contains("500"), "{error}");
    assert!(error.contains("the model crashed"), "{error}");
    assert!(error.contains("3 attempts"), "{error}");
    assert_eq!(server.requests().len(), 3);
    assert!(messages(&events).is_empty());
}

#[tokio::test]
async fn client_errors_fail_at_once_with_the_server_message() {
    let server = FakeServer::start(vec![Reply::Error {
        status: 404,
        message: "model 'nope' not found".into(),
        retry_after: None,
    }])
    .await;
    let (outcome, _) = run(profile(&server), request("hi")).await;
    let DriverOutcome::Failed(error) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(
        error.contains("404") && error.contains("model 'nope' not found"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_cut_stream_fails_and_keeps_the_partial_answer() {
    for end in [StreamEnd::Cut, StreamEnd::Eof] {
        let server = FakeServer::start(vec![Reply::Stream {
            events: vec![content("partial "), content("answer")],
            pace: Duration::from_millis(20),
            end,
        }])
        .await;
        let (outcome, events) = run(profile(&server), request("hi")).await;
        let DriverOutcome::Failed(error) = outcome else {
            panic!("{end:?}: expected a failure, got {outcome:?}");
        };
        assert!(error.starts_with("stream interrupted"), "{end:?}: {error}");
        assert_eq!(
            messages(&events),
            vec![(
                Role::Assistant,
                "partial answer\n[stream interrupted]".to_string()
            )],
            "{end:?}"
        );
        assert_eq!(server.requests().len(), 1, "{end:?}: no retry mid-stream");
    }
}

#[tokio::test]
async fn cancelling_drops_the_stream_at_once() {
    let mut server = FakeServer::start(vec![Reply::Stream {
        events: (0..100).map(|_| content("tok ")).collect(),
        pace: Duration::from_millis(200),
        end: StreamEnd::Done,
    }])
    .await;
    let driver = OpenAiDriver::new(profile(&server)).unwrap();
    let (tx, mut rx) = mpsc::channel(1000);
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            driver
                .run(request("go"), DriverEvents::new(tx), cancel)
                .await
        }
    });
    // The driver reports activity once the first chunk is in.
    let first = timeout(DEADLINE, rx.recv()).await.expect("no first chunk");
    assert_eq!(first, Some(DriverEvent::Activity));

    cancel.cancel();
    let outcome = timeout(Duration::from_secs(1), run)
        .await
        .expect("the run did not end within 1 s of cancel")
        .unwrap();
    assert_eq!(outcome, DriverOutcome::Cancelled);
    assert!(
        server.stream_dropped(DEADLINE).await,
        "the server never saw the client go away"
    );
    let mut events = vec![];
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let msgs = messages(&events);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].0, Role::Assistant);
    assert!(
        msgs[0].1.starts_with("tok ") && msgs[0].1.ends_with("\n[aborted]"),
        "{msgs:?}"
    );
}

#[tokio::test]
async fn a_missing_api_key_fails_the_run_naming_the_variable() {
    let server = FakeServer::start(vec![Reply::stream(vec![content("never")])]).await;
    let mut p = profile(&server);
    p.api_key_env = Some("SESSIOND_TEST_OPENAI_KEY_NEVER_SET".into());
    let (outcome, _) = run(p, request("hi")).await;
    assert_eq!(
        outcome,
        DriverOutcome::Failed(
            "api key env var SESSIOND_TEST_OPENAI_KEY_NEVER_SET is not set".into()
        )
    );
    assert!(server.requests().is_empty());
}

/// Setting a variable in this process would need `unsafe` (forbidden here) and race
/// the other tests, so the check runs in a child process of this very test binary.
#[tokio::test]
async fn the_api_key_is_read_from_the_environment() {
    let out = timeout(
        DEADLINE,
        tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "api_key_child", "--ignored", "--nocapture"])
            .env(KEY_VAR, "sk-test-123")
            .output(),
    )
    .await
    .expect("child timed out")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("api key checked"), "{stdout}\n{stderr}");
}

#[tokio::test]
#[ignore = "run by the_api_key_is_read_from_the_environment with the key set"]
async fn api_key_child() {
    let Ok(key) = std::env::var(KEY_VAR) else {
        eprintln!("{KEY_VAR} is not set: nothing to check");
        return;
    };
    let server = FakeServer::start(vec![
        Reply::stream(vec![content("ok"), finish()]),
        Reply::Error {
            status: 401,
            message: format!("Incorrect API key provided: {key}"),
            retry_after: None,
        },
    ])
    .await;
    let mut p = profile(&server);
    p.api_key_env = Some(KEY_VAR.into());
    let (outcome, _) = run(p.clone(), request("hi")).await;
    assert_eq!(outcome, DriverOutcome::Completed);
    let auth = server.requests()[0].headers["authorization"].clone();
    assert_eq!(auth.to_str().unwrap(), format!("Bearer {key}"));

    // A server echoing the key does not get it into the run's error.
    let (outcome, _) = run(p, request("hi")).await;
    let DriverOutcome::Failed(error) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(error.contains("401") && !error.contains(&key), "{error}");
    println!("api key checked");
}

#[tokio::test]
async fn options_are_validated_and_a_model_is_required() {
    let server = FakeServer::start(vec![Reply::stream(vec![content("never")])]).await;
    let driver = OpenAiDriver::new(OpenAiProfile::new(&server.base_url)).unwrap();
    let bad = json!({"temprature": 1}).as_object().cloned().unwrap();
    let error = driver.validate_options(&bad).unwrap_err();
    assert!(error.contains("temprature"), "{error}");
    let good = json!({"model": "m", "max_tokens": 10})
        .as_object()
        .cloned()
        .unwrap();
    assert_eq!(driver.validate_options(&good), Ok(()));

    let (outcome, _) = run(OpenAiProfile::new(&server.base_url), request("hi")).await;
    let DriverOutcome::Failed(error) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(error.contains("no model"), "{error}");
    assert!(server.requests().is_empty());
}
