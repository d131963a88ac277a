//! Nodes that come back: a node restarted with its old id takes its sessions back
//! at once and lists them as held again; a session actor restarted by its
//! supervisor after a crash is served to the other nodes.

use serde_json::json;

use crate::harness::*;
use crate::many_nodes::{CONFIG, node_with, owner, three};

/// A node restarted (same id) faster than its leases run out takes its sessions
/// back at once: the run cut by the crash is marked interrupted without waiting for
/// a request or for the (here 30 s) lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_recovers_its_own_sessions_at_once() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("a.toml");
    std::fs::write(&config, "[session]\nlease_ttl_ms = 30000\n").unwrap();
    let args = vec![
        "--redis".into(),
        redis.url(),
        "--node-id".into(),
        "a".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    let mut a = Server::start_with(args, None);
    let created = a
        .api()
        .ok(
            "/v1/projects/demo/sessions",
            json!({"prompt": "cut", "driver_options": {"chunks": 50, "delay_ms": 100}}),
            201,
        )
        .await;
    let id = created["session"]["id"].as_str().unwrap().to_string();
    a.api().wait_status(&id, "running").await;
    a.restart();
    let s = wait_until("the cut run marked interrupted", DEADLINE, || async {
        // A read from the store: it does not activate the session.
        let s = a.api().session(&id).await;
        (s["last_run"]["outcome"] == "interrupted").then_some(s)
    })
    .await;
    assert_eq!(s["status"], "interrupted");
}

/// A session actor that crashed is restarted by its supervisor on the same node;
/// commands forwarded by the other nodes reach the restarted actor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_restarted_after_a_crash_is_served_to_the_other_nodes() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let nodes = three(&redis.url(), dir.path());
    let (a, b) = (nodes[0].api(), nodes[1].api());
    let created = a
        .ok(
            "/v1/projects/demo/sessions",
            json!({"prompt": "boom", "driver_options": {"crash_actor": true, "reply": "ok"}}),
            201,
        )
        .await;
    let id = created["session"]["id"].as_str().unwrap().to_string();
    let run = created["run"]["run_id"].clone();
    // The actor panics on the run's first event; the restarted one closes the run.
    wait_until("the crashed run marked interrupted", DEADLINE, || async {
        let s = a.session(&id).await;
        (s["last_run"]["run_id"] == run && s["last_run"]["outcome"] == "interrupted").then_some(())
    })
    .await;
    assert_eq!(owner(&nodes, &id).await, 0, "restarted on A");
    // B forwards to A, where the restarted actor answers.
    let patched = b
        .raw(
            reqwest::Method::PATCH,
            &format!("/v1/sessions/{id}"),
            Some(r#"{"driver_options": {"reply": "fine"}}"#),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    let r = b.send(&id, "again").await;
    let s = wait_until("the new run done", DEADLINE, || async {
        let s = b.session(&id).await;
        (s["last_run"]["run_id"] == r["run_id"] && s["last_run"]["outcome"] == "completed")
            .then_some(s)
    })
    .await;
    b.wait_settled(&id, s["last_seq"].as_u64().unwrap()).await;
    let history = b.history(&id).await;
    assert_eq!(history.last().unwrap()["content"], "fine");
    assert_eq!(owner(&nodes, &id).await, 0, "still on A");
}

/// A node restarted with its old id takes its sessions back and lists them as
/// held again, so when it dies for good another node still finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_taken_back_after_a_restart_are_found_when_the_node_dies_again() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // A 5 s lease: the restarted node (up in well under a second) takes its
    // session back before the other node may.
    let config = CONFIG.replace("lease_ttl_ms = 1000", "lease_ttl_ms = 5000");
    assert!(config.contains("lease_ttl_ms = 5000"));
    let mut a = node_with(&redis.url(), "a", dir.path(), &config);
    let b = node_with(&redis.url(), "b", dir.path(), &config);
    let long = json!({"chunks": 100, "delay_ms": 100});
    let created = a
        .api()
        .ok(
            "/v1/projects/demo/sessions",
            json!({"prompt": "first life", "driver_options": long}),
            201,
        )
        .await;
    let id = created["session"]["id"].as_str().unwrap().to_string();
    a.api().wait_status(&id, "running").await;
    a.kill9();
    a = node_with(&redis.url(), "a", dir.path(), &config);
    let (a_api, b_api) = (a.api(), b.api());
    wait_until(
        "the first run closed by A's second life",
        DEADLINE,
        || async {
            let s = b_api.session(&id).await;
            (s["last_run"]["outcome"] == "interrupted").then_some(())
        },
    )
    .await;
    wait_until("held by A", DEADLINE, || async {
        let n = a_api.fetch("/v1/node").await;
        n["owned_sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == id.as_str())
            .then_some(())
    })
    .await;
    let r = a_api.send(&id, "second life").await;
    wait_until("the second run going", DEADLINE, || async {
        let s = a_api.session(&id).await;
        (s["last_run"]["run_id"] == r["run_id"] && s["status"] == "running").then_some(())
    })
    .await;
    a.kill9();
    // B finds the session in A's held list and closes the run.
    wait_until("the second run closed by B", DEADLINE, || async {
        let s = b_api.session(&id).await;
        (s["last_run"]["run_id"] == r["run_id"] && s["last_run"]["outcome"] == "interrupted")
            .then_some(())
    })
    .await;
}
