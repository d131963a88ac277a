//! `steer`: end the active run, then run this prompt before any queued one.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::SteerResponse;

/// `POST /v1/sessions/{id}/steer`: ends the active run (waiting up to the steer
/// deadline), then runs this prompt before any queued one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SteerPrompt {
    /// The prompt.
    pub prompt: String,
    /// As for a send: a repeat answers the first receipt and steers nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Operation for SteerPrompt {
    const NAME: &'static str = "steer";
    const ROUTE: Route = Route {
        method: Method::Post,
        path: "/steer",
        input: Input::Body,
        success: 202,
    };
    const DEADLINE: Deadline = Deadline::RunEnd;
    const MUTATES: bool = true;
    type Reply = SteerResponse;

    /// Only with an idempotency key.
    fn retry_safe(&self) -> bool {
        self.idempotency_key.is_some()
    }
}
