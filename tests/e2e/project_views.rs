//! Views over a project through the HTTP API on SQLite and on Redis: list with
//! filters and cursor, child sessions, resolve by key, preview, and the project's
//! event stream. Then steer, pause and stall over HTTP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

fn ids(list: &Value) -> Vec<String> {
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn list_children_resolve_and_preview_on_every_store() {
    for (store, _redis, _dir) in stores() {
        let server = Server::start(&store);
        let api = server.api();
        let parent = api
            .create(
                "views",
                json!({"key": "root", "label": "x", "model": "m1", "driver_options": {"reply": "R"}}),
            )
            .await;
        let mut children = Vec::new();
        for label in ["x", "y", "x"] {
            let c = api
                .create("views", json!({"parent_id": parent, "label": label}))
                .await;
            children.push(c);
        }
        // The child inherits driver options and model from its parent.
        let child = api.session(&children[1]).await;
        assert_eq!(
            (child["parent_id"].as_str(), child["model"].as_str()),
            (Some(parent.as_str()), Some("m1"))
        );
        api.send(&children[1], "hi").await;
        api.wait_settled(&children[1], 2).await;
        assert_eq!(api.history(&children[1]).await[1]["content"], "R");

        // Newest activity first, two per page.
        let page1 = api.fetch("/v1/projects/views/sessions?limit=2").await;
        assert_eq!(ids(&page1)[0], children[1], "the one that ran is newest");
        let cursor = page1["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_string();
        let page2 = api
            .fetch(&format!(
                "/v1/projects/views/sessions?limit=2&cursor={cursor}"
            ))
            .await;
        assert_eq!(page2["next_cursor"], Value::Null);
        let mut all: Vec<String> = ids(&page1).into_iter().chain(ids(&page2)).collect();
        assert_eq!(all.len(), 4);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 4, "no session twice across pages");
        let xs = api.fetch("/v1/projects/views/sessions?label=x").await;
        assert_eq!(ids(&xs).len(), 3);
        let idle = api
            .fetch("/v1/projects/views/sessions?status=running")
            .await;
        assert!(ids(&idle).is_empty());

        let kids = api.fetch(&format!("/v1/sessions/{parent}/children")).await;
        let mut got = ids(&kids);
        got.sort();
        let mut want = children.clone();
        want.sort();
        assert_eq!(got, want);

        let root = api.fetch("/v1/projects/views/sessions/by-key/root").await;
        assert_eq!(root["session"]["id"], parent.as_str());

        let missing = uuid::Uuid::now_v7().to_string();
        let preview = api
            .ok(
                "/v1/sessions/preview",
                json!({"ids": [children[1], parent, missing], "limit": 1, "max_chars": 1}),
                200,
            )
            .await;
        let p = preview["previews"].as_array().unwrap();
        assert_eq!(
            p.iter()
                .map(|p| p["status"].as_str().unwrap())
                .collect::<Vec<_>>(),
            vec!["ok", "empty", "missing"]
        );
        assert_eq!(p[0]["messages"].as_array().unwrap().len(), 1);
        assert_eq!(
            p[0]["messages"][0]["content"], "R",
            "the tail, cut to max_chars"
        );
    }
}

#[tokio::test]
async fn the_project_stream_reports_changes_and_statuses_on_every_store() {
    for (store, _redis, _dir) in stores() {
        let server = Server::start(&store);
        let api = server.api();
        let mut events = api.sse("/v1/projects/watch/events").await;
        let id = api.create("watch", json!({})).await;
        api.send(&id, "hi").await;
        api.wait_settled(&id, 2).await;
        let del = api
            .raw(Method::DELETE, &format!("/v1/sessions/{id}"), None)
            .await;
        assert_eq!(del.status, 204);
        let mut reasons = Vec::new();
        let mut statuses = Vec::new();
        while !reasons.contains(&"delete".to_string()) {
            let ev = events.next().await;
            match ev.event.as_str() {
                "sessions.changed" => {
                    assert_eq!(ev.data["session_id"], id.as_str());
                    reasons.push(ev.data["reason"].as_str().unwrap().to_string());
                }
                "status" => statuses.push(ev.data["status"].as_str().unwrap().to_string()),
                _ => {}
            }
        }
        assert_eq!(reasons, vec!["create", "send", "delete"]);
        assert!(statuses.contains(&"running".to_string()), "{statuses:?}");
        assert!(statuses.contains(&"idle".to_string()), "{statuses:?}");
    }
}

#[tokio::test]
async fn steer_pause_and_stall_over_http_on_every_store() {
    for (store, _redis, dir) in stores() {
        let config = "[session]\nstall_after_ms = 300\nsteer_deadline_ms = 2000\n";
        let server = Server::start_configured(&store, dir.path(), config);
        steer_pause_and_stall(&server.api()).await;
    }
}

async fn steer_pause_and_stall(api: &Api) {
    let id = api
        .create("demo", json!({"driver_options": {"hang": true}}))
        .await;
    let mut events = api.events(&id, None, None).await;
    let first = api.send(&id, "quiet").await;
    // A run with no driver activity is reported stalled (and keeps running).
    let stalled = loop {
        let ev = events.next().await;
        if ev.event == "stalled" {
            break ev;
        }
    };
    assert_eq!(stalled.data["run_id"], first["run_id"]);
    assert_eq!(api.session(&id).await["status"], "running");

    let steer = api
        .ok(
            &format!("/v1/sessions/{id}/steer"),
            json!({"prompt": "go"}),
            202,
        )
        .await;
    assert_eq!(steer["interrupted_run_id"], first["run_id"]);
    let s = wait_until("steered run active", DEADLINE, || async {
        let s = api.session(&id).await;
        (s["last_run"]["run_id"] == steer["run_id"]).then_some(s)
    })
    .await;
    assert_eq!(s["status"], "running");

    let paused = api
        .ok(&format!("/v1/sessions/{id}/pause"), json!({}), 200)
        .await;
    assert_eq!(paused["session"]["paused"], true);
    let queued = api.send(&id, "later").await;
    assert_eq!(queued["queued"], true);
    api.ok(&format!("/v1/sessions/{id}/abort"), json!({}), 200)
        .await;
    api.wait_status(&id, "paused").await;
    let resumed = api
        .ok(&format!("/v1/sessions/{id}/resume"), json!({}), 200)
        .await;
    assert_eq!(resumed["session"]["paused"], false);
    wait_until("queued prompt runs", DEADLINE, || async {
        let s = api.session(&id).await;
        (s["last_run"]["run_id"] == queued["run_id"]).then_some(())
    })
    .await;
}
