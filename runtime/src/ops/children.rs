//! `children`: the sessions whose parent is this one, from the store.

use sessiond_client::ErrorCode;
use sessiond_client::model::SessionListResponse;
use sessiond_client::ops::Children;

use super::{Here, Serve};
use crate::api::validate;
use crate::api::views::session_view;
use crate::config::Limits;
use crate::error::Result;
use crate::node::ListQuery;

/// Page size of a list when none is given, and the most it may be.
pub(crate) const DEFAULT_LIST_PAGE: usize = 20;
/// The largest list page.
pub(crate) const MAX_LIST_PAGE: usize = 100;

/// A list's page size, checked.
pub(crate) fn list_limit(limit: Option<usize>) -> Result<usize> {
    validate::within(
        "limit",
        limit.unwrap_or(DEFAULT_LIST_PAGE),
        1..=MAX_LIST_PAGE,
    )
}

impl Serve for Children {
    const ERRORS: &'static [(ErrorCode, &'static str)] =
        &[(ErrorCode::InvalidRequest, "`limit` is out of 1 to 100")];

    fn check(&self, _limits: &Limits) -> Result<()> {
        list_limit(self.limit).map(drop)
    }

    async fn serve(self, here: Here<'_>) -> Result<SessionListResponse> {
        let parent = here.node.get_session(here.tenant, here.id).await?;
        let query = ListQuery {
            parent_id: Some(here.id),
            limit: list_limit(self.limit)?,
            cursor: self.cursor,
            ..ListQuery::default()
        };
        let page = here
            .node
            .list_sessions(here.tenant, &parent.project, query)
            .await?;
        Ok(SessionListResponse {
            sessions: page.sessions.iter().map(session_view).collect(),
            next_cursor: page.next_cursor,
        })
    }
}
