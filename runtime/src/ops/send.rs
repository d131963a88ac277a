//! `send`: the prompt checked, then appended by the session's actor.

use sessiond_client::ErrorCode;
use sessiond_client::model::SendResponse;
use sessiond_client::ops::SendPrompt;

use super::{Here, Serve, ensure_key};
use crate::api::validate;
use crate::api::views::send_response;
use crate::config::Limits;
use crate::error::Result;

impl Serve for SendPrompt {
    const ERRORS: &'static [(ErrorCode, &'static str)] = &[
        (
            ErrorCode::InvalidRequest,
            "the prompt is empty, or `idempotency_key` is not 1 to 128 of `A-Za-z0-9._:-`",
        ),
        (
            ErrorCode::PayloadTooLarge,
            "the prompt is over its limit (1 MiB by default)",
        ),
        (
            ErrorCode::Conflict,
            "the prompt queue is full (`queue-full`): retry once a run ends",
        ),
    ];

    fn check(&self, limits: &Limits) -> Result<()> {
        validate::prompt_and_key(limits, &self.prompt, self.idempotency_key.as_deref())
    }

    fn before_forward(&mut self) {
        ensure_key(&mut self.idempotency_key);
    }

    async fn serve(self, here: Here<'_>) -> Result<SendResponse> {
        let receipt = here
            .handle()?
            .send(self.prompt, self.idempotency_key)
            .await?;
        Ok(send_response(receipt))
    }
}
