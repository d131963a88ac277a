//! `steer`: checked like a send, then the session's actor ends the active run and
//! runs the prompt first.

use sessiond_client::ErrorCode;
use sessiond_client::model::SteerResponse;
use sessiond_client::ops::SteerPrompt;

use super::{Here, Serve, ensure_key};
use crate::api::validate;
use crate::api::views::steer_response;
use crate::config::Limits;
use crate::error::Result;

impl Serve for SteerPrompt {
    const ERRORS: &'static [(ErrorCode, &'static str)] = &[
        (
            ErrorCode::InvalidRequest,
            "the prompt is empty, or `idempotency_key` is not 1 to 128 of `A-Za-z0-9._:-`",
        ),
        (
            ErrorCode::PayloadTooLarge,
            "the prompt is over its limit (1 MiB by default)",
        ),
    ];

    fn check(&self, limits: &Limits) -> Result<()> {
        validate::prompt_and_key(limits, &self.prompt, self.idempotency_key.as_deref())
    }

    fn before_forward(&mut self) {
        ensure_key(&mut self.idempotency_key);
    }

    async fn serve(self, here: Here<'_>) -> Result<SteerResponse> {
        let receipt = here
            .handle()?
            .steer(self.prompt, self.idempotency_key)
            .await?;
        Ok(steer_response(receipt))
    }
}
