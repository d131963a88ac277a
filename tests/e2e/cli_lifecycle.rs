//! The lifecycle, listing, project and node verbs of the binary against a real
//! server: each verb runs and prints the route's shape. How steer, compact,
//! retention and the rest behave in depth is tested elsewhere.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use serde_json::{Value, json};

use crate::harness::*;

/// Runs `sessiond <args> --server URL`: (success, stdout, stderr).
fn sessiond(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(args)
        .args(["--server", &server.url])
        .output()
        .expect("run the cli");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON a verb printed; it must succeed.
fn json_of(server: &Server, args: &[&str]) -> Value {
    let (ok, out, err) = sessiond(server, args);
    assert!(ok, "sessiond {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A verb that must fail with the API error `code` on stderr.
fn fails_with(server: &Server, args: &[&str], code: &str) {
    let (ok, out, err) = sessiond(server, args);
    assert!(!ok, "sessiond {args:?} should fail, printed {out}");
    assert!(err.contains(code), "sessiond {args:?}: {err}");
}

fn id_of(envelope: &Value) -> String {
    envelope["session"]["id"].as_str().unwrap().to_string()
}

const MISSING: &str = "01a1fca6-b0a9-735c-9e7a-bea7febb46e1";

#[tokio::test]
async fn cli_create_send_steer_pause_patch_compact_reset_delete() {
    let server = Server::start(&Store::Memory);
    let api = server.api();
    let create = [
        "sessions",
        "create",
        "-p",
        "demo",
        "--key",
        "main",
        "--options",
        r#"{"reply":"pong"}"#,
        "--thinking",
        "true",
        "--max-turns",
        "4",
        "--auto-compact-tokens",
        "1000",
        "--auto-compact-keep",
        "10",
        "--idempotency-key",
        "create-1",
        // `main` is protected by default: this test resets and deletes it.
        "--protected",
        "false",
    ];
    let parent = json_of(&server, &create);
    let s = &parent["session"];
    assert_eq!(
        (&s["thinking"], &s["max_turns"], &s["parent_id"]),
        (&json!(true), &json!(4), &Value::Null)
    );
    assert_eq!(
        (&s["auto_compact_tokens"], &s["auto_compact_keep"]),
        (&json!(1000), &json!(10))
    );
    assert_eq!(
        (&s["paused"], &s["archived_upto"]),
        (&json!(false), &json!(0))
    );
    let pid = id_of(&parent);
    // A retried create answers the first session.
    assert_eq!(id_of(&json_of(&server, &create)), pid);

    let child = json_of(
        &server,
        &["sessions", "create", "-p", "demo", "--parent", &pid],
    );
    let cid = id_of(&child);
    assert_eq!(child["session"]["parent_id"], pid.as_str());
    assert_eq!(child["session"]["thinking"], true, "inherited");

    let send = [
        "sessions",
        "send",
        &pid,
        "ping",
        "--idempotency-key",
        "send-1",
    ];
    let first = json_of(&server, &send);
    assert_eq!(first["message_seq"], 1);
    assert_eq!(
        json_of(&server, &send),
        first,
        "a repeated key answers the first"
    );
    api.wait_settled(&pid, 2).await;

    let steer = json_of(
        &server,
        &[
            "sessions",
            "steer",
            &pid,
            "again",
            "--idempotency-key",
            "st-1",
        ],
    );
    assert_eq!(steer["message_seq"], 3);
    assert_eq!(steer["queued"], false);
    assert!(steer["run_id"].is_string());
    assert_eq!(steer["interrupted_run_id"], Value::Null, "nothing ran");
    api.wait_settled(&pid, 4).await;

    let paused = json_of(&server, &["sessions", "pause", &pid]);
    assert_eq!(paused["session"]["paused"], true);
    assert_eq!(paused["session"]["status"], "paused");
    let resumed = json_of(&server, &["sessions", "resume", &pid]);
    assert_eq!(resumed["session"]["paused"], false);

    let patched = json_of(
        &server,
        &[
            "sessions",
            "patch",
            &pid,
            "--label",
            "renamed",
            "--model",
            "m1",
            "--system-prompt",
            "be brief",
            "--driver",
            "scripted",
            "--driver-options",
            r#"{"reply":"patched"}"#,
            "--thinking",
            "false",
            "--env",
            "FOO=bar",
            "--cwd",
            "/tmp",
            "--max-turns",
            "7",
            "--auto-compact-tokens",
            "0",
            "--auto-compact-keep",
            "3",
        ],
    );
    let s = &patched["session"];
    assert_eq!(
        (&s["label"], &s["model"], &s["system_prompt"]),
        (&json!("renamed"), &json!("m1"), &json!("be brief"))
    );
    assert_eq!(s["driver_options"], json!({"reply": "patched"}));
    assert_eq!(
        (&s["thinking"], &s["max_turns"]),
        (&json!(false), &json!(7))
    );
    assert_eq!(
        (&s["env"], &s["cwd"]),
        (&json!({"FOO": "bar"}), &json!("/tmp"))
    );
    assert_eq!(s["auto_compact_tokens"], Value::Null, "0 turns it off");
    assert_eq!(s["auto_compact_keep"], 3);

    let compacted = json_of(&server, &["sessions", "compact", &pid, "--keep-last", "1"]);
    assert_eq!(
        compacted,
        json!({"compacted": true, "kept": 1, "archived": 3})
    );

    let reset = json_of(&server, &["sessions", "reset", &pid]);
    assert_eq!(reset["session"]["id"], pid.as_str());
    assert_eq!(
        reset["session"]["archived_upto"],
        reset["session"]["last_seq"]
    );
    // The archive holds the whole old transcript; pages of 2 are all printed.
    let (ok, out, err) = sessiond(
        &server,
        &["sessions", "archive", &pid, "--json", "--limit", "2"],
    );
    assert!(ok, "sessions archive: {err}");
    let archived: Vec<u64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let upto = reset["session"]["archived_upto"].as_u64().unwrap();
    assert_eq!(archived, (1..=upto).collect::<Vec<_>>());

    let deleted = json_of(&server, &["sessions", "delete", &cid, "--archive"]);
    assert_eq!(
        deleted,
        json!({"id": cid, "deleted": true, "archived": true})
    );
    let deleted = json_of(&server, &["sessions", "delete", &pid]);
    assert_eq!(deleted["archived"], false);
    fails_with(&server, &["sessions", "get", &pid], "not_found");
    fails_with(&server, &["sessions", "pause", &pid], "not_found");
    fails_with(&server, &["sessions", "archive", MISSING], "not_found");
    fails_with(
        &server,
        &["sessions", "compact", MISSING, "--keep-last", "1000001"],
        "invalid_request",
    );
}

#[tokio::test]
async fn cli_list_resolve_children_preview() {
    let server = Server::start(&Store::Memory);
    let api = server.api();
    let pid = api
        .create(
            "demo",
            json!({"key": "main", "label": "lead", "driver_options": {"reply": "hello world"}}),
        )
        .await;
    let cid = api.create("demo", json!({"parent_id": pid})).await;
    api.send(&pid, "ping").await;
    api.wait_settled(&pid, 2).await;

    let all = json_of(&server, &["sessions", "list", "demo"]);
    assert_eq!(all["next_cursor"], Value::Null);
    let order: Vec<Value> = all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(order.len(), 2);
    assert!(order.contains(&json!(pid)) && order.contains(&json!(cid)));

    // Page by page, the same sessions in the same order.
    let first = json_of(&server, &["sessions", "list", "demo", "--limit", "1"]);
    assert_eq!(first["sessions"][0]["id"], order[0]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let second = json_of(
        &server,
        &[
            "sessions", "list", "demo", "--limit", "1", "--cursor", &cursor,
        ],
    );
    assert_eq!(second["sessions"][0]["id"], order[1]);
    assert_eq!(second["next_cursor"], Value::Null);

    let lead = json_of(&server, &["sessions", "list", "demo", "--label", "lead"]);
    assert_eq!(lead["sessions"].as_array().unwrap().len(), 1);
    let running = json_of(
        &server,
        &["sessions", "list", "demo", "--status", "running"],
    );
    assert_eq!(running["sessions"], json!([]));
    fails_with(
        &server,
        &["sessions", "list", "demo", "--status", "sleeping"],
        "invalid_request",
    );

    let resolved = json_of(&server, &["sessions", "resolve", "demo", "main"]);
    assert_eq!(resolved["session"]["id"], pid.as_str());
    fails_with(
        &server,
        &["sessions", "resolve", "demo", "nope"],
        "not_found",
    );

    let children = json_of(&server, &["sessions", "children", &pid]);
    assert_eq!(children["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(children["sessions"][0]["id"], cid.as_str());
    assert_eq!(children["next_cursor"], Value::Null);
    fails_with(&server, &["sessions", "children", MISSING], "not_found");

    let preview = json_of(
        &server,
        &[
            "sessions",
            "preview",
            &pid,
            &cid,
            MISSING,
            "--limit",
            "1",
            "--max-chars",
            "5",
        ],
    );
    let previews = preview["previews"].as_array().unwrap();
    let statuses: Vec<_> = previews.iter().map(|p| p["status"].clone()).collect();
    assert_eq!(statuses, vec!["ok", "empty", "missing"]);
    assert_eq!(previews[0]["id"], pid.as_str());
    assert_eq!(previews[0]["messages"].as_array().unwrap().len(), 1);
    assert_eq!(previews[0]["messages"][0]["content"], "hello");
    assert_eq!(previews[2]["id"], MISSING);
}

/// Waits, within the deadline, for a line from `rx` that satisfies `want`.
fn line_within(rx: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool) -> String {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no expected line within {DEADLINE:?}: {e}"),
        }
    }
}

/// The lines of a pipe, on a channel.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test]
async fn cli_project_events_retention_and_node() {
    let server = Server::start(&Store::Memory);
    let api = server.api();

    let retention = ["projects", "retention", "demo"];
    assert_eq!(
        json_of(&server, &retention),
        json!({"max_sessions": 5, "max_age_days": 30})
    );
    let set = json_of(
        &server,
        &["projects", "retention", "demo", "--max-sessions", "10"],
    );
    assert_eq!(set, json!({"max_sessions": 10, "max_age_days": 30}));
    // A flag not given takes the default again, not the previous value.
    let set = json_of(
        &server,
        &["projects", "retention", "demo", "--max-age-days", "7"],
    );
    assert_eq!(set, json!({"max_sessions": 5, "max_age_days": 7}));
    assert_eq!(json_of(&server, &retention), set);
    fails_with(
        &server,
        &["projects", "retention", "demo", "--max-sessions", "51"],
        "invalid_request",
    );

    let node = json_of(&server, &["node"]);
    assert!(node["node_id"].as_str().unwrap().starts_with("node-"));
    assert_eq!(node["store"], "memory");
    assert_eq!(node["stored_sessions"], 0);
    assert!(node["resident_sessions"].is_u64());

    let mut follow = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(["projects", "events", "demo", "--count", "1"])
        .args(["--server", &server.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the cli");
    let out = lines_of(follow.stdout.take().unwrap());
    let err = lines_of(follow.stderr.take().unwrap());
    // Subscribed once it says so: every later change reaches it.
    line_within(&err, |l| l.contains("following events of project demo"));
    let id = api.create("demo", json!({})).await;
    let line = line_within(&out, |_| true);
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        event,
        json!({"event": "sessions.changed", "data": {"session_id": id, "reason": "create"}})
    );
    let status = wait_until("events verb exits after --count", DEADLINE, || {
        let exited = follow.try_wait().expect("wait");
        async move { exited }
    })
    .await;
    assert!(status.success());

    assert_eq!(json_of(&server, &["node"])["stored_sessions"], 1);
    fails_with(
        &server,
        &["projects", "events", "Bad_Project"],
        "invalid_request",
    );
}
