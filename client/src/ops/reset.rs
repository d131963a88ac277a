//! `reset`: a fresh transcript, the old one archived.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::SessionEnvelope;

/// `POST /v1/sessions/{id}/reset` (no body): ends the active run, then starts a
/// fresh transcript under the same id and key (the old one goes to the archive).
/// Refused with 409 `protected` while the session is protected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Reset {}

impl Operation for Reset {
    const NAME: &'static str = "reset";
    const ROUTE: Route = Route {
        method: Method::Post,
        path: "/reset",
        input: Input::None,
        success: 200,
    };
    const DEADLINE: Deadline = Deadline::RunEnd;
    const MUTATES: bool = true;
    type Reply = SessionEnvelope;

    /// A repeat would archive what was written since the first.
    fn retry_safe(&self) -> bool {
        false
    }
}
