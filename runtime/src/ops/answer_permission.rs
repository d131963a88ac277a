//! `answer_permission`: handed to the session's driver on the node that runs the
//! session (the driver waits there).

use sessiond_client::ErrorCode;
use sessiond_client::model::PermissionAnswered;
use sessiond_client::ops::AnswerPermission;

use super::{Here, Serve};
use crate::error::Result;

impl Serve for AnswerPermission {
    const ERRORS: &'static [(ErrorCode, &'static str)] = &[
        (
            ErrorCode::InvalidRequest,
            "the answer is not one the request offered",
        ),
        (
            ErrorCode::NotFound,
            "nothing waits under this request id (unknown, answered already, or its run ended)",
        ),
        (
            ErrorCode::Conflict,
            "the session's driver asks no permissions",
        ),
        (
            ErrorCode::Unavailable,
            "the session's driver is not configured on the node running the session",
        ),
    ];

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
