//! `get`: the session as stored.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::SessionEnvelope;

/// `GET /v1/sessions/{id}`: the session as committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GetSession {}

impl Operation for GetSession {
    const NAME: &'static str = "get";
    const ROUTE: Route = Route {
        method: Method::Get,
        path: "",
        input: Input::None,
        success: 200,
    };
    const DEADLINE: Deadline = Deadline::Call;
    const MUTATES: bool = false;
    type Reply = SessionEnvelope;

    fn retry_safe(&self) -> bool {
        true
    }
}
