//! `compact`: archive all but the last messages.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::CompactResponse;

/// `POST /v1/sessions/{id}/compact`: moves all but the last `keep_last` messages
/// to the archive and resets the token counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Compact {
    /// Messages to keep in the live log (0..=1000000); older ones go to the archive.
    pub keep_last: u64,
}

impl Operation for Compact {
    const NAME: &'static str = "compact";
    const ROUTE: Route = Route {
        method: Method::Post,
        path: "/compact",
        input: Input::Body,
        success: 200,
    };
    const DEADLINE: Deadline = Deadline::Call;
    const MUTATES: bool = true;
    type Reply = CompactResponse;

    /// A repeat would archive what was written since the first.
    fn retry_safe(&self) -> bool {
        false
    }
}
