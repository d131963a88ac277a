//! The changes a client can ask of a session, as data: run on the session's actor
//! here, or forwarded to the node that holds the session (`forward`).

use serde::{Deserialize, Serialize};
use sessiond_actors::{
    AbortReply, CompactReport, SendReceipt, SessionError, SessionHandle, SessionPatch,
};
use sessiond_store::{ChangeReason, RunId, SessionMeta};

/// A change to one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Append a prompt and run it.
    Send {
        /// The prompt.
        prompt: String,
        /// Makes a retry (or a retried forward) safe.
        idempotency_key: Option<String>,
    },
    /// End the active run, then send first.
    Steer {
        /// The prompt.
        prompt: String,
        /// As for `Send`.
        idempotency_key: Option<String>,
    },
    /// Cancel the active run (or this one).
    Abort {
        /// Only this run.
        run_id: Option<RunId>,
    },
    /// Pause or resume.
    SetPaused {
        /// Pause (`true`) or resume.
        paused: bool,
    },
    /// Change settings.
    Patch {
        /// What to change.
        patch: SessionPatch,
    },
    /// Fresh transcript.
    Reset,
    /// Archive all but the last messages.
    Compact {
        /// Messages kept.
        keep_last: u64,
    },
    /// Remove the session.
    Delete {
        /// Keep the transcript in the archive.
        archive: bool,
    },
    /// Answer a permission request the session's driver waits on (the driver
    /// lives where the session does).
    AnswerPermission {
        /// The request.
        request_id: String,
        /// The answer.
        answer: serde_json::Value,
    },
}

/// What a command answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// A send or steer receipt.
    Receipt(SendReceipt),
    /// An abort's answer.
    Abort(AbortReply),
    /// The session after the change.
    Meta(Box<SessionMeta>),
    /// A compaction's report.
    Compact(CompactReport),
    /// Done, nothing to say.
    Done,
}

impl Command {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Send { .. } => "send",
            Self::Steer { .. } => "steer",
            Self::Abort { .. } => "abort",
            Self::SetPaused { .. } => "pause",
            Self::Patch { .. } => "patch",
            Self::Reset => "reset",
            Self::Compact { .. } => "compact",
            Self::Delete { .. } => "delete",
            Self::AnswerPermission { .. } => "permission",
        }
    }

    /// Whether running it again after an unanswered forward cannot do harm: a send
    /// or steer (keyed, see [`Command::ensure_key`]), pause/resume and patch (they
    /// set a state), an abort of one named run. An abort of "the active run" could
    /// end a run the next holder started since; reset, compact, delete and a
    /// permission answer act on what is there at the time.
    pub(crate) fn repeatable(&self) -> bool {
        match self {
            Self::Send { .. }
            | Self::Steer { .. }
            | Self::SetPaused { .. }
            | Self::Patch { .. } => true,
            Self::Abort { run_id } => run_id.is_some(),
            Self::Reset
            | Self::Compact { .. }
            | Self::Delete { .. }
            | Self::AnswerPermission { .. } => false,
        }
    }

    /// Gives a send or steer an idempotency key if it has none, so that repeating
    /// it (a forward whose answer was lost, then retried on the next holder) cannot
    /// append the prompt twice.
    pub(crate) fn ensure_key(&mut self) {
        if let Self::Send {
            idempotency_key, ..
        }
        | Self::Steer {
            idempotency_key, ..
        } = self
            && idempotency_key.is_none()
        {
            *idempotency_key = Some(format!("fwd:{}", uuid::Uuid::now_v7().simple()));
        }
    }

    /// Runs the command on a resident session's actor.
    pub(crate) async fn run(&self, h: &SessionHandle) -> std::result::Result<Reply, SessionError> {
        Ok(match self.clone() {
            Self::Send {
                prompt,
                idempotency_key,
            } => Reply::Receipt(h.send(prompt, idempotency_key).await?),
            Self::Steer {
                prompt,
                idempotency_key,
            } => Reply::Receipt(h.steer(prompt, idempotency_key).await?),
            Self::Abort { run_id } => Reply::Abort(h.abort(run_id).await?),
            Self::SetPaused { paused } => Reply::Meta(Box::new(h.set_paused(paused).await?)),
            Self::Patch { patch } => Reply::Meta(Box::new(h.patch(patch).await?)),
            Self::Reset => Reply::Meta(Box::new(h.reset().await?)),
            Self::Compact { keep_last } => Reply::Compact(h.compact(keep_last).await?),
            Self::Delete { archive } => {
                h.delete(archive, ChangeReason::Delete).await?;
                Reply::Done
            }
            // Answered by the node (it needs the driver registry), not the actor.
            Self::AnswerPermission { .. } => Reply::Done,
        })
    }
}

/// Unpacks a reply of the expected kind.
macro_rules! expect_reply {
    ($reply:expr, $pat:pat => $out:expr) => {
        match $reply {
            $pat => Ok($out),
            other => Err($crate::error::Error::Internal(format!(
                "unexpected reply {other:?}"
            ))),
        }
    };
}
pub(crate) use expect_reply;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_send_gets_a_key_once_and_keeps_the_clients() {
        let mut send = Command::Send {
            prompt: "p".into(),
            idempotency_key: None,
        };
        send.ensure_key();
        let first = send.clone();
        send.ensure_key();
        assert_eq!(send, first, "the same key on every hop");
        let Command::Send {
            idempotency_key: Some(k),
            ..
        } = &send
        else {
            panic!("a key")
        };
        assert!(sessiond_store::valid_idempotency_key(k));
        let mut client = Command::Steer {
            prompt: "p".into(),
            idempotency_key: Some("mine".into()),
        };
        client.ensure_key();
        assert!(matches!(client, Command::Steer { idempotency_key: Some(k), .. } if k == "mine"));
    }
}
