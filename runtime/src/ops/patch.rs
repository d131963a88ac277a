//! `patch`: the fields checked like a create's (a new driver and its options by
//! the driver), then applied by the session's actor.

use sessiond_client::ErrorCode;
use sessiond_client::model::SessionEnvelope;
use sessiond_client::ops::PatchSession;

use super::{Here, Serve};
use crate::api::validate;
use crate::api::views::{envelope, session_patch};
use crate::config::Limits;
use crate::error::{Error, Result};

impl Serve for PatchSession {
    const ERRORS: &'static [(ErrorCode, &'static str)] = &[
        (
            ErrorCode::InvalidRequest,
            "a field breaks its rule (`label` length, `env`, a relative `cwd`, `max_turns` below 1, `auto_compact_keep` over 1000000), or the node does not know the driver or refuses its options",
        ),
        (
            ErrorCode::PayloadTooLarge,
            "`system_prompt` is over its limit (256 KiB by default)",
        ),
    ];

    /// The rules of create, for the fields a patch may change. An empty `cwd`
    /// clears it, so only a non-empty one must be a path.
    fn check(&self, limits: &Limits) -> Result<()> {
        if let Some(l) = &self.label {
            validate::label(limits, l)?;
        }
        if let Some(sp) = &self.system_prompt {
            validate::system_prompt(limits, sp)?;
        }
        if let Some(env) = &self.env {
            validate::env(env)?;
        }
        if let Some(cwd) = self.cwd.as_deref().filter(|c| !c.is_empty()) {
            validate::cwd(cwd)?;
        }
        validate::max_turns(self.max_turns)?;
        validate::auto_compact_keep(self.auto_compact_keep)
    }

    async fn serve(self, here: Here<'_>) -> Result<SessionEnvelope> {
        if self.driver.is_some() || self.driver_options.is_some() {
            let meta = here.node.get_session(here.tenant, here.id).await?;
            let driver = self.driver.as_ref().unwrap_or(&meta.driver);
            let options = self.driver_options.as_ref().unwrap_or(&meta.driver_options);
            here.node
                .drivers()
                .validate(driver, options)
                .map_err(Error::InvalidRequest)?;
        }
        let meta = here.handle()?.patch(session_patch(self)).await?;
        Ok(envelope(&meta))
    }
}
