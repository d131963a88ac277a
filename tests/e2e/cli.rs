//! The client verbs of the binary against a real server.

use std::process::Command;

use serde_json::Value;

use crate::harness::*;

fn cli(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .arg("sessions")
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

fn cli_json(server: &Server, args: &[&str]) -> Value {
    let (ok, out, err) = cli(server, args);
    assert!(ok, "sessiond sessions {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test]
async fn cli_verbs_drive_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&Store::Sqlite(dir.path().join("data")));
    let created = cli_json(
        &server,
        &[
            "create",
            "--project",
            "demo",
            "--key",
            "k1",
            "--options",
            r#"{"reply":"pong"}"#,
        ],
    );
    let id = created["session"]["id"].as_str().unwrap().to_string();
    let got = cli_json(&server, &["get", &id]);
    assert_eq!(got["session"]["key"], "k1");

    let receipt = cli_json(&server, &["send", &id, "ping"]);
    assert_eq!(receipt["message_seq"], 1);

    // tail follows the stream until the session is idle after seq 2.
    let (ok, out, err) = cli(
        &server,
        &["tail", &id, "--after-seq", "0", "--until-idle-after", "2"],
    );
    assert!(ok, "tail failed: {err}");
    assert!(out.contains("#1 user: ping"), "{out}");
    assert!(out.contains("#2 assistant: pong"), "{out}");

    let (ok, out, _) = cli(&server, &["history", &id]);
    assert!(ok);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["#1 user: ping", "#2 assistant: pong"]
    );
    let (ok, out, _) = cli(&server, &["history", &id, "--json", "--after-seq", "1"]);
    assert!(ok);
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["seq"], 2);

    let abort = cli_json(&server, &["abort", &id]);
    assert_eq!(abort["status"], "no-active-run");

    // Errors carry the API's code and exit non-zero.
    let (ok, _, err) = cli(&server, &["get", "01a1fca6-b0a9-735c-9e7a-bea7febb46e1"]);
    assert!(!ok);
    assert!(err.contains("not_found"), "{err}");
    let (ok, _, err) = cli(
        &server,
        &["create", "--project", "demo", "--options", "not json"],
    );
    assert!(!ok);
    assert!(err.contains("--options"), "{err}");
}
