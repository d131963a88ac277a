//! The OpenAPI document: docs/openapi.json is exactly what the code generates,
//! it is a well-formed OpenAPI 3.1 document, every session operation is there with
//! its route, every error response is the error shape and names its codes, and
//! the router serves every documented route.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use sessiond_client::ops::{self, Input};
use sessiond_client::{ErrorCode, Operation};
use sessiond_runtime::api::openapi::render;
use sessiond_runtime::api::{AppState, router};
use sessiond_runtime::node::Drivers;
use sessiond_runtime::{Config, Node};
use tower::ServiceExt;

const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
const REGENERATE: &str = "cargo run --locked -- openapi > docs/openapi.json";

fn generated() -> Value {
    serde_json::from_str(&render().unwrap()).unwrap()
}

/// Each operation (path, method, object) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            all.push((path.clone(), method.clone(), op.clone()));
        }
    }
    all
}

#[test]
fn docs_openapi_json_is_the_generated_document() {
    let generated = render().unwrap();
    let docs = std::fs::read_to_string(DOCS).unwrap_or_default();
    if docs != generated {
        let line = docs
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "the length".to_string(), |n| format!("line {}", n + 1));
        panic!(
            "docs/openapi.json differs from the generated document (at {line}); regenerate it: {REGENERATE}"
        );
    }
}

#[test]
fn the_document_is_openapi_3_1_and_round_trips_through_utoipas_types() {
    let text = render().unwrap();
    let parsed: utoipa::openapi::OpenApi = serde_json::from_str(&text).unwrap();
    // Compared as text: the document read back writes the same bytes.
    let again = parsed.to_pretty_json().unwrap() + "\n";
    assert!(
        again == text,
        "utoipa's types read the document back unchanged"
    );
    assert_eq!(generated()["openapi"], "3.1.0");
    assert_eq!(render().unwrap(), text, "the same bytes on every render");
}

/// The operation `O` is in the document as its route says.
fn has_route<O: Operation>(doc: &Value) {
    let path = format!("/v1/sessions/{{id}}{}", O::ROUTE.path);
    let method = O::ROUTE.method.as_str().to_lowercase();
    let op = &doc["paths"][&path][&method];
    assert_eq!(
        op["operationId"],
        O::NAME,
        "{} {path}",
        O::ROUTE.method.as_str()
    );
    let success = O::ROUTE.success.to_string();
    assert!(
        op["responses"][&success].is_object(),
        "{}: {success}",
        O::NAME
    );
    let in_path: BTreeSet<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "path")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect();
    assert_eq!(in_path, expected, "{}: path parameters", O::NAME);
    let body = &op["requestBody"];
    match O::ROUTE.input {
        Input::Body => assert_eq!(body["required"], true, "{}", O::NAME),
        Input::OptionalBody => assert_eq!(body["required"], false, "{}", O::NAME),
        Input::None | Input::Query => assert!(body.is_null(), "{}: no body", O::NAME),
    }
    let mut codes = vec!["400", "404", "500", "503"];
    if O::MUTATES {
        codes.push("504");
    }
    if matches!(O::ROUTE.input, Input::Body | Input::OptionalBody) {
        codes.push("413");
    }
    for code in codes {
        assert!(op["responses"][code].is_object(), "{}: {code}", O::NAME);
    }
}

#[test]
fn every_session_operation_is_there_with_its_route() {
    let doc = generated();
    let checked = [
        (
            ops::GetSession::NAME,
            has_route::<ops::GetSession> as fn(&Value),
        ),
        (ops::SendPrompt::NAME, has_route::<ops::SendPrompt>),
        (ops::SteerPrompt::NAME, has_route::<ops::SteerPrompt>),
        (ops::Abort::NAME, has_route::<ops::Abort>),
        (ops::Pause::NAME, has_route::<ops::Pause>),
        (ops::Resume::NAME, has_route::<ops::Resume>),
        (ops::PatchSession::NAME, has_route::<ops::PatchSession>),
        (ops::Reset::NAME, has_route::<ops::Reset>),
        (ops::Compact::NAME, has_route::<ops::Compact>),
        (ops::DeleteSession::NAME, has_route::<ops::DeleteSession>),
        (ops::History::NAME, has_route::<ops::History>),
        (ops::Archive::NAME, has_route::<ops::Archive>),
        (ops::Children::NAME, has_route::<ops::Children>),
        (
            ops::AnswerPermission::NAME,
            has_route::<ops::AnswerPermission>,
        ),
    ];
    let names: Vec<&str> = checked.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        ops::ALL,
        "this list follows sessiond_client::ops::ALL"
    );
    for (_, check) in checked {
        check(&doc);
    }
    // The operations that can be refused for the session's state say so.
    let conflict = |path: &str, method: &str| {
        doc["paths"][path][method]["responses"]["409"]["description"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(conflict("/v1/sessions/{id}", "delete").contains("`protected`"));
    assert!(conflict("/v1/sessions/{id}/reset", "post").contains("`protected`"));
    assert!(conflict("/v1/sessions/{id}/messages", "post").contains("`conflict`"));
    assert!(doc["paths"]["/v1/sessions/{id}"]["get"]["responses"]["409"].is_null());
}

#[test]
fn every_error_response_is_the_error_shape_and_names_its_codes() {
    let doc = generated();
    let codes = ErrorCode::SENT;
    let mut errors = 0;
    for (path, method, op) in operations(&doc) {
        for (status, response) in op["responses"].as_object().unwrap() {
            let status: u16 = status.parse().unwrap();
            if status < 400 {
                continue;
            }
            errors += 1;
            let at = format!("{method} {path} {status}");
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{at}"
            );
            let description = response["description"].as_str().unwrap();
            let named: Vec<ErrorCode> = description
                .split("\n\n")
                .map(|part| {
                    let code = part.strip_prefix('`').and_then(|p| p.split_once("`: "));
                    let code = code
                        .unwrap_or_else(|| panic!("{at}: {part:?} names no code"))
                        .0;
                    *codes.iter().find(|c| c.as_str() == code).unwrap()
                })
                .collect();
            for code in named {
                assert_eq!(code.http_status(), status, "{at}: {code}");
            }
        }
        if !matches!(path.as_str(), "/healthz" | "/metrics") {
            assert!(op["responses"]["500"].is_object(), "{method} {path}: 500");
        }
    }
    assert!(errors > 100, "{errors} error responses");
    assert!(doc["components"]["responses"]["MethodNotAllowed"].is_object());
}

#[test]
fn every_reference_resolves() {
    fn walk(value: &Value, doc: &Value) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    let pointer = target.strip_prefix('#').expect("a local reference");
                    assert!(doc.pointer(pointer).is_some(), "{target} resolves");
                }
                map.values().for_each(|v| walk(v, doc));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, doc)),
            _ => {}
        }
    }
    let doc = generated();
    walk(&doc, &doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_serves_every_documented_route_and_the_document() {
    let node = Node::start(Config::for_tests(), Drivers::with_scripted())
        .await
        .unwrap();
    let app = router(AppState::new(node.clone()));
    let served = app
        .clone()
        .oneshot(
            Request::get("/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let body = axum::body::to_bytes(served.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(std::str::from_utf8(&body).unwrap(), render().unwrap());

    let session = uuid::Uuid::now_v7().to_string();
    for (path, method, op) in operations(&generated()) {
        let uri = path
            .replace("{id}", &session)
            .replace("{project}", "docs")
            .replace("{key}", "k")
            .replace("{request_id}", "r");
        let mut request = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(uri);
        let body = if op["requestBody"].is_object() {
            request = request.header("content-type", "application/json");
            Body::from("{}")
        } else {
            Body::empty()
        };
        let response = app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("no such route"), "{method} {path}: {text}");
        }
    }
    // Every session operation's method, on its path, reached its handler above;
    // the same method on a path it is not served on is refused.
    let response = app
        .oneshot(
            Request::builder()
                .method("PUT")
                .uri(format!("/v1/sessions/{session}/messages"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    node.shutdown().await;
}

#[test]
fn the_spec_validator_accepts_the_document_where_it_is_installed() {
    // openapi-spec-validator (PyPI) is used when the machine has it; the test needs
    // no network and passes without it, saying so.
    let available = std::process::Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!(
            "openapi-spec-validator is not installed: the document's structure is checked by the other tests only"
        );
        return;
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), render().unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refuses the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
