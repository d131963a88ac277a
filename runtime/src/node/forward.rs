//! Forwarding: an operation for a session held by another node goes to that node's
//! inbox channel on the bus with a correlation id and a deadline; the holder runs it
//! on its actor and publishes the answer to the caller's inbox.
//!
//! Pub/sub is at-most-once: a lost request or answer is a timeout for the caller,
//! who then looks at the lease again (the holder may have died: the lease runs out
//! and the caller takes the session over). Idempotency keys make a retried send safe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sessiond_store::{BusSignal, Channel, EventBus, NodeId, SessionId, TenantId, codec, now_ms};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::error::Error;
use sessiond_client::ErrorCode;

/// An error as it travels between nodes: its code (or "not the holder") and the
/// message a client may see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WireError {
    code: WireCode,
    message: String,
    /// The id the holder logged the error under; the caller's answer carries the
    /// same, so one id finds the error on both nodes.
    #[serde(default)]
    error_id: Option<String>,
}

/// The code of an error between nodes: an API error code, or the holder's answer
/// that the session is not (any more) resident there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireCode {
    /// Look at the lease again: the session left this node.
    NotHolder,
    /// The operation failed with this code.
    #[serde(untagged)]
    Api(ErrorCode),
}

impl WireError {
    pub(crate) fn not_holder(node: &NodeId) -> Self {
        Self {
            code: WireCode::NotHolder,
            message: format!("node {node} does not hold the session"),
            error_id: None,
        }
    }

    /// The holder's answer past its bound on forwarded requests served at once.
    pub(crate) fn busy() -> Self {
        Self {
            code: WireCode::Api(ErrorCode::Unavailable),
            message: "node busy: too many forwarded requests in flight; retry".into(),
            error_id: None,
        }
    }

    /// Whether the holder answered that it does not hold the session.
    pub(crate) fn is_not_holder(&self) -> bool {
        self.code == WireCode::NotHolder
    }
}

impl From<&Error> for WireError {
    /// Only the code and the public message cross: an internal detail stays in
    /// the holder's log.
    fn from(e: &Error) -> Self {
        let error = crate::api::error::ApiError::from(e.clone());
        error.log("forwarded");
        Self {
            code: WireCode::Api(e.code()),
            message: e.public_message(),
            error_id: Some(error.error_id().to_string()),
        }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Self {
        match w.code {
            WireCode::Api(code) => Error::Remote {
                code,
                message: w.message,
                error_id: w.error_id,
            },
            WireCode::NotHolder => Error::Unavailable(w.message),
        }
    }
}

/// What goes through a node's inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Envelope {
    /// Run `command` on `session` and answer to `from`.
    Request {
        id: Uuid,
        from: NodeId,
        tenant: TenantId,
        session: SessionId,
        /// The operation's name.
        op: String,
        /// Its fields, as JSON.
        args: String,
        /// Past this (wall clock, ms) the caller has given up: do nothing.
        deadline_ms: i64,
    },
    /// The answer to request `id`.
    Response {
        id: Uuid,
        /// The reply as JSON, or the error.
        result: Result<String, WireError>,
    },
}

/// Why a forward did not bring an answer from the holder's actor.
#[derive(Debug)]
pub(crate) enum ForwardError {
    /// No answer before the deadline (the holder may be dead or frozen).
    NoAnswer,
    /// The node no longer holds the session: look again.
    NotHolder,
    /// The holder ran the command and it failed.
    Remote(Error),
    /// The bus itself failed.
    Bus(Error),
}

/// Forwards waiting for their answers, by correlation id.
type Pending = Arc<Mutex<HashMap<Uuid, oneshot::Sender<Result<String, WireError>>>>>;

/// Requests this node sent and waits on.
#[derive(Clone)]
pub(crate) struct Forwarder {
    node: NodeId,
    bus: Arc<dyn EventBus>,
    pending: Pending,
}

impl Forwarder {
    pub(crate) fn new(node: NodeId, bus: Arc<dyn EventBus>) -> Self {
        Self {
            node,
            bus,
            pending: Arc::default(),
        }
    }

    /// Sends operation `op` (its fields as JSON in `args`) to `holder` and waits up
    /// to `timeout` for its answer (the reply as JSON).
    pub(crate) async fn forward(
        &self,
        holder: &NodeId,
        tenant: &TenantId,
        session: SessionId,
        op: &str,
        args: String,
        timeout: Duration,
    ) -> Result<String, ForwardError> {
        let id = Uuid::now_v7();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        // Removes the entry on every exit (timeout, error, answer).
        let _forget = Forget(self.pending.clone(), id);
        let request = Envelope::Request {
            id,
            from: self.node.clone(),
            tenant: tenant.clone(),
            session,
            op: op.to_string(),
            args,
            deadline_ms: now_ms() + timeout.as_millis() as i64,
        };
        self.publish(holder, &request)
            .await
            .map_err(ForwardError::Bus)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(w))) if w.is_not_holder() => Err(ForwardError::NotHolder),
            Ok(Ok(Err(w))) => Err(ForwardError::Remote(w.into())),
            Ok(Err(_)) | Err(_) => Err(ForwardError::NoAnswer),
        }
    }

    /// Publishes an envelope to `node`'s inbox.
    pub(crate) async fn publish(&self, node: &NodeId, envelope: &Envelope) -> Result<(), Error> {
        let bytes = codec::encode(envelope).map_err(|e| Error::Internal(e.to_string()))?;
        self.bus.publish(&Channel::node(node), bytes.into()).await?;
        Ok(())
    }

    /// Hands an answer to the forward waiting for it.
    pub(crate) fn answered(&self, id: Uuid, result: Result<String, WireError>) {
        if let Some(tx) = self.pending.lock().expect("pending lock").remove(&id) {
            let _ = tx.send(result);
        }
    }

    /// Subscribes to this node's inbox (before the node serves, so no request
    /// sent to it after it announced itself is missed).
    pub(crate) async fn subscribe(&self) -> Result<sessiond_store::BusSubscription, Error> {
        Ok(self.bus.subscribe(&Channel::node(&self.node)).await?)
    }
}

struct Forget(Pending, Uuid);

impl Drop for Forget {
    fn drop(&mut self) {
        self.0.lock().expect("pending lock").remove(&self.1);
    }
}

/// Decodes one inbox signal; `None` for a reset or an undecodable payload (the
/// requests lost with it time out at their callers).
pub(crate) fn decode(signal: BusSignal) -> Option<Envelope> {
    match signal {
        BusSignal::Payload(bytes) => match codec::decode(&bytes) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(error = %e, "undecodable inbox message");
                None
            }
        },
        BusSignal::Reset => {
            tracing::warn!("inbox subscription reset: forwarded requests in flight may time out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_the_wire_with_their_codes() {
        for e in [
            Error::NotFound("x".into()),
            Error::InvalidRequest("x".into()),
            Error::Conflict("x".into()),
            Error::Unavailable("x".into()),
            Error::Timeout("x".into()),
            Error::Protected("x".into()),
        ] {
            let back: Error = WireError::from(&e).into();
            assert_eq!(back.code(), e.code());
            let bytes = codec::encode(&WireError::from(&e)).unwrap();
            let back: WireError = codec::decode(&bytes).unwrap();
            assert_eq!(Error::from(back).code(), e.code());
        }
    }

    #[tokio::test]
    async fn a_request_is_answered_through_the_inboxes() {
        let b = sessiond_store::backend::memory::memory();
        let (a, h) = (NodeId::new("a").unwrap(), NodeId::new("h").unwrap());
        let caller = Forwarder::new(a.clone(), b.bus.clone());
        let holder = Forwarder::new(h.clone(), b.bus.clone());
        let mut caller_inbox = caller.subscribe().await.unwrap();
        let mut holder_inbox = holder.subscribe().await.unwrap();
        tokio::spawn({
            let caller = caller.clone();
            async move {
                while let Some(sig) = caller_inbox.recv().await {
                    if let Some(Envelope::Response { id, result }) = decode(sig) {
                        caller.answered(id, result);
                    }
                }
            }
        });
        tokio::spawn(async move {
            let sig = holder_inbox.recv().await.unwrap();
            let Some(Envelope::Request { id, from, .. }) = decode(sig) else {
                panic!("a request")
            };
            let answer = Envelope::Response {
                id,
                result: Err(WireError::from(&Error::Conflict("busy".into()))),
            };
            holder.publish(&from, &answer).await.unwrap();
        });
        let t = TenantId::new("t").unwrap();
        let got = caller
            .forward(
                &h,
                &t,
                SessionId::generate(),
                "reset",
                "{}".into(),
                Duration::from_secs(5),
            )
            .await;
        assert!(
            matches!(&got, Err(ForwardError::Remote(e)) if e.code() == ErrorCode::Conflict),
            "{got:?}"
        );
        // Nobody listens on node z: no answer by the deadline.
        let none = caller
            .forward(
                &NodeId::new("z").unwrap(),
                &t,
                SessionId::generate(),
                "reset",
                "{}".into(),
                Duration::from_millis(100),
            )
            .await;
        assert!(matches!(none, Err(ForwardError::NoAnswer)));
    }
}
