//! `archive`: a page of the archive, from the store.

use sessiond_client::ErrorCode;
use sessiond_client::model::HistoryResponse;
use sessiond_client::ops::Archive;

use super::{Here, Serve};
use crate::api::views::message_view;
use crate::config::Limits;
use crate::error::Result;

impl Serve for Archive {
    const ERRORS: &'static [(ErrorCode, &'static str)] = &[(
        ErrorCode::InvalidRequest,
        "`limit` is out of 1 to the page limit (1000 by default)",
    )];

    fn check(&self, limits: &Limits) -> Result<()> {
        super::history::page_limit(limits, self.limit).map(drop)
    }

    async fn serve(self, here: Here<'_>) -> Result<HistoryResponse> {
        let limit = super::history::page_limit(&here.node.config().limits, self.limit)?;
        let after = self.after_seq.unwrap_or(0);
        let page = here
            .node
            .archive(here.tenant, here.id, after, limit)
            .await?;
        Ok(HistoryResponse {
            messages: page.iter().map(message_view).collect(),
        })
    }
}
