//! `children`: the sessions spawned from this one.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::SessionListResponse;

/// `GET /v1/sessions/{id}/children?limit=&cursor=`: the sessions whose
/// `parent_id` is this one, newest activity first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Children {
    /// Page size (default 20, 1..=100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl Operation for Children {
    const NAME: &'static str = "children";
    const ROUTE: Route = Route {
        method: Method::Get,
        path: "/children",
        input: Input::Query,
        success: 200,
    };
    const DEADLINE: Deadline = Deadline::Call;
    const MUTATES: bool = false;
    type Reply = SessionListResponse;

    fn retry_safe(&self) -> bool {
        true
    }
}
