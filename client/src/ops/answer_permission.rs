//! `answer_permission`: answer a permission request a run waits on.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::PermissionAnswered;

/// `POST /v1/sessions/{id}/permissions/{request_id}` with the driver's answer as
/// the body (acp: `{"outcome": "selected", "option_id": ...}` or
/// `{"outcome": "cancelled"}`). Over the WebSocket the frame carries `request_id`
/// beside the answer's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnswerPermission {
    /// The request answered (in the path over HTTP).
    pub request_id: String,
    /// The answer, as the session's driver defines it.
    #[serde(flatten)]
    pub answer: serde_json::Map<String, serde_json::Value>,
}

impl Operation for AnswerPermission {
    const NAME: &'static str = "answer_permission";
    const ROUTE: Route = Route {
        method: Method::Post,
        path: "/permissions/{request_id}",
        input: Input::Body,
        success: 200,
    };
    const DEADLINE: Deadline = Deadline::Call;
    const MUTATES: bool = true;
    type Reply = PermissionAnswered;

    /// The request is answered once; a repeat finds none pending.
    fn retry_safe(&self) -> bool {
        false
    }
}
