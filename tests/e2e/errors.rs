//! Bad input answers 4xx with the error shape and a stable code; never a 500.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&Store::Sqlite(dir.path().join("data")));
    let api = server.api();
    let id = api.create("demo", json!({"key": "main"})).await;
    let unknown = "01a1fca6-b0a9-735c-9e7a-bea7febb46e1";
    use reqwest::Method;

    api.get(&format!("/v1/sessions/{unknown}"))
        .await
        .assert_error(404, "not_found");
    api.get(&format!("/v1/sessions/{unknown}/messages"))
        .await
        .assert_error(404, "not_found");
    api.post(
        &format!("/v1/sessions/{unknown}/messages"),
        json!({"prompt": "x"}),
    )
    .await
    .assert_error(404, "not_found");
    api.post(&format!("/v1/sessions/{unknown}/abort"), json!({}))
        .await
        .assert_error(404, "not_found");
    api.get("/v1/sessions/not-a-uuid")
        .await
        .assert_error(400, "invalid_request");

    let send = format!("/v1/sessions/{id}/messages");
    api.raw(Method::POST, &send, Some("{\"prompt\": "))
        .await
        .assert_error(400, "invalid_request");
    api.post(&send, json!({}))
        .await
        .assert_error(400, "invalid_request");
    api.post(&send, json!({"prompt": "   "}))
        .await
        .assert_error(400, "invalid_request");
    api.post(&send, json!({"prompt": 5}))
        .await
        .assert_error(400, "invalid_request");
    api.post(&send, json!({"prompt": "x", "surprise": 1}))
        .await
        .assert_error(400, "invalid_request");
    let big = "x".repeat(1024 * 1024 + 1);
    api.post(&send, json!({"prompt": big}))
        .await
        .assert_error(413, "payload_too_large");
    let huge = "x".repeat(3 * 1024 * 1024);
    api.post(&send, json!({"prompt": huge}))
        .await
        .assert_error(413, "payload_too_large");
    // No content type.
    let resp = reqwest::Client::new()
        .post(format!("{}{send}", api.base))
        .body("{\"prompt\":\"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let create = "/v1/projects/demo/sessions";
    api.post(create, json!({"driver": "nope"}))
        .await
        .assert_error(400, "invalid_request");
    api.post(create, json!({"driver_options": {"chunks": 0}}))
        .await
        .assert_error(400, "invalid_request");
    api.post(create, json!({"driver_options": {"typo": 1}}))
        .await
        .assert_error(400, "invalid_request");
    api.post(create, json!({"key": "has space"}))
        .await
        .assert_error(400, "invalid_request");
    api.post(create, json!({"key": "main"}))
        .await
        .assert_error(409, "conflict");
    api.post(create, json!({"label": "l".repeat(300)}))
        .await
        .assert_error(400, "invalid_request");
    api.post("/v1/projects/Bad_Project/sessions", json!({}))
        .await
        .assert_error(400, "invalid_request");
    api.get(&format!("/v1/sessions/{id}/messages?limit=0"))
        .await
        .assert_error(400, "invalid_request");
    api.get(&format!("/v1/sessions/{id}/messages?after_seq=-1"))
        .await
        .assert_error(400, "invalid_request");
    api.post(
        &format!("/v1/sessions/{id}/abort"),
        json!({"run_id": "nope"}),
    )
    .await
    .assert_error(400, "invalid_request");

    let huge_abort = format!("{{\"pad\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    api.raw(
        Method::POST,
        &format!("/v1/sessions/{id}/abort"),
        Some(&huge_abort),
    )
    .await
    .assert_error(413, "payload_too_large");
    // A resume point past the end would hide messages: refused.
    api.get(&format!("/v1/sessions/{id}/events?after_seq=99"))
        .await
        .assert_error(400, "invalid_request");
    // Framework texts are lowercased like ours.
    let bad = api.raw(Method::POST, &send, Some("{\"prompt\": ")).await;
    let message = bad.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("invalid JSON body: failed"),
        "{message}"
    );

    api.get("/v1/nothing-here")
        .await
        .assert_error(404, "not_found");
    api.raw(Method::DELETE, "/healthz", None)
        .await
        .assert_error(405, "method_not_allowed");

    // The server is still fine.
    assert_eq!(api.get("/healthz").await.status, 200);
}
