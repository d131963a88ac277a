//! `pause`: no run starts until a resume.

use sessiond_client::model::SessionEnvelope;
use sessiond_client::ops::Pause;

use super::{Here, Serve};
use crate::api::views::envelope;
use crate::error::Result;

impl Serve for Pause {
    async fn serve(self, here: Here<'_>) -> Result<SessionEnvelope> {
        Ok(envelope(&here.handle()?.set_paused(true).await?))
    }
}
