//! The session WebSocket (`/v1/sessions/{id}/ws`): commands and their replies,
//! the event stream with resume, bad frames, abort, refusals before the upgrade,
//! and the close frame when the node stops.

mod client;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;
use client::{Ws, is_status, messages, seqs};

/// Four chunks, so a prompt makes five messages (the prompt and four answers).
fn chunked() -> Value {
    json!({"driver_options": {"chunks": 4, "delay_ms": 20}})
}

#[tokio::test]
async fn ws_send_replies_then_streams_the_run_once_in_order() {
    let server = Server::start(&Store::Memory);
    let api = server.api();
    let id = api.create("demo", chunked()).await;
    let mut ws = Ws::connect(&api, &id, 0).await;
    // Nothing to replay: the current status comes first.
    assert!(is_status(&ws.next().await, "idle", 0));

    ws.command("c1", "send", json!({"prompt": "hello"})).await;
    let reply = ws.reply(Some("c1")).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let receipt = &reply["data"];
    assert_eq!(receipt["message_seq"], 1);
    assert_eq!(receipt["queued"], false);
    assert!(receipt["run_id"].is_string(), "{receipt}");
    let frames = ws.until(|f| is_status(f, "idle", 5)).await;

    let run = messages(&frames);
    assert_eq!(seqs(&run), [1, 2, 3, 4, 5], "each message once, in order");
    assert_eq!(
        (&run[0]["role"], &run[0]["content"]),
        (&json!("user"), &json!("hello"))
    );
    assert!(run.iter().all(|m| m["run_id"] == receipt["run_id"]));
    assert!(
        frames
            .iter()
            .any(|f| f["event"] == "status" && f["data"]["status"] == "running")
    );
    // The same payloads as the HTTP history.
    assert_eq!(run, api.history(&id).await);

    // An idempotency key makes a repeated send answer the first receipt again.
    let keyed = json!({"prompt": "again", "idempotency_key": "retry-1"});
    ws.command("c2", "send", keyed.clone()).await;
    let first = ws.ok("c2").await;
    assert_eq!(first["message_seq"], 6);
    let frames = ws.until(|f| is_status(f, "idle", 10)).await;
    assert_eq!(seqs(&messages(&frames)), [6, 7, 8, 9, 10]);
    ws.command("c3", "send", keyed).await;
    assert_eq!(ws.ok("c3").await, first);
    assert_eq!(api.session(&id).await["last_seq"], 10, "nothing ran twice");
}

#[tokio::test]
async fn ws_resumes_after_a_seq_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&Store::Sqlite(dir.path().join("data")));
    let api = server.api();
    let id = api.create("demo", chunked()).await;
    api.send(&id, "one").await;
    api.wait_settled(&id, 5).await;

    let mut ws = Ws::connect(&api, &id, 3).await;
    let replay = ws.until(|f| is_status(f, "idle", 5)).await;
    assert_eq!(seqs(&messages(&replay)), [4, 5]);
    // Then live, from the next seq.
    api.send(&id, "two").await;
    let live = ws.until(|f| is_status(f, "idle", 10)).await;
    let live = messages(&live);
    assert_eq!(seqs(&live), [6, 7, 8, 9, 10]);
    assert_eq!(live[0]["content"], "two");
    drop(ws);

    // Resuming at the end replays nothing.
    let mut ws = Ws::connect(&api, &id, 10).await;
    assert!(is_status(&ws.next().await, "idle", 10));

    // A resume point past the log or not a number is refused before the upgrade.
    for query in ["?after_seq=11", "?after_seq=x"] {
        let refused = Ws::try_connect(&api, &id, query).await.err().unwrap();
        assert_eq!(refused.status, 400, "{query}: {refused:?}");
        assert_eq!(refused.body["error"]["code"], "invalid_request");
    }
}

#[tokio::test]
async fn ws_bad_frames_get_error_replies_and_the_socket_stays_usable() {
    let server = Server::start(&Store::Memory);
    let api = server.api();
    let id = api.create("demo", json!({})).await;
    let mut ws = Ws::connect(&api, &id, 0).await;

    ws.send(Message::text("not json")).await;
    ws.refused(None, "invalid_request").await;
    ws.send(Message::text(r#"{"id": 5, "op": "pause"}"#)).await;
    ws.refused(None, "invalid_request").await;
    ws.send(Message::binary(vec![1, 2, 3])).await;
    ws.refused(None, "invalid_request").await;

    ws.command("u", "fly", json!({})).await;
    let unknown = ws.refused(Some("u"), "invalid_request").await;
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown op")
    );
    ws.command("blank", "send", json!({"prompt": "  \n "}))
        .await;
    ws.refused(Some("blank"), "invalid_request").await;
    let bad_key = json!({"prompt": "hi", "idempotency_key": "has space"});
    ws.command("key", "send", bad_key).await;
    ws.refused(Some("key"), "invalid_request").await;
    ws.command("extra", "send", json!({"prompt": "hi", "color": "red"}))
        .await;
    ws.refused(Some("extra"), "invalid_request").await;
    ws.command("keep", "compact", json!({"keep_last": 2_000_000}))
        .await;
    ws.refused(Some("keep"), "invalid_request").await;
    // Over the prompt limit (1 MiB), then over the frame limit (the body's, 2 MiB).
    let big = "a".repeat(1_500_000);
    ws.command("big", "send", json!({"prompt": big})).await;
    ws.refused(Some("big"), "payload_too_large").await;
    ws.send(Message::text("x".repeat(2_500_000))).await;
    ws.refused(None, "payload_too_large").await;

    // Pings are answered.
    ws.send(Message::Ping(b"hi".to_vec().into())).await;
    assert_eq!(ws.pong().await, b"hi");

    // Still usable: pause, a send that waits behind the pause, resume.
    ws.command("p", "pause", json!({})).await;
    assert_eq!(ws.ok("p").await["session"]["paused"], true);
    ws.command("s", "send", json!({"prompt": "later"})).await;
    assert_eq!(ws.ok("s").await["queued"], true);
    ws.command("r", "resume", json!({})).await;
    assert_eq!(ws.ok("r").await["session"]["paused"], false);
    let frames = ws.until(|f| is_status(f, "idle", 2)).await;
    assert_eq!(seqs(&messages(&frames)), [1, 2]);
    // Nothing invalid reached the session.
    assert_eq!(api.history(&id).await.len(), 2);
    // A close from the client is answered.
    assert_eq!(ws.close(1000).await, 1000);
}

#[tokio::test]
async fn ws_abort_ends_a_hanging_run() {
    let server = Server::start(&Store::Memory);
    let api = server.api();
    let id = api
        .create("demo", json!({"driver_options": {"hang": true}}))
        .await;
    let mut ws = Ws::connect(&api, &id, 0).await;
    ws.command("go", "send", json!({"prompt": "hang"})).await;
    let run_id = ws.ok("go").await["run_id"].clone();
    ws.until(|f| f["event"] == "status" && f["data"]["status"] == "running")
        .await;

    ws.command("stop", "abort", json!({})).await;
    let abort = ws.ok("stop").await;
    assert_eq!(abort, json!({"status": "aborted", "run_id": run_id}));
    let frames = ws
        .until(|f| f["event"] == "status" && f["data"]["status"] == "idle")
        .await;
    let idle = frames.last().unwrap();
    assert_eq!(idle["data"]["last_run"]["outcome"], "aborted");
    assert_eq!(idle["data"]["last_run"]["run_id"], run_id);

    // The run is over: aborting it again finds nothing.
    ws.command("again", "abort", json!({"run_id": run_id}))
        .await;
    assert_eq!(ws.ok("again").await["status"], "no-active-run");
}

#[tokio::test]
async fn ws_refuses_before_the_upgrade_in_the_error_shape() {
    let server = Server::start(&Store::Memory);
    let api = server.api();
    let unknown = "01a1fca6-b0a9-735c-9e7a-bea7febb46e1";
    let refused = Ws::try_connect(&api, unknown, "").await.err().unwrap();
    assert_eq!(refused.status, 404, "{refused:?}");
    assert_eq!(refused.body["error"]["code"], "not_found");
    let refused = Ws::try_connect(&api, "not-a-uuid", "").await.err().unwrap();
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(refused.body["error"]["code"], "invalid_request");
    // A plain GET is no upgrade.
    let id = api.create("demo", json!({})).await;
    api.get(&format!("/v1/sessions/{id}/ws"))
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn ws_is_closed_with_going_away_when_the_node_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&Store::Sqlite(dir.path().join("data")));
    let api = server.api();
    let id = api.create("demo", json!({})).await;
    let mut ws = Ws::connect(&api, &id, 0).await;
    assert!(is_status(&ws.next().await, "idle", 0));
    // Read while the server stops, so its close frame is taken as it comes.
    let stop = tokio::task::spawn_blocking(move || server.sigterm_and_wait());
    assert_eq!(ws.close_code().await, 1001);
    assert!(stop.await.unwrap().success());
}
