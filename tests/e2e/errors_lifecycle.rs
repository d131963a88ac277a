//! Bad input to the lifecycle, listing, project and node routes answers 4xx in the
//! error shape with a stable code; never a 500.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

const MISSING: &str = "01a1fca6-b0a9-735c-9e7a-bea7febb46e1";

async fn patch(api: &Api, id: &str, body: Value) -> Answer {
    api.raw(
        Method::PATCH,
        &format!("/v1/sessions/{id}"),
        Some(&body.to_string()),
    )
    .await
}

async fn put(api: &Api, path: &str, body: Value) -> Answer {
    api.raw(Method::PUT, path, Some(&body.to_string())).await
}

/// Asserts the error's message names `field`, so a client knows what to fix.
fn names(answer: &Answer, field: &str) {
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{field} not named in {message}");
}

#[tokio::test]
async fn bad_session_lifecycle_input_gets_a_clear_error() {
    let server = Server::start(&Store::Memory);
    let api = server.api();
    let id = api.create("demo", json!({})).await;

    // Idempotency keys: create, send and steer share one rule.
    for (path, body) in [
        (
            "/v1/projects/demo/sessions".to_string(),
            json!({"idempotency_key": "has space"}),
        ),
        (
            format!("/v1/sessions/{id}/messages"),
            json!({"prompt": "x", "idempotency_key": ""}),
        ),
        (
            format!("/v1/sessions/{id}/steer"),
            json!({"prompt": "x", "idempotency_key": "k".repeat(129)}),
        ),
    ] {
        let a = api.post(&path, body).await;
        a.assert_error(400, "invalid_request");
        names(&a, "idempotency_key");
    }

    // Create's new fields.
    let create = "/v1/projects/demo/sessions";
    api.post(create, json!({"parent_id": "nope"}))
        .await
        .assert_error(400, "invalid_request");
    api.post(create, json!({"parent_id": MISSING}))
        .await
        .assert_error(400, "invalid_request");
    api.post(create, json!({"max_turns": 0}))
        .await
        .assert_error(400, "invalid_request");
    api.post(create, json!({"max_turns": -1}))
        .await
        .assert_error(400, "invalid_request");
    api.post(create, json!({"thinking": "yes"}))
        .await
        .assert_error(400, "invalid_request");
    api.post(create, json!({"auto_compact_keep": 1_000_001}))
        .await
        .assert_error(400, "invalid_request");

    // Steer follows send's rules.
    let steer = format!("/v1/sessions/{id}/steer");
    api.post(&steer, json!({"prompt": " "}))
        .await
        .assert_error(400, "invalid_request");
    api.post(&steer, json!({"prompt": "x", "surprise": 1}))
        .await
        .assert_error(400, "invalid_request");
    api.post(
        &format!("/v1/sessions/{MISSING}/steer"),
        json!({"prompt": "x"}),
    )
    .await
    .assert_error(404, "not_found");

    // Patch checks like create.
    let a = patch(&api, &id, json!({"surprise": 1})).await;
    a.assert_error(400, "invalid_request");
    names(&a, "surprise");
    let a = patch(&api, &id, json!({"env": {"ANTHROPIC_API_KEY": "x"}})).await;
    a.assert_error(400, "invalid_request");
    names(&a, "ANTHROPIC_API_KEY");
    patch(&api, &id, json!({"env": {"1X": "x"}}))
        .await
        .assert_error(400, "invalid_request");
    patch(&api, &id, json!({"cwd": "relative"}))
        .await
        .assert_error(400, "invalid_request");
    patch(&api, &id, json!({"label": "l".repeat(300)}))
        .await
        .assert_error(400, "invalid_request");
    patch(
        &api,
        &id,
        json!({"system_prompt": "x".repeat(256 * 1024 + 1)}),
    )
    .await
    .assert_error(413, "payload_too_large");
    patch(&api, &id, json!({"driver": "nope"}))
        .await
        .assert_error(400, "invalid_request");
    patch(&api, &id, json!({"driver_options": {"typo": 1}}))
        .await
        .assert_error(400, "invalid_request");
    patch(&api, &id, json!({"max_turns": 0}))
        .await
        .assert_error(400, "invalid_request");
    patch(&api, MISSING, json!({}))
        .await
        .assert_error(404, "not_found");
    api.raw(Method::PATCH, &format!("/v1/sessions/{id}"), Some("[1]"))
        .await
        .assert_error(400, "invalid_request");
    // An empty patch is fine, and an empty cwd clears it rather than failing.
    assert_eq!(patch(&api, &id, json!({})).await.status, 200);
    assert_eq!(patch(&api, &id, json!({"cwd": ""})).await.status, 200);

    // Compact.
    let compact = format!("/v1/sessions/{id}/compact");
    api.post(&compact, json!({}))
        .await
        .assert_error(400, "invalid_request");
    let a = api.post(&compact, json!({"keep_last": 1_000_001})).await;
    a.assert_error(400, "invalid_request");
    names(&a, "keep_last");
    api.post(&compact, json!({"keep_last": -1}))
        .await
        .assert_error(400, "invalid_request");

    // Pause, resume, reset, delete of what is not there.
    for verb in ["pause", "resume", "reset"] {
        api.raw(
            Method::POST,
            &format!("/v1/sessions/{MISSING}/{verb}"),
            None,
        )
        .await
        .assert_error(404, "not_found");
        api.raw(Method::POST, &format!("/v1/sessions/nope/{verb}"), None)
            .await
            .assert_error(400, "invalid_request");
    }
    api.raw(Method::DELETE, &format!("/v1/sessions/{MISSING}"), None)
        .await
        .assert_error(404, "not_found");
    api.raw(
        Method::DELETE,
        &format!("/v1/sessions/{id}?archive=maybe"),
        None,
    )
    .await
    .assert_error(400, "invalid_request");
    api.raw(Method::DELETE, &format!("/v1/sessions/{id}?force=1"), None)
        .await
        .assert_error(400, "invalid_request");

    // The server is still fine, and the session too.
    assert_eq!(api.session(&id).await["id"], id.as_str());
}

#[tokio::test]
async fn bad_listing_retention_and_preview_input_gets_a_clear_error() {
    let server = Server::start(&Store::Memory);
    let api = server.api();
    let id = api.create("demo", json!({"key": "main"})).await;

    // Preview: 1..=64 well-formed ids, bounded limit and max_chars.
    let preview = "/v1/sessions/preview";
    let many: Vec<String> = (0..65).map(|_| MISSING.to_string()).collect();
    let a = api.post(preview, json!({ "ids": many })).await;
    a.assert_error(400, "invalid_request");
    names(&a, "ids");
    api.post(preview, json!({"ids": []}))
        .await
        .assert_error(400, "invalid_request");
    api.post(preview, json!({"ids": [id, "not-a-uuid"]}))
        .await
        .assert_error(400, "invalid_request");
    api.post(preview, json!({}))
        .await
        .assert_error(400, "invalid_request");
    for (field, bad) in [
        ("limit", 0),
        ("limit", 101),
        ("max_chars", 0),
        ("max_chars", 100_001),
    ] {
        let a = api.post(preview, json!({"ids": [id], field: bad})).await;
        a.assert_error(400, "invalid_request");
        names(&a, field);
    }
    let exactly_64: Vec<String> = (0..64).map(|_| MISSING.to_string()).collect();
    assert_eq!(
        api.post(preview, json!({ "ids": exactly_64 })).await.status,
        200
    );
    // The static segment is no session id: other methods are 405, not 400.
    api.get(preview)
        .await
        .assert_error(405, "method_not_allowed");

    // List: status, limit, cursor, unknown parameters.
    let list = "/v1/projects/demo/sessions";
    let a = api.get(&format!("{list}?status=sleeping")).await;
    a.assert_error(400, "invalid_request");
    names(&a, "sleeping");
    for q in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=junk",
        "cursor=1.nope",
        "sort=asc",
    ] {
        api.get(&format!("{list}?{q}"))
            .await
            .assert_error(400, "invalid_request");
    }
    api.get("/v1/projects/Bad_Project/sessions")
        .await
        .assert_error(400, "invalid_request");

    // By key.
    api.get("/v1/projects/demo/sessions/by-key/unknown")
        .await
        .assert_error(404, "not_found");
    api.get("/v1/projects/demo/sessions/by-key/-bad")
        .await
        .assert_error(400, "invalid_request");

    // Children.
    api.get(&format!("/v1/sessions/{MISSING}/children"))
        .await
        .assert_error(404, "not_found");
    api.get(&format!("/v1/sessions/{id}/children?limit=0"))
        .await
        .assert_error(400, "invalid_request");
    api.get(&format!("/v1/sessions/{id}/children?cursor=junk"))
        .await
        .assert_error(400, "invalid_request");

    // Retention.
    let retention = "/v1/projects/demo/retention";
    for (field, bad) in [
        ("max_sessions", json!(0)),
        ("max_sessions", json!(51)),
        ("max_age_days", json!(0)),
        ("max_age_days", json!(366)),
    ] {
        let a = put(&api, retention, json!({ field: bad })).await;
        a.assert_error(400, "invalid_request");
        names(&a, field);
    }
    for body in [
        json!({"max_sessions": -1}),
        json!({"max_sessions": "5"}),
        json!({"keep": 1}),
    ] {
        put(&api, retention, body)
            .await
            .assert_error(400, "invalid_request");
    }
    put(&api, "/v1/projects/Bad_Project/retention", json!({}))
        .await
        .assert_error(400, "invalid_request");
    api.raw(Method::DELETE, retention, None)
        .await
        .assert_error(405, "method_not_allowed");
    // Nothing was set by the refused calls.
    let policy = api.get(retention).await;
    assert_eq!(policy.body, json!({"max_sessions": 5, "max_age_days": 30}));

    // Project events and node.
    api.get("/v1/projects/Bad_Project/events")
        .await
        .assert_error(400, "invalid_request");
    api.post("/v1/node", json!({}))
        .await
        .assert_error(405, "method_not_allowed");

    assert_eq!(api.get("/healthz").await.status, 200);
}
