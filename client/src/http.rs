//! How an operation travels over HTTP: the method, the path (with the fields
//! named in it), and the other fields in the body or the query string, as its
//! [`Route`](crate::ops::Route) says. The server decodes exactly this.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ops::{Input, Method, Operation};

/// An operation as an HTTP request, before it meets a server's base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The path's segments after the base URL, not yet percent-encoded
    /// (`["v1", "sessions", "<id>", "messages"]`).
    pub segments: Vec<String>,
    /// The query string (without `?`), for a query operation with fields set.
    pub query: Option<String>,
    /// The JSON body, for a body operation.
    pub body: Option<Value>,
}

impl HttpRequest {
    /// The path as text, segments joined with `/` (not percent-encoded).
    pub fn path(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }
}

/// The fields of `op` as a JSON object.
pub fn fields<O: Operation>(op: &O) -> Result<Map<String, Value>> {
    match serde_json::to_value(op) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(other) => Err(Error::Usage(format!(
            "operation {} is not a JSON object: {other}",
            O::NAME
        ))),
        Err(e) => Err(Error::Usage(format!(
            "operation {} cannot be encoded: {e}",
            O::NAME
        ))),
    }
}

/// The HTTP request of `op` on session `session_id`.
pub fn encode<O: Operation>(session_id: &str, op: &O) -> Result<HttpRequest> {
    let route = O::ROUTE;
    let mut fields = fields(op)?;
    let mut segments = vec!["v1".to_string(), "sessions".into(), session_id.to_string()];
    for segment in route.path.split('/').filter(|s| !s.is_empty()) {
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => match fields.remove(name) {
                Some(Value::String(value)) => segments.push(value),
                _ => {
                    return Err(Error::Usage(format!(
                        "operation {}: path field '{name}' must be a string",
                        O::NAME
                    )));
                }
            },
            None => segments.push(segment.to_string()),
        }
    }
    let (mut query, mut body) = (None, None);
    match route.input {
        Input::None => {}
        Input::Body | Input::OptionalBody => body = Some(Value::Object(fields)),
        Input::Query => {
            let text = serde_urlencoded::to_string(op).map_err(|e| {
                Error::Usage(format!("operation {} cannot be a query: {e}", O::NAME))
            })?;
            query = (!text.is_empty()).then_some(text);
        }
    }
    Ok(HttpRequest {
        method: route.method,
        segments,
        query,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{AnswerPermission, DeleteSession, History, Pause, SendPrompt};
    use serde_json::json;

    #[test]
    fn each_input_kind_lands_where_its_route_says() {
        let send = encode(
            "s1",
            &SendPrompt {
                prompt: "hi".into(),
                idempotency_key: None,
            },
        )
        .unwrap();
        assert_eq!(send.method, Method::Post);
        assert_eq!(send.path(), "/v1/sessions/s1/messages");
        assert_eq!(send.body, Some(json!({"prompt": "hi"})));
        let page = History {
            before_seq: Some(9),
            limit: Some(3),
            ..History::default()
        };
        let history = encode("s1", &page).unwrap();
        assert_eq!(history.query.as_deref(), Some("before_seq=9&limit=3"));
        assert_eq!(history.body, None);
        let all = encode("s1", &History::default()).unwrap();
        assert_eq!(all.query, None);
        let delete = encode(
            "s1",
            &DeleteSession {
                archive: Some(true),
            },
        )
        .unwrap();
        assert_eq!(
            (delete.method, delete.query.as_deref()),
            (Method::Delete, Some("archive=true"))
        );
        let pause = encode("s1", &Pause {}).unwrap();
        assert_eq!(
            (pause.path(), pause.body),
            ("/v1/sessions/s1/pause".into(), None)
        );
        let mut answer = Map::new();
        answer.insert("outcome".into(), json!("cancelled"));
        let permission = encode(
            "s1",
            &AnswerPermission {
                request_id: "r/1".into(),
                answer,
            },
        )
        .unwrap();
        assert_eq!(permission.segments.last().map(String::as_str), Some("r/1"));
        assert_eq!(permission.body, Some(json!({"outcome": "cancelled"})));
    }
}
