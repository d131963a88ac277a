//! `compact`: `keep_last` checked, then the session's actor archives the rest.

use sessiond_client::ErrorCode;
use sessiond_client::model::CompactResponse;
use sessiond_client::ops::Compact;

use super::{Here, Serve};
use crate::api::validate;
use crate::api::views::compact_response;
use crate::config::Limits;
use crate::error::Result;

impl Serve for Compact {
    const ERRORS: &'static [(ErrorCode, &'static str)] =
        &[(ErrorCode::InvalidRequest, "`keep_last` is over 1000000")];

    fn check(&self, _limits: &Limits) -> Result<()> {
        validate::within("keep_last", self.keep_last, 0..=validate::MAX_KEEP_LAST).map(drop)
    }

    async fn serve(self, here: Here<'_>) -> Result<CompactResponse> {
        Ok(compact_response(
            here.handle()?.compact(self.keep_last).await?,
        ))
    }
}
