//! Health, readiness and Prometheus metrics of a running server.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn metrics_count_requests_runs_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&Store::Sqlite(dir.path().join("data")));
    let api = server.api();
    let id = api
        .create("demo", json!({"driver_options": {"chunks": 2}}))
        .await;
    api.send(&id, "one").await;
    api.wait_settled(&id, 3).await;
    api.get("/v1/sessions/not-a-uuid").await;

    let resp = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "prometheus text format"
    );
    let text = resp.text().await.unwrap();
    let has = |needle: &str| {
        assert!(text.contains(needle), "no '{needle}' in:\n{text}");
    };
    has(r#"sessiond_runs_started_total 1"#);
    has(r#"sessiond_runs_ended_total{outcome="completed"} 1"#);
    // Routes are labelled by template, never by the raw path.
    has(
        r#"sessiond_http_requests_total{method="POST",route="/v1/sessions/{id}/messages",status="202"} 1"#,
    );
    has(r#"route="/v1/sessions/{id}",status="400"} 1"#);
    assert!(!text.contains(&id), "no session id in a label");
    has("sessiond_writer_batch_writes_count");
    has("sessiond_writer_commit_seconds_bucket");
    has("sessiond_sessions_resident 1");
    has("sessiond_http_request_seconds_bucket");
}
