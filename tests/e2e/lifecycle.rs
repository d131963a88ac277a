//! Create, send, history, usage and restart after kill -9, on sqlite and redis.

use serde_json::json;

use crate::harness::*;

async fn create_send_restart(store: Store) {
    let mut server = Server::start(&store);
    let api = server.api();
    let id = api
        .create(
            "demo",
            json!({"key": "main", "label": "first", "driver_options": {"input_tokens": 3, "output_tokens": 4, "cost_usd": 0.25}}),
        )
        .await;
    let created = api.session(&id).await;
    assert_eq!(created["status"], "idle");
    assert_eq!(created["key"], "main");
    assert_eq!(created["driver"], "scripted");
    assert_eq!(created["last_seq"], 0);
    for field in ["created_at", "updated_at", "usage"] {
        assert!(!created[field].is_null(), "session has {field}");
    }

    let receipt = api.send(&id, "hi").await;
    assert_eq!(receipt["message_seq"], 1);
    assert_eq!(receipt["queued"], false);
    let settled = api.wait_settled(&id, 2).await;
    assert_eq!(settled["status"], "idle");
    let history = api.history(&id).await;
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[0]["seq"].as_u64(),
            history[0]["role"].as_str(),
            history[0]["content"].as_str()
        ),
        (Some(1), Some("user"), Some("hi"))
    );
    assert_eq!(
        (
            history[1]["seq"].as_u64(),
            history[1]["role"].as_str(),
            history[1]["content"].as_str()
        ),
        (Some(2), Some("assistant"), Some("echo: hi"))
    );
    assert_eq!(history[1]["run_id"], receipt["run_id"]);
    assert_eq!(settled["last_run"]["outcome"], "completed");

    // Usage is reported per run and summed on the session.
    api.send(&id, "again").await;
    let settled = api.wait_settled(&id, 4).await;
    assert_eq!(settled["usage"]["input_tokens"], 6);
    assert_eq!(settled["usage"]["output_tokens"], 8);
    assert_eq!(settled["usage"]["cost_usd"], 0.5);
    assert_eq!(settled["last_run"]["usage"]["input_tokens"], 3);

    // kill -9 and restart on the same store: nothing changed, seq continues.
    let before_history = api.history(&id).await;
    let before = api.session(&id).await;
    server.restart();
    let api = server.api();
    assert_eq!(api.history(&id).await, before_history);
    assert_eq!(api.session(&id).await, before);
    let receipt = api.send(&id, "after restart").await;
    assert_eq!(receipt["message_seq"], 5);
    api.wait_settled(&id, 6).await;
    let history = api.history(&id).await;
    assert_eq!(history[5]["content"], "echo: after restart");
    let seqs: Vec<u64> = history.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<_>>());
}

#[tokio::test]
async fn create_send_history_and_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    create_send_restart(Store::Sqlite(dir.path().join("data"))).await;
}

#[tokio::test]
async fn create_send_history_and_restart_on_redis() {
    let redis = RedisServer::start();
    create_send_restart(Store::Redis(redis.url())).await;
}

/// A run cut by kill -9 is marked interrupted on restart, the prompt queued behind
/// it (durable before the crash) runs, and nothing acknowledged is lost.
#[tokio::test]
async fn a_run_lost_to_kill_9_is_interrupted_and_nothing_acknowledged_is_lost() {
    for (store, _redis, _dir) in stores() {
        let mut server = Server::start(&store);
        let api = server.api();
        let id = api
            .create(
                "demo",
                json!({"driver_options": {"chunks": 20, "delay_ms": 100}}),
            )
            .await;
        let long = api.send(&id, "long").await;
        let queued = api.send(&id, "queued behind").await;
        assert_eq!(queued["queued"], true);
        // Some output is committed, the run still going.
        wait_until("some output", DEADLINE, || async {
            (api.history(&id).await.len() >= 5).then_some(())
        })
        .await;
        server.restart();
        let api = server.api();
        // The next request reactivates the session: the lost run is closed and
        // the queued prompt runs, then the new one.
        let next = api.send(&id, "next").await;
        let s = wait_until("all prompts ran", DEADLINE, || async {
            let s = api.session(&id).await;
            (s["status"] == "idle" && s["last_run"]["run_id"] == next["run_id"]).then_some(s)
        })
        .await;
        assert_eq!(s["last_run"]["outcome"], "completed");
        let history = api.history(&id).await;
        let seqs: Vec<u64> = history.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "dense seqs"
        );
        let users: Vec<&str> = history
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        assert_eq!(users, vec!["long", "queued behind", "next"]);
        let of_run = |run: &serde_json::Value| {
            history
                .iter()
                .filter(|m| m["role"] == "assistant" && m["run_id"] == *run)
                .count()
        };
        assert!(of_run(&long["run_id"]) < 20, "the lost run did not finish");
        assert_eq!(
            of_run(&queued["run_id"]),
            20,
            "the queued prompt ran in full"
        );
        assert_eq!(of_run(&next["run_id"]), 20);
        let note = history
            .iter()
            .find(|m| m["role"] == "system")
            .expect("a system note");
        assert_eq!(note["run_id"], long["run_id"]);
        assert!(note["content"].as_str().unwrap().contains("interrupted"));
    }
}

/// README command 1: `sessiond serve` with no arguments serves on 127.0.0.1:7411
/// over ./sessiond-data, no Redis needed.
#[tokio::test]
async fn serve_with_defaults_uses_sqlite_on_port_7411() {
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::start_with(vec![], Some(cwd.path()));
    assert_eq!(server.url, "http://127.0.0.1:7411");
    let api = server.api();
    let health = api.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body["store"], "sqlite");
    assert_eq!(api.get("/readyz").await.status, 200);
    let id = api.create("demo", json!({"prompt": "hello"})).await;
    api.wait_settled(&id, 2).await;
    assert!(cwd.path().join("sessiond-data/sessiond.db").exists());
}

/// SIGTERM releases the leases: another node (another id) on the same Redis serves
/// the session on its first request instead of waiting for the lease to expire.
#[tokio::test]
async fn sigterm_hands_sessions_over_at_once() {
    let redis = RedisServer::start();
    let node = |id: &str| {
        vec![
            "--redis".to_string(),
            redis.url(),
            "--node-id".to_string(),
            id.to_string(),
        ]
    };
    let mut a = Server::start_with(node("node-a"), None);
    let api = a.api();
    let id = api.create("demo", json!({"prompt": "on a"})).await;
    api.wait_settled(&id, 2).await;
    assert!(a.sigterm_and_wait().success());
    let b = Server::start_with(node("node-b"), None);
    let receipt = b
        .api()
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({"prompt": "on b"}),
        )
        .await;
    assert_eq!(receipt.status, 202, "served at once: {:?}", receipt.body);
    b.api().wait_settled(&id, 4).await;
}

/// SIGTERM stops the server cleanly; a new one on the same data dir serves the
/// session at once.
#[tokio::test]
async fn sigterm_stops_cleanly_and_a_restart_serves_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Sqlite(dir.path().join("data"));
    let mut server = Server::start(&store);
    let api = server.api();
    let id = api.create("demo", json!({"prompt": "before"})).await;
    api.wait_settled(&id, 2).await;
    // An open event stream must not hold the stop up.
    let mut events = api.events(&id, Some(0), None).await;
    events.messages_until(0, 2).await;
    let status = server.sigterm_and_wait();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let server = Server::start(&store);
    let api = server.api();
    assert_eq!(api.send(&id, "after").await["message_seq"], 3);
    api.wait_settled(&id, 4).await;
    assert_eq!(api.history(&id).await.len(), 4);
}
