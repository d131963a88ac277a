//! `answer_permission`: handed to the session's driver on the node that runs the
//! session (the driver waits there).

use sessiond_client::model::PermissionAnswered;
use sessiond_client::ops::AnswerPermission;

use super::{Here, Serve};
use crate::error::Result;

impl Serve for AnswerPermission {
    async fn serve(self, here: Here<'_>) -> Result<PermissionAnswered> {
        // Resident here: the driver of this session runs on this node.
        here.handle()?;
        here.node
            .answer_permission_here(
                here.tenant,
                here.id,
                &self.request_id,
                serde_json::Value::Object(self.answer),
            )
            .await?;
        Ok(PermissionAnswered {
            status: "answered".into(),
            request_id: self.request_id,
        })
    }
}
