//! `archive`: a page of what compact, reset and delete moved out of the transcript.

use serde::{Deserialize, Serialize};

use super::{Deadline, Input, Method, Operation, Route};
use crate::model::HistoryResponse;

/// `GET /v1/sessions/{id}/archive?after_seq=&limit=`: what compact, reset and
/// `DELETE ?archive=true` moved out of the transcript, with the original seqs, as
/// long as it is kept (`archive_ttl`; readable after a delete).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Archive {
    /// Only messages with a larger seq (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<u64>,
    /// Most messages (default 100, at most the server's page limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl Operation for Archive {
    const NAME: &'static str = "archive";
    const ROUTE: Route = Route {
        method: Method::Get,
        path: "/archive",
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
