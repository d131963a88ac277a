//! `history`: a page of the transcript, forwards or backwards.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::HistoryResponse;

/// `GET /v1/sessions/{id}/messages`: a page of the committed transcript, oldest
/// first. Three ways to page:
/// - `after_seq=N&limit=M` (default): the first M messages after N;
/// - `before_seq=N&limit=M`: the M messages just before N (paging backwards);
/// - `tail=M`: the last M messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Only messages with a larger seq (default 0: from the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<u64>,
    /// Only messages with a smaller seq, the last `limit` of them (not with
    /// `after_seq` or `tail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_seq: Option<u64>,
    /// The last this many messages (1..= the page limit; not with `after_seq`,
    /// `before_seq` or `limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<usize>,
    /// Most messages (default 100, at most the server's page limit, 1000 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl Operation for History {
    const NAME: &'static str = "history";
    const ROUTE: Route = Route {
        method: Method::Get,
        path: "/messages",
        input: Input::Query,
        success: 200,
    };
    const DEADLINE: Deadline = Deadline::Call;
    const MUTATES: bool = false;
    type Reply = HistoryResponse;

    fn retry_safe(&self) -> bool {
        true
    }
}
