//! Every operation decodes to the same value from its three forms: the HTTP
//! request the client crate makes, the WebSocket frame it sends, and the JSON a
//! node forwards to the holder. (That each form then gets the same answer is the
//! end-to-end table in `tests/e2e/operations.rs`.)

use axum::http::HeaderMap;
use serde_json::json;
use sessiond_client::Operation;
use sessiond_client::http::{encode, fields};
use sessiond_client::ops::*;

use super::{Serve, by_name};
use crate::api::operation::decode_http;

const SESSION: &str = "01a1fca6-b0a9-735c-9e7a-bea7febb46e1";

fn every_form_decodes_to<O: Serve>(op: O) {
    // HTTP, as `Client::call` sends it.
    let req = encode(SESSION, &op).expect("encodable");
    let mut params = vec![("id".to_string(), req.segments[2].clone())];
    let template: Vec<&str> = O::ROUTE.path.split('/').filter(|s| !s.is_empty()).collect();
    for (i, segment) in template.iter().enumerate() {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            params.push((name.to_string(), req.segments[3 + i].clone()));
        }
    }
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    let body = req
        .body
        .as_ref()
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let (id, over_http) =
        decode_http::<O>(params, req.query.as_deref(), &headers, &body).expect("decodes");
    assert_eq!(id.to_string(), SESSION);
    assert_eq!(over_http, op, "{} over HTTP", O::NAME);
    // The WebSocket frame's fields, as `SessionSocket::call` sends them.
    let frame = fields(&op).unwrap();
    let decoded = by_name(O::NAME)
        .expect("listed")
        .decode_frame(frame)
        .expect("decodes");
    let over_ws = decoded.as_any().downcast_ref::<O>().expect("the same type");
    assert_eq!(over_ws, &op, "{} over the WebSocket", O::NAME);
    // The forwarded form.
    let forwarded: O = serde_json::from_str(&serde_json::to_string(&op).unwrap()).unwrap();
    assert_eq!(forwarded, op, "{} forwarded", O::NAME);
}

#[test]
fn every_operation_decodes_alike_from_http_websocket_and_forward() {
    let mut answer = serde_json::Map::new();
    answer.insert("outcome".into(), json!("selected"));
    answer.insert("option_id".into(), json!("allow"));
    let mut names = Vec::new();
    macro_rules! check {
        ($($op:expr),* $(,)?) => {$(
            let op = $op;
            names.push(name_of(&op));
            every_form_decodes_to(op);
        )*};
    }
    fn name_of<O: Operation>(_: &O) -> &'static str {
        O::NAME
    }
    check!(
        GetSession {},
        SendPrompt {
            prompt: "héllo \"world\"".into(),
            idempotency_key: Some("k:1".into()),
        },
        SteerPrompt {
            prompt: "now".into(),
            idempotency_key: None,
        },
        Abort {
            run_id: Some(uuid::Uuid::now_v7()),
        },
        Pause {},
        Resume {},
        PatchSession {
            label: Some("l".into()),
            env: Some([("A".to_string(), "b".to_string())].into()),
            max_turns: Some(3),
            protected: Some(true),
            ..PatchSession::default()
        },
        Reset {},
        Compact { keep_last: 7 },
        DeleteSession {
            archive: Some(true),
        },
        History {
            before_seq: Some(40),
            limit: Some(5),
            ..History::default()
        },
        Archive {
            after_seq: Some(3),
            limit: Some(2),
        },
        Children {
            limit: Some(2),
            cursor: Some("17.x".into()),
        },
        AnswerPermission {
            request_id: "req 1/2".into(),
            answer,
        },
    );
    assert_eq!(names, ALL.to_vec(), "every operation, in the list's order");
}

#[test]
fn defaults_survive_every_form_too() {
    every_form_decodes_to(History::default());
    every_form_decodes_to(History {
        tail: Some(3),
        ..History::default()
    });
    every_form_decodes_to(Abort::default());
    every_form_decodes_to(DeleteSession::default());
    every_form_decodes_to(PatchSession::default());
}
