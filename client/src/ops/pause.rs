//! `pause`: no run starts until a resume (a running one finishes).

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::SessionEnvelope;

/// `POST /v1/sessions/{id}/pause` (no body): no run starts until a resume (a running one finishes); answers the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Pause {}

impl Operation for Pause {
    const NAME: &'static str = "pause";
    const ROUTE: Route = Route {
        method: Method::Post,
        path: "/pause",
        input: Input::None,
        success: 200,
    };
    const DEADLINE: Deadline = Deadline::Call;
    const MUTATES: bool = true;
    type Reply = SessionEnvelope;

    /// It sets a state: twice is once.
    fn retry_safe(&self) -> bool {
        true
    }
}
