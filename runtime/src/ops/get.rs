//! `get`: the session as committed, from the store.

use sessiond_client::model::SessionEnvelope;
use sessiond_client::ops::GetSession;

use super::{Here, Serve};
use crate::api::views::envelope;
use crate::error::Result;

impl Serve for GetSession {
    async fn serve(self, here: Here<'_>) -> Result<SessionEnvelope> {
        let meta = here.node.get_session(here.tenant, here.id).await?;
        Ok(envelope(&meta))
    }
}
