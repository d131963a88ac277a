//! SSE: replay after a seq, then live, each message exactly once; resume with
//! Last-Event-ID.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn sse_replays_then_follows_live_and_resumes_without_gap_or_duplicate() {
    for (store, _redis, _dir) in stores() {
        let server = Server::start(&store);
        let api = server.api();
        let id = api
            .create(
                "demo",
                json!({"driver_options": {"chunks": 4, "delay_ms": 30}}),
            )
            .await;
        api.send(&id, "first").await;
        api.wait_settled(&id, 5).await;

        // after_seq=1: seq 2..5 replayed from the store, then the live ones.
        let mut events = api.events(&id, Some(1), None).await;
        let replay = events.messages_until(1, 5).await;
        assert_eq!(replay[0].data["content"], "ec");
        api.send(&id, "second").await;
        let live = events.messages_until(5, 10).await;
        assert_eq!(live[0].data["role"], "user");
        assert_eq!(live[0].data["content"], "second");
        // The status returns to idle after the run's messages, as an event.
        let status = wait_for_status(&mut events, "idle").await;
        assert_eq!(status.data["last_seq"], 10);
        drop(events);

        // Reconnect with Last-Event-ID: no gap, no duplicate.
        let mut resumed = api.events(&id, None, Some(7)).await;
        let rest = resumed.messages_until(7, 10).await;
        assert_eq!(rest.len(), 3);
        api.send(&id, "third").await;
        let more = resumed.messages_until(10, 15).await;
        assert_eq!(more[0].data["content"], "third");

        // Last-Event-ID wins over after_seq.
        let mut both = api.events(&id, Some(0), Some(14)).await;
        let one = both.messages_until(14, 15).await;
        assert_eq!(one[0].data["seq"], 15);
    }
}

async fn wait_for_status(events: &mut Events, status: &str) -> Sse {
    loop {
        let ev = events.next().await;
        if ev.event == "status" && ev.data["status"] == status {
            return ev;
        }
        assert_ne!(
            ev.event, "message",
            "no message expected before the status: {ev:?}"
        );
    }
}

#[tokio::test]
async fn status_changes_are_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&Store::Sqlite(dir.path().join("data")));
    let api = server.api();
    let id = api
        .create("demo", json!({"driver_options": {"delay_ms": 50}}))
        .await;
    let mut events = api.events(&id, None, None).await;
    // First the current status.
    let first = events.next().await;
    assert_eq!(
        (first.event.as_str(), first.data["status"].as_str()),
        ("status", Some("idle"))
    );
    assert_eq!(
        first.id, "",
        "status events carry no id, so they never move the resume point"
    );
    api.send(&id, "go").await;
    let mut seen = vec![];
    loop {
        let ev = events.next().await;
        if ev.event == "status" {
            let status = ev.data["status"].as_str().unwrap().to_string();
            let done = status == "idle" && ev.data["last_seq"] == 2;
            seen.push(status);
            if done {
                break;
            }
        }
    }
    assert!(seen.contains(&"running".to_string()), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("idle"));
}

#[tokio::test]
async fn sse_rejects_a_bad_last_event_id_and_an_unknown_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&Store::Sqlite(dir.path().join("data")));
    let api = server.api();
    let id = api.create("demo", json!({})).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/sessions/{id}/events", api.base))
        .header("last-event-id", "not-a-number")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let missing = api
        .get("/v1/sessions/01a1fca6-b0a9-735c-9e7a-bea7febb46e1/events")
        .await;
    missing.assert_error(404, "not_found");
}
