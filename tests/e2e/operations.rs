//! Every session operation on every transport: the same script of operations runs
//! on four sessions, each through one transport (HTTP and the WebSocket on the node
//! holding the sessions, HTTP and the WebSocket on a second node, which forwards
//! them), and each step must answer the same on all four. Two real nodes on one
//! real Redis; the requests are the client crate's.

use serde_json::{Value, json};
use sessiond_client::ops::{self, Operation};
use sessiond_client::ws::SessionSocket;
use sessiond_client::{Client, Error};

use crate::harness::*;
use crate::many_nodes::node_with;

/// One transport to one session.
enum Via {
    Http(Client),
    Ws(Box<SessionSocket>),
}

struct Target {
    name: &'static str,
    session: String,
    via: Via,
}

impl Target {
    async fn run<O: Operation>(&mut self, op: &O) -> Value {
        let answer = match &mut self.via {
            Via::Http(client) => client.call(&self.session, op).await,
            Via::Ws(socket) => socket.call(op).await,
        };
        let value = match answer {
            Ok(reply) => json!({ "ok": serde_json::to_value(&reply).unwrap() }),
            Err(Error::Api {
                status,
                code,
                message,
                error_id,
            }) => {
                assert!(error_id.is_some(), "{} {}: an error id", self.name, O::NAME);
                json!({ "error": { "status": status, "code": code, "message": message } })
            }
            Err(e) => panic!("{} {}: {e}", self.name, O::NAME),
        };
        normalize(value, &self.session)
    }
}

/// Replaces what differs between sessions by nature: the session's own id, other
/// ids (runs, messages), timestamps and error ids.
fn normalize(value: Value, session: &str) -> Value {
    match value {
        Value::String(s) => {
            let s = s.replace(session, "<session>");
            let looks_like = |s: &str, len: usize, dashes: &[usize]| {
                s.len() == len && dashes.iter().all(|&i| s.as_bytes()[i] == b'-')
            };
            if looks_like(&s, 36, &[8, 13, 18, 23]) {
                Value::String("<uuid>".into())
            } else if s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T' {
                Value::String("<time>".into())
            } else {
                Value::String(s)
            }
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| normalize(v, session)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, normalize(v, session)))
                .collect(),
        ),
        other => other,
    }
}

/// The four targets, and the operations run on them so far.
struct Table {
    targets: Vec<Target>,
    seen: std::collections::BTreeSet<&'static str>,
}

/// Runs `op` on every target; every answer must be the same.
async fn same_everywhere<O: Operation>(table: &mut Table, op: O) -> Value {
    table.seen.insert(O::NAME);
    let mut answers = Vec::new();
    for t in table.targets.iter_mut() {
        answers.push((t.name, t.run(&op).await));
    }
    let (first_name, first) = &answers[0];
    for (name, answer) in &answers[1..] {
        assert_eq!(
            answer,
            first,
            "{} answered differently over {name} than over {first_name}",
            O::NAME
        );
    }
    first.clone()
}

async fn settled(client: &Client, id: &str, seq: u64) {
    wait_until("session settled", DEADLINE, || async {
        let s = client.get_session(id).await.ok()?.session;
        (s.status != "running" && s.last_seq >= seq).then_some(())
    })
    .await
}

#[tokio::test]
async fn every_operation_answers_the_same_over_http_websocket_and_a_forward() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        node_with(&redis.url(), "ops-a", dir.path(), ""),
        node_with(&redis.url(), "ops-b", dir.path(), ""),
    );
    let (on_a, on_b) = (Client::new(&a.url).unwrap(), Client::new(&b.url).unwrap());
    let mut ids = Vec::new();
    for _ in 0..4 {
        let mut options = serde_json::Map::new();
        options.insert("reply".into(), json!("pong"));
        options.insert("chunks".into(), json!(2));
        let req = sessiond_client::model::CreateSessionRequest {
            driver_options: Some(options),
            ..Default::default()
        };
        let id = on_a.create_session("ops", &req).await.unwrap().session.id;
        // A change through node a makes it the holder; node b forwards from now on.
        on_a.pause(&id).await.unwrap();
        on_a.resume(&id).await.unwrap();
        ids.push(id);
    }
    let targets = vec![
        Target {
            name: "http on the holder",
            session: ids[0].clone(),
            via: Via::Http(on_a.clone()),
        },
        Target {
            name: "websocket on the holder",
            session: ids[1].clone(),
            via: Via::Ws(Box::new(on_a.websocket(&ids[1], None).await.unwrap())),
        },
        Target {
            name: "http forwarded",
            session: ids[2].clone(),
            via: Via::Http(on_b.clone()),
        },
        Target {
            name: "websocket forwarded",
            session: ids[3].clone(),
            via: Via::Ws(Box::new(on_b.websocket(&ids[3], None).await.unwrap())),
        },
    ];
    let mut targets = Table {
        targets,
        seen: Default::default(),
    };
    let forwards_before = b
        .api()
        .metric("sessiond_forwards_total{outcome=\"answered\"}")
        .await;

    same_everywhere(&mut targets, ops::GetSession {}).await;
    let send = ops::SendPrompt {
        prompt: "one".into(),
        idempotency_key: Some("k-1".into()),
    };
    let receipt = same_everywhere(&mut targets, send.clone()).await;
    assert_eq!(receipt["ok"]["message_seq"], 1, "{receipt}");
    for id in &ids {
        settled(&on_a, id, 3).await;
    }
    // A repeat of the key answers the first receipt.
    assert_eq!(same_everywhere(&mut targets, send).await, receipt);
    let whole = same_everywhere(&mut targets, ops::History::default()).await;
    assert_eq!(
        whole["ok"]["messages"].as_array().unwrap().len(),
        3,
        "{whole}"
    );
    let tail = ops::History {
        tail: Some(2),
        ..Default::default()
    };
    let tail = same_everywhere(&mut targets, tail).await;
    assert_eq!(tail["ok"]["messages"][0]["seq"], 2);
    let back = ops::History {
        before_seq: Some(3),
        limit: Some(1),
        ..Default::default()
    };
    let back = same_everywhere(&mut targets, back).await;
    assert_eq!(back["ok"]["messages"][0]["seq"], 2);
    let bad_page = ops::History {
        tail: Some(1),
        after_seq: Some(1),
        ..Default::default()
    };
    let refused = same_everywhere(&mut targets, bad_page).await;
    assert_eq!(refused["error"]["code"], "invalid_request");
    let steer = ops::SteerPrompt {
        prompt: "two".into(),
        idempotency_key: None,
    };
    same_everywhere(&mut targets, steer).await;
    for id in &ids {
        settled(&on_a, id, 6).await;
    }
    let idle = same_everywhere(&mut targets, ops::Abort::default()).await;
    assert_eq!(idle["ok"]["status"], "no-active-run");
    same_everywhere(&mut targets, ops::Pause {}).await;
    same_everywhere(&mut targets, ops::Resume {}).await;
    let protect = ops::PatchSession {
        label: Some("kept".into()),
        protected: Some(true),
        ..Default::default()
    };
    let patched = same_everywhere(&mut targets, protect).await;
    assert_eq!(patched["ok"]["session"]["protected"], true);
    let no_reset = same_everywhere(&mut targets, ops::Reset {}).await;
    assert_eq!(no_reset["error"]["code"], "protected", "{no_reset}");
    let no_delete = same_everywhere(&mut targets, ops::DeleteSession::default()).await;
    assert_eq!(no_delete["error"]["code"], "protected", "{no_delete}");
    let lift = ops::PatchSession {
        protected: Some(false),
        ..Default::default()
    };
    same_everywhere(&mut targets, lift).await;
    let compacted = same_everywhere(&mut targets, ops::Compact { keep_last: 2 }).await;
    assert_eq!(compacted["ok"]["archived"], 4, "{compacted}");
    let archive = same_everywhere(&mut targets, ops::Archive::default()).await;
    assert_eq!(archive["ok"]["messages"].as_array().unwrap().len(), 4);
    same_everywhere(&mut targets, ops::Children::default()).await;
    let mut answer = serde_json::Map::new();
    answer.insert("outcome".into(), json!("cancelled"));
    let permission = ops::AnswerPermission {
        request_id: "r-1".into(),
        answer,
    };
    let refused = same_everywhere(&mut targets, permission).await;
    assert_eq!(refused["error"]["code"], "conflict", "{refused}");
    let reset = same_everywhere(&mut targets, ops::Reset {}).await;
    assert_eq!(reset["ok"]["session"]["archived_upto"], 6);
    let deleted = ops::DeleteSession {
        archive: Some(true),
    };
    assert_eq!(
        same_everywhere(&mut targets, deleted).await,
        json!({"ok": null})
    );
    let gone = same_everywhere(&mut targets, ops::GetSession {}).await;
    assert_eq!(gone["error"]["code"], "not_found");

    // Every operation was run, and node b did forward.
    let all: std::collections::BTreeSet<_> = ops::ALL.into_iter().collect();
    assert_eq!(
        targets.seen, all,
        "every operation of the client is in this table"
    );
    let forwards = b
        .api()
        .metric("sessiond_forwards_total{outcome=\"answered\"}")
        .await;
    assert!(
        forwards - forwards_before >= 20.0,
        "node b forwarded {forwards} (before: {forwards_before})"
    );
}

/// The SDK's socket gets an answer for a frame the server refuses before reading
/// it (over the body limit, answered with `id: null`), and stays usable.
#[tokio::test]
async fn the_sdk_socket_is_answered_for_a_frame_too_large_to_read() {
    let server = Server::start(&Store::Memory);
    let client = Client::new(&server.url).unwrap();
    let req = sessiond_client::model::CreateSessionRequest::default();
    let id = client.create_session("ops", &req).await.unwrap().session.id;
    let mut socket = client.websocket(&id, None).await.unwrap();
    // Over the 2 MiB body limit, under twice it (past that the socket closes).
    let huge = ops::SendPrompt {
        prompt: "a".repeat(3 << 20),
        idempotency_key: None,
    };
    let refused = tokio::time::timeout(DEADLINE, socket.call(&huge))
        .await
        .expect("an answer, not a hang");
    assert!(
        matches!(
            refused,
            Err(Error::Api {
                code: sessiond_client::ErrorCode::PayloadTooLarge,
                ..
            })
        ),
        "{refused:?}"
    );
    let got = socket.call(&ops::GetSession {}).await.unwrap();
    assert_eq!(got.session.id, id);
}
