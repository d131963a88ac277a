//! `abort`: cancel the active run (or one named run).

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::AbortResponse;

/// `POST /v1/sessions/{id}/abort` (the body may be left out): cancels the active
/// run, or only `run_id`; answered once the run has ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Abort {
    /// Only this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<uuid::Uuid>,
}

impl Operation for Abort {
    const NAME: &'static str = "abort";
    const ROUTE: Route = Route {
        method: Method::Post,
        path: "/abort",
        input: Input::OptionalBody,
        success: 200,
    };
    const DEADLINE: Deadline = Deadline::Abort;
    const MUTATES: bool = true;
    type Reply = AbortResponse;

    /// Only an abort of a named run: "the active run" may be another one by the
    /// time it is repeated.
    fn retry_safe(&self) -> bool {
        self.run_id.is_some()
    }
}
