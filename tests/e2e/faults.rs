//! Faults of the store: Redis killed and restarted under a running node.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

/// Redis dies (SIGKILL) under a node: calls fail fast with a 5xx in the error
/// shape, never hang; readiness says so; once Redis is back (it keeps an
/// append-only file, fsync always) the node serves again and every acknowledged
/// message is there, dense, with nothing doubled.
#[tokio::test]
async fn redis_down_fails_fast_and_loses_nothing_acknowledged() {
    let mut redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sessiond.toml");
    std::fs::write(
        &config,
        "[session]\ncall_timeout_ms = 4000\n\n[writer]\npersist_deadline_ms = 1500\n",
    )
    .unwrap();
    let server = Server::start_with(
        vec![
            "--config".into(),
            config.display().to_string(),
            "--redis".into(),
            redis.url(),
            "--node-id".into(),
            "fault-node".into(),
        ],
        None,
    );
    let api = server.api();
    let id = api.create("demo", json!({})).await;
    for (i, prompt) in ["one", "two"].iter().enumerate() {
        api.send(&id, prompt).await;
        api.wait_settled(&id, 2 * (i as u64 + 1)).await;
    }

    redis.kill();
    // Bounded by the writer's persist deadline: an error, not a hang.
    let during = tokio::time::timeout(
        Duration::from_secs(15),
        api.post(
            &format!("/v1/sessions/{id}/messages"),
            json!({"prompt": "during"}),
        ),
    )
    .await
    .expect("an answer while Redis is down");
    assert!(
        [503, 504].contains(&during.status),
        "5xx while the store is down: {:?}",
        during.body
    );
    assert!(
        during.body["error"]["code"].is_string(),
        "{:?}",
        during.body
    );
    let ready = tokio::time::timeout(Duration::from_secs(15), api.get("/readyz"))
        .await
        .expect("readyz answers");
    ready.assert_error(503, "unavailable");

    redis.restart();
    let after = wait_until("the node serves again", DEADLINE, || async {
        let a = api
            .post(
                &format!("/v1/sessions/{id}/messages"),
                json!({"prompt": "after"}),
            )
            .await;
        (a.status == 202).then_some(a.body)
    })
    .await;
    let settled = api
        .wait_settled(&id, after["message_seq"].as_u64().unwrap() + 1)
        .await;
    assert_eq!(settled["status"], "idle");
    let history = api.history(&id).await;
    let seqs: Vec<u64> = history.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "dense: {history:?}"
    );
    let contents: Vec<&str> = history
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(&contents[..4], &["one", "echo: one", "two", "echo: two"]);
    assert!(contents.contains(&"after") && contents.contains(&"echo: after"));
    assert!(contents.iter().filter(|c| **c == "during").count() <= 1);
    assert_eq!(api.get("/readyz").await.status, 200);
}
