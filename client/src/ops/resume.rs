//! `resume`: queued prompts may run again.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::SessionEnvelope;

/// `POST /v1/sessions/{id}/resume` (no body): queued prompts may run again; answers the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Resume {}

impl Operation for Resume {
    const NAME: &'static str = "resume";
    const ROUTE: Route = Route {
        method: Method::Post,
        path: "/resume",
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
