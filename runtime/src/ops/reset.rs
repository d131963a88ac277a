//! `reset`: the session's actor ends the active run, then archives the transcript
//! (refused while the session is protected).

use sessiond_client::ErrorCode;
use sessiond_client::model::SessionEnvelope;
use sessiond_client::ops::Reset;

use super::{Here, Serve};
use crate::api::views::envelope;
use crate::error::Result;

impl Serve for Reset {
    const ERRORS: &'static [(ErrorCode, &'static str)] = &[(
        ErrorCode::Protected,
        "the session is protected: a patch with `protected: false` lifts it",
    )];

    async fn serve(self, here: Here<'_>) -> Result<SessionEnvelope> {
        Ok(envelope(&here.handle()?.reset().await?))
    }
}
