//! `delete`: remove the session.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};

/// `DELETE /v1/sessions/{id}?archive=`: cancels any run and removes the session;
/// answers 204. Refused with 409 `protected` while the session is protected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeleteSession {
    /// Keep the transcript in the archive for the archive TTL (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<bool>,
}

impl Operation for DeleteSession {
    const NAME: &'static str = "delete";
    const ROUTE: Route = Route {
        method: Method::Delete,
        path: "",
        input: Input::Query,
        success: 204,
    };
    const DEADLINE: Deadline = Deadline::Call;
    const MUTATES: bool = true;
    type Reply = ();

    /// A repeat finds the session gone (404).
    fn retry_safe(&self) -> bool {
        false
    }
}
