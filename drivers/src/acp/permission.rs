//! Permission requests (`session/request_permission`): the policy that answers them,
//! and the requests waiting for a person under the `ask` policy.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use agent_client_protocol::v1::schema::{
    PermissionOption, PermissionOptionKind, RequestPermissionOutcome, RequestPermissionRequest,
    SelectedPermissionOutcome,
};
use serde::{Deserialize, Serialize};
use sessiond_store::SessionId;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// How the driver answers an agent that asks for permission to run a tool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionPolicy {
    /// Grant it: the agent's `allow_once` option, else its `allow_always` option (the
    /// narrower one first); cancelled when it offers neither.
    Allow,
    /// Refuse it (the default: an unattended agent does nothing it must ask for):
    /// the `reject_once` option, else `reject_always`, else the cancelled outcome.
    #[default]
    Deny,
    /// Ask a person: the transcript gets a system message with the request, and the
    /// agent waits until [`AcpDriver::answer_permission`](super::AcpDriver::answer_permission)
    /// answers it or the run ends (then the answer is `cancelled`).
    Ask,
}

impl PermissionPolicy {
    /// The policy's name in configuration.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Ask => "ask",
        }
    }
}

/// A person's answer to a pending permission request (the body of
/// `POST /v1/sessions/{id}/permissions/{request_id}`), shaped like ACP's outcome:
/// `{"outcome": "selected", "option_id": "..."}` or `{"outcome": "cancelled"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PermissionAnswer {
    /// One of the options the agent offered.
    Selected {
        /// The option's id, as listed in the pending request.
        option_id: String,
    },
    /// No decision: the agent treats the request as cancelled.
    Cancelled,
}

impl PermissionAnswer {
    /// The ACP outcome to send back.
    pub(super) fn into_outcome(self) -> RequestPermissionOutcome {
        match self {
            Self::Selected { option_id } => {
                RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(option_id))
            }
            Self::Cancelled => RequestPermissionOutcome::Cancelled,
        }
    }

    /// The answer in a few words, for the transcript.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Selected { option_id } => format!("option `{option_id}` selected"),
            Self::Cancelled => "cancelled".into(),
        }
    }
}

/// What an `allow` or `deny` policy answers, `None` for `ask`.
pub(super) fn decide(
    policy: PermissionPolicy,
    options: &[PermissionOption],
) -> Option<PermissionAnswer> {
    let preferred = match policy {
        PermissionPolicy::Allow => [
            PermissionOptionKind::AllowOnce,
            PermissionOptionKind::AllowAlways,
        ],
        PermissionPolicy::Deny => [
            PermissionOptionKind::RejectOnce,
            PermissionOptionKind::RejectAlways,
        ],
        PermissionPolicy::Ask => return None,
    };
    let chosen = preferred
        .iter()
        .find_map(|kind| options.iter().find(|o| o.kind == *kind));
    Some(match chosen {
        Some(option) => PermissionAnswer::Selected {
            option_id: option.option_id.to_string(),
        },
        None => PermissionAnswer::Cancelled,
    })
}

/// The request as JSON for the transcript (`ToolInfo.input`).
pub(super) fn request_json(
    request_id: Option<&str>,
    request: &RequestPermissionRequest,
) -> serde_json::Value {
    let fields = &request.tool_call.fields;
    let options: Vec<serde_json::Value> = request
        .options
        .iter()
        .map(|o| {
            serde_json::json!({
                "option_id": o.option_id.to_string(),
                "name": o.name,
                "kind": o.kind,
            })
        })
        .collect();
    serde_json::json!({
        "request_id": request_id,
        "tool_call": {
            "id": request.tool_call.tool_call_id.to_string(),
            "title": fields.title,
            "kind": fields.kind,
            "raw_input": fields.raw_input,
        },
        "options": options,
    })
}

/// The tool a request is about, in a few words.
pub(super) fn request_title(request: &RequestPermissionRequest) -> String {
    let fields = &request.tool_call.fields;
    fields
        .title
        .clone()
        .unwrap_or_else(|| format!("tool call {}", request.tool_call.tool_call_id))
}

/// A request waiting for a person.
#[derive(Debug)]
struct Pending {
    session_id: SessionId,
    option_ids: Vec<String>,
    answer: oneshot::Sender<PermissionAnswer>,
}

/// The permission requests waiting for a person, by request id (unique per driver).
#[derive(Debug, Default)]
pub(super) struct PendingPermissions(Mutex<HashMap<String, Pending>>);

impl PendingPermissions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a request; the receiver yields the answer, or fails when the request
    /// is forgotten.
    pub(super) fn register(
        &self,
        session_id: SessionId,
        options: &[PermissionOption],
    ) -> (String, oneshot::Receiver<PermissionAnswer>) {
        let request_id = uuid::Uuid::now_v7().to_string();
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            session_id,
            option_ids: options.iter().map(|o| o.option_id.to_string()).collect(),
            answer: tx,
        };
        self.lock().insert(request_id.clone(), pending);
        (request_id, rx)
    }

    /// Delivers a person's answer.
    pub(super) fn answer(
        &self,
        session_id: SessionId,
        request_id: &str,
        answer: PermissionAnswer,
    ) -> Result<()> {
        let mut pending = self.lock();
        let not_found = || Error::NotFound(format!("permission request {request_id} not found"));
        let entry = pending.get(request_id).ok_or_else(not_found)?;
        if entry.session_id != session_id {
            return Err(not_found());
        }
        if let PermissionAnswer::Selected { option_id } = &answer
            && !entry.option_ids.contains(option_id)
        {
            return Err(Error::InvalidRequest(format!(
                "unknown option '{option_id}' (offered: {})",
                entry.option_ids.join(", ")
            )));
        }
        let entry = pending.remove(request_id).ok_or_else(not_found)?;
        // The run may have ended since: then nobody waits any more.
        entry.answer.send(answer).map_err(|_| not_found())
    }

    /// Drops a request nobody will answer (its run ended or was cancelled).
    pub(super) fn forget(&self, request_id: &str) {
        self.lock().remove(request_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Vec<PermissionOption> {
        vec![
            PermissionOption::new("always", "Always", PermissionOptionKind::AllowAlways),
            PermissionOption::new("once", "Once", PermissionOptionKind::AllowOnce),
            PermissionOption::new("no", "No", PermissionOptionKind::RejectOnce),
        ]
    }

    #[test]
    fn policies_pick_the_narrowest_option_of_their_kind() {
        let selected = |id: &str| PermissionAnswer::Selected {
            option_id: id.into(),
        };
        assert_eq!(
            decide(PermissionPolicy::Allow, &options()),
            Some(selected("once"))
        );
        assert_eq!(
            decide(PermissionPolicy::Deny, &options()),
            Some(selected("no"))
        );
        assert_eq!(
            decide(PermissionPolicy::Deny, &options()[..2]),
            Some(PermissionAnswer::Cancelled)
        );
        assert_eq!(decide(PermissionPolicy::Ask, &options()), None);
    }

    #[test]
    fn answers_reach_the_waiting_run_once() {
        let pending = PendingPermissions::default();
        let session = SessionId::generate();
        let (id, mut rx) = pending.register(session, &options());
        let other = SessionId::generate();
        assert!(matches!(
            pending.answer(other, &id, PermissionAnswer::Cancelled),
            Err(Error::NotFound(_))
        ));
        let bad = PermissionAnswer::Selected {
            option_id: "maybe".into(),
        };
        assert!(matches!(
            pending.answer(session, &id, bad),
            Err(Error::InvalidRequest(_))
        ));
        pending
            .answer(session, &id, PermissionAnswer::Cancelled)
            .unwrap();
        assert_eq!(rx.try_recv().unwrap(), PermissionAnswer::Cancelled);
        assert!(matches!(
            pending.answer(session, &id, PermissionAnswer::Cancelled),
            Err(Error::NotFound(_))
        ));
    }
}
