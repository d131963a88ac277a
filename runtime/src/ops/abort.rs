//! `abort`: the session's actor cancels the run and answers once it ended.

use sessiond_client::model::AbortResponse;
use sessiond_client::ops::Abort;
use sessiond_store::RunId;

use super::{Here, Serve};
use crate::api::views::abort_response;
use crate::error::Result;

impl Serve for Abort {
    async fn serve(self, here: Here<'_>) -> Result<AbortResponse> {
        let run_id = self.run_id.map(RunId::from_uuid);
        Ok(abort_response(here.handle()?.abort(run_id).await?))
    }
}
