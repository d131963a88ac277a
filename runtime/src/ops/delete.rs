//! `delete`: the session's actor cancels any run and removes the session
//! (refused while the session is protected).

use sessiond_client::ErrorCode;
use sessiond_client::ops::DeleteSession;
use sessiond_store::ChangeReason;

use super::{Here, Serve};
use crate::error::Result;

impl Serve for DeleteSession {
    const ERRORS: &'static [(ErrorCode, &'static str)] = &[(
        ErrorCode::Protected,
        "the session is protected: a patch with `protected: false` lifts it",
    )];

    async fn serve(self, here: Here<'_>) -> Result<()> {
        let archive = self.archive.unwrap_or(false);
        here.handle()?.delete(archive, ChangeReason::Delete).await?;
        here.node.forget_resident(here.tenant, here.id);
        Ok(())
    }
}
