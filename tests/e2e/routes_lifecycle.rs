//! The wire shapes of the lifecycle, listing, project and node routes, as raw
//! JSON (the CLI tests see them through the model types, which would hide a
//! missing or extra field). Behaviour in depth is tested elsewhere.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

/// The keys of a JSON object.
fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

/// Asserts a `{"session": ...}` answer with status 200 for session `id`.
fn assert_envelope(a: &Answer, id: &str) {
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(keys(&a.body), set(&["session"]));
    assert_eq!(a.body["session"]["id"], id);
}

#[tokio::test]
async fn lifecycle_and_listing_routes_answer_their_wire_shapes() {
    let server = Server::start(&Store::Memory);
    let api = server.api();
    let created = api
        .post(
            "/v1/projects/demo/sessions",
            // `main` is protected by default: this test resets and deletes it.
            json!({"key": "main", "thinking": true, "max_turns": 2, "protected": false,
                   "auto_compact_tokens": 500, "auto_compact_keep": 4}),
        )
        .await;
    assert_eq!(created.status, 201);
    let session = &created.body["session"];
    let id = session["id"].as_str().unwrap().to_string();
    for (field, value) in [
        ("parent_id", Value::Null),
        ("paused", json!(false)),
        ("archived_upto", json!(0)),
        ("thinking", json!(true)),
        ("max_turns", json!(2)),
        ("auto_compact_tokens", json!(500)),
        ("auto_compact_keep", json!(4)),
    ] {
        assert_eq!(session[field], value, "{field}");
    }

    let steer = api
        .post(&format!("/v1/sessions/{id}/steer"), json!({"prompt": "go"}))
        .await;
    assert_eq!(steer.status, 202, "{:?}", steer.body);
    assert_eq!(
        keys(&steer.body),
        set(&["run_id", "message_seq", "queued", "interrupted_run_id"])
    );
    assert_eq!(steer.body["interrupted_run_id"], Value::Null);
    api.wait_settled(&id, 2).await;
    // Send keeps its shape: no interrupted_run_id.
    let send = api.send(&id, "more").await;
    assert_eq!(keys(&send), set(&["run_id", "message_seq", "queued"]));
    api.wait_settled(&id, 4).await;

    for verb in ["pause", "resume", "reset"] {
        let a = api
            .raw(Method::POST, &format!("/v1/sessions/{id}/{verb}"), None)
            .await;
        assert_envelope(&a, &id);
    }
    let patched = api
        .raw(
            Method::PATCH,
            &format!("/v1/sessions/{id}"),
            Some(r#"{"label": "x"}"#),
        )
        .await;
    assert_envelope(&patched, &id);
    assert_eq!(patched.body["session"]["label"], "x");

    let compact = api
        .post(
            &format!("/v1/sessions/{id}/compact"),
            json!({"keep_last": 0}),
        )
        .await;
    assert_eq!(compact.status, 200);
    assert_eq!(keys(&compact.body), set(&["compacted", "kept", "archived"]));

    let list = api.get("/v1/projects/demo/sessions").await;
    assert_eq!(list.status, 200);
    assert_eq!(keys(&list.body), set(&["sessions", "next_cursor"]));
    // A listed session is the session object, field for field.
    assert_eq!(list.body["sessions"][0]["id"], id.as_str());
    assert_eq!(
        keys(&list.body["sessions"][0]),
        keys(&api.session(&id).await)
    );
    let by_key = api.get("/v1/projects/demo/sessions/by-key/main").await;
    assert_envelope(&by_key, &id);
    let children = api.get(&format!("/v1/sessions/{id}/children")).await;
    assert_eq!(children.body, json!({"sessions": [], "next_cursor": null}));

    let preview = api.post("/v1/sessions/preview", json!({"ids": [id]})).await;
    assert_eq!(preview.status, 200);
    assert_eq!(keys(&preview.body), set(&["previews"]));
    assert_eq!(
        keys(&preview.body["previews"][0]),
        set(&["id", "status", "messages"])
    );

    let retention = api.get("/v1/projects/demo/retention").await;
    assert_eq!(
        retention.body,
        json!({"max_sessions": 5, "max_age_days": 30})
    );
    let node = api.get("/v1/node").await;
    assert_eq!(
        keys(&node.body),
        set(&[
            "node_id",
            "store",
            "resident_sessions",
            "stored_sessions",
            "advertise",
            "owned_sessions",
            "owned_count",
            "peers"
        ])
    );

    let deleted = api
        .raw(
            Method::DELETE,
            &format!("/v1/sessions/{id}?archive=true"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::String(String::new()), "no body");
    api.get(&format!("/v1/sessions/{id}"))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn project_events_stream_changes_and_statuses() {
    let server = Server::start(&Store::Memory);
    let api = server.api();
    let mut events = api.project_events("demo").await;
    let created = api
        .post("/v1/projects/demo/sessions", json!({"prompt": "hi"}))
        .await;
    let id = created.body["session"]["id"].as_str().unwrap().to_string();

    let first = events.next().await;
    assert_eq!(first.event, "sessions.changed");
    assert_eq!(first.id, "", "notices carry no id: nothing to resume");
    assert_eq!(first.data, json!({"session_id": id, "reason": "create"}));
    let status = loop {
        let ev = events.next().await;
        match ev.event.as_str() {
            "status" => break ev,
            "sessions.changed" => assert_eq!(ev.data["session_id"], id.as_str()),
            other => panic!("unexpected event {other}: {:?}", ev.data),
        }
    };
    assert_eq!(status.data["session_id"], id.as_str());
    assert_eq!(
        keys(&status.data),
        set(&[
            "session_id",
            "status",
            "last_seq",
            "last_run",
            "usage",
            "updated_at"
        ])
    );
}
