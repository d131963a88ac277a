//! `send`: a prompt, durable before the answer, run after any queued ones.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::SendResponse;

/// `POST /v1/sessions/{id}/messages`: appends a prompt (durable once answered)
/// and runs it after any queued ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendPrompt {
    /// The prompt.
    pub prompt: String,
    /// Makes a retried send safe: the first answer is returned again and nothing
    /// runs twice (1 to 128 of `A-Za-z0-9._:-`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Operation for SendPrompt {
    const NAME: &'static str = "send";
    const ROUTE: Route = Route {
        method: Method::Post,
        path: "/messages",
        input: Input::Body,
        success: 202,
    };
    const DEADLINE: Deadline = Deadline::Call;
    const MUTATES: bool = true;
    type Reply = SendResponse;

    /// Only with an idempotency key: without one a repeat appends the prompt again.
    fn retry_safe(&self) -> bool {
        self.idempotency_key.is_some()
    }
}
