//! The full session lifecycle through the HTTP API on SQLite and on Redis: compact,
//! reset and delete with their archive, idempotency across a kill -9, supervision of
//! a crashing actor, retention, passivation and the node's counts.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

fn seqs(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

fn tenant() -> sessiond_store::TenantId {
    sessiond_store::TenantId::new("default").unwrap()
}

/// The archive's seqs as the store holds them, checked against what
/// `GET /v1/sessions/{id}/archive` serves (paged three at a time).
async fn archive(store: &Store, api: &Api, id: &str) -> Vec<u64> {
    let b = store.open().await;
    let stored: Vec<u64> = b
        .sessions
        .read_archive(&tenant(), id.parse().unwrap(), 0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    let mut served: Vec<u64> = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .fetch(&format!(
                "/v1/sessions/{id}/archive?after_seq={after}&limit=3"
            ))
            .await;
        let page = seqs(page["messages"].as_array().unwrap());
        served.extend(&page);
        match page.last() {
            Some(&last) if page.len() == 3 => after = last,
            _ => break,
        }
    }
    assert_eq!(served, stored, "the API serves the stored archive");
    stored
}

#[tokio::test]
async fn compact_reset_and_delete_archive_on_every_store() {
    for (store, _redis, _dir) in stores() {
        let mut server = Server::start(&store);
        let api = server.api();
        // `main` is protected by default: this test resets and deletes it.
        let id = api
            .create("demo", json!({"key": "main", "protected": false}))
            .await;
        for p in ["one", "two", "three"] {
            api.send(&id, p).await;
        }
        api.wait_settled(&id, 6).await;

        let report = api
            .ok(
                &format!("/v1/sessions/{id}/compact"),
                json!({"keep_last": 2}),
                200,
            )
            .await;
        assert_eq!(report, json!({"compacted": true, "kept": 2, "archived": 4}));
        assert_eq!(seqs(&api.history(&id).await), vec![5, 6]);
        assert_eq!(archive(&store, &api, &id).await, vec![1, 2, 3, 4]);

        // Durable: the same after a crash.
        server.restart();
        let api = server.api();
        assert_eq!(seqs(&api.history(&id).await), vec![5, 6]);
        assert_eq!(archive(&store, &api, &id).await, vec![1, 2, 3, 4]);

        let reset = api
            .ok(&format!("/v1/sessions/{id}/reset"), json!({}), 200)
            .await;
        assert_eq!(reset["session"]["archived_upto"], 6);
        assert!(api.history(&id).await.is_empty(), "a fresh transcript");
        assert_eq!(
            archive(&store, &api, &id).await,
            (1..=6).collect::<Vec<_>>()
        );
        let by_key = api.fetch("/v1/projects/demo/sessions/by-key/main").await;
        assert_eq!(by_key["session"]["id"], id.as_str(), "same id, same key");
        let r = api.send(&id, "after reset").await;
        assert_eq!(r["message_seq"], 7, "seq goes on");
        api.wait_settled(&id, 8).await;

        let del = api
            .raw(
                Method::DELETE,
                &format!("/v1/sessions/{id}?archive=true"),
                None,
            )
            .await;
        assert_eq!(del.status, 204, "{:?}", del.body);
        api.get(&format!("/v1/sessions/{id}"))
            .await
            .assert_error(404, "not_found");
        api.get("/v1/projects/demo/sessions/by-key/main")
            .await
            .assert_error(404, "not_found");
        let listed = api.fetch("/v1/projects/demo/sessions").await;
        assert_eq!(listed["sessions"], json!([]));
        assert_eq!(
            archive(&store, &api, &id).await,
            (1..=8).collect::<Vec<_>>()
        );
        // Past the end of a deleted session's archive: an empty page, not a 404.
        let past = api
            .fetch(&format!("/v1/sessions/{id}/archive?after_seq=8"))
            .await;
        assert_eq!(past["messages"], json!([]));
        let unknown = uuid::Uuid::now_v7();
        api.get(&format!("/v1/sessions/{unknown}/archive"))
            .await
            .assert_error(404, "not_found");
        // The key is free again.
        api.create("demo", json!({"key": "main"})).await;
    }
}

#[tokio::test]
async fn repeated_idempotency_keys_answer_the_first_result_across_a_crash() {
    for (store, _redis, _dir) in stores() {
        let mut server = Server::start(&store);
        let api = server.api();
        let body = json!({"idempotency_key": "create-1", "prompt": "hello"});
        let first = api
            .ok("/v1/projects/demo/sessions", body.clone(), 201)
            .await;
        let id = first["session"]["id"].as_str().unwrap().to_string();
        api.wait_settled(&id, 2).await;
        let send = json!({"prompt": "once", "idempotency_key": "send-1"});
        let receipt = api
            .ok(&format!("/v1/sessions/{id}/messages"), send.clone(), 202)
            .await;
        api.wait_settled(&id, 4).await;

        server.restart();
        let api = server.api();
        let again = api.ok("/v1/projects/demo/sessions", body, 201).await;
        assert_eq!(again["session"]["id"], id.as_str(), "the first session");
        let repeat = api
            .ok(&format!("/v1/sessions/{id}/messages"), send, 202)
            .await;
        assert_eq!(repeat, receipt, "the first receipt");
        let users: Vec<_> = api
            .history(&id)
            .await
            .into_iter()
            .filter(|m| m["role"] == "user")
            .map(|m| m["content"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(users, vec!["hello", "once"], "nothing ran twice");
        let listed = api.fetch("/v1/projects/demo/sessions").await;
        assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_crashing_session_actor_is_restarted_from_the_store() {
    for (store, _redis, dir) in stores() {
        let config = "[session]\ntest_hooks = true\n";
        let server = Server::start_configured(&store, dir.path(), config);
        let api = server.api();
        let id = api
            .create(
                "demo",
                json!({"driver_options": {"crash_actor": true, "reply": "ok"}}),
            )
            .await;
        let r = api.send(&id, "boom").await;
        let s = wait_until("run interrupted", DEADLINE, || async {
            let s = api.session(&id).await;
            (s["last_run"]["run_id"] == r["run_id"] && s["last_run"]["outcome"] == "interrupted")
                .then_some(s)
        })
        .await;
        assert_eq!(s["status"], "interrupted");
        let patch = api
            .raw(
                Method::PATCH,
                &format!("/v1/sessions/{id}"),
                Some(&json!({"driver_options": {"reply": "ok"}}).to_string()),
            )
            .await;
        assert_eq!(patch.status, 200, "{:?}", patch.body);
        let last = api.session(&id).await["last_seq"].as_u64().unwrap();
        api.send(&id, "fine").await;
        let s = api.wait_settled(&id, last + 2).await;
        assert_eq!(s["last_run"]["outcome"], "completed");
        let history = api.history(&id).await;
        assert_eq!(
            seqs(&history),
            (1..=history.len() as u64).collect::<Vec<_>>()
        );
        assert_eq!(history.last().unwrap()["content"], "ok");
    }
}

#[tokio::test]
async fn retention_passivation_and_node_counts_on_every_store() {
    for (store, _redis, dir) in stores() {
        let server =
            Server::start_configured(&store, dir.path(), "[session]\nidle_after_ms = 300\n");
        let api = server.api();
        let policy = api
            .raw(
                Method::PUT,
                "/v1/projects/kept/retention",
                Some(&json!({"max_sessions": 2}).to_string()),
            )
            .await;
        assert_eq!(policy.status, 200, "{:?}", policy.body);
        assert_eq!(policy.body, json!({"max_sessions": 2, "max_age_days": 30}));
        let mut ids = Vec::new();
        for i in 0..4 {
            let id = api.create("kept", json!({})).await;
            api.send(&id, &format!("p{i}")).await;
            api.wait_settled(&id, 2).await;
            ids.push(id);
        }
        // Enforced as each run finishes: the two newest stay.
        let left = wait_until("retention applied", DEADLINE, || async {
            let l = api.fetch("/v1/projects/kept/sessions").await;
            let ids: Vec<String> = l["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect();
            (ids.len() == 2).then_some(ids)
        })
        .await;
        assert_eq!(left, vec![ids[3].clone(), ids[2].clone()]);
        api.get(&format!("/v1/sessions/{}", ids[0]))
            .await
            .assert_error(404, "not_found");
        // Idle sessions are passivated; their data stays.
        let node = wait_until("passivated", DEADLINE, || async {
            let n = api.fetch("/v1/node").await;
            (n["resident_sessions"] == 0).then_some(n)
        })
        .await;
        assert_eq!(node["stored_sessions"], 2);
        // The next request brings one back, transparently.
        let r = api.send(&ids[3], "back").await;
        assert_eq!(r["message_seq"], 3);
        api.wait_settled(&ids[3], 4).await;
    }
}

/// A crash between a tool call and its result: after the restart the call is
/// answered by a synthetic error result (providers refuse a history with an
/// unanswered call), before the interruption note.
#[tokio::test]
async fn a_tool_call_cut_by_a_crash_gets_a_synthetic_error_result() {
    for (store, _redis, _dir) in stores() {
        let mut server = Server::start(&store);
        let api = server.api();
        let id = api
            .create(
                "demo",
                json!({"driver_options": {"tool_calls": 1, "delay_ms": 800}}),
            )
            .await;
        api.send(&id, "use a tool").await;
        // The call is committed; its result is 800 ms away when the node dies.
        wait_until("the tool call", DEADLINE, || async {
            let h = api.history(&id).await;
            h.iter().any(|m| m["role"] == "tool_call").then_some(())
        })
        .await;
        server.restart();
        let api = server.api();
        let s = wait_until("interrupted", DEADLINE, || async {
            let s = api.session(&id).await;
            (s["last_run"]["outcome"] == "interrupted").then_some(s)
        })
        .await;
        assert_eq!(s["status"], "interrupted");
        let history = api.history(&id).await;
        let roles: Vec<&str> = history
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, vec!["user", "tool_call", "tool_result", "system"]);
        let (call, result) = (&history[1], &history[2]);
        assert_eq!(result["tool_call_id"], call["tool_call_id"]);
        assert_eq!(result["is_error"], true);
        assert_eq!(seqs(&history), vec![1, 2, 3, 4]);
    }
}
