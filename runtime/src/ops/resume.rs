//! `resume`: queued prompts may run again.

use sessiond_client::model::SessionEnvelope;
use sessiond_client::ops::Resume;

use super::{Here, Serve};
use crate::api::views::envelope;
use crate::error::Result;

impl Serve for Resume {
    async fn serve(self, here: Here<'_>) -> Result<SessionEnvelope> {
        Ok(envelope(&here.handle()?.set_paused(false).await?))
    }
}
