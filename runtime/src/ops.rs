//! How the node serves each session operation of `sessiond_client::ops`: one
//! [`Serve`] impl per operation, in its own file (its value checks and what it
//! asks of the session's actor or the store), and [`OPERATIONS`], the one list
//! that gives every operation its HTTP route, its WebSocket frame and its
//! forwarded form.
//!
//! Every transport decodes into the operation's type and calls
//! [`Node::execute`](crate::node::Node::execute): the checks run there, then the
//! operation runs on the session's actor here, is forwarded to the node holding
//! the session, or (a read) is served from the store.
//!
//! # Layout
//! - this file: [`Serve`], [`Here`], the erased [`AnyOperation`] and [`OPERATIONS`]
//! - one file per operation: `get`, `send`, `steer`, `abort`, `pause`, `resume`,
//!   `patch`, `reset`, `compact`, `delete`, `history`, `archive`, `children`,
//!   `answer_permission`

mod abort;
mod answer_permission;
mod archive;
mod children;
mod compact;
mod delete;
mod get;
mod history;
mod patch;
mod pause;
mod reset;
mod resume;
mod send;
mod steer;

pub(crate) use children::list_limit;

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use sessiond_actors::SessionHandle;
use sessiond_client::ops::Deadline;
use sessiond_client::{ErrorCode, Operation, ops};
use sessiond_store::{SessionId, TenantId};

use crate::api::AppState;
use crate::config::{Config, Limits};
use crate::error::{Error, Result};
use crate::node::Node;

/// Where an operation runs: the node, the session, and (for an operation that
/// changes the session) the session's actor on this node.
#[derive(Clone, Copy)]
pub struct Here<'a> {
    /// The node serving it.
    pub(crate) node: &'a Node,
    /// The tenant it acts for.
    pub(crate) tenant: &'a TenantId,
    /// The session.
    pub(crate) id: SessionId,
    handle: Option<&'a SessionHandle>,
}

impl<'a> Here<'a> {
    /// A read served from the store.
    pub(crate) fn store(node: &'a Node, tenant: &'a TenantId, id: SessionId) -> Self {
        Self {
            node,
            tenant,
            id,
            handle: None,
        }
    }

    /// A change run by the session's actor.
    pub(crate) fn actor(
        node: &'a Node,
        tenant: &'a TenantId,
        id: SessionId,
        handle: &'a SessionHandle,
    ) -> Self {
        Self {
            node,
            tenant,
            id,
            handle: Some(handle),
        }
    }

    /// The session's actor (an operation that changes the session runs only where
    /// the session is resident).
    pub fn handle(&self) -> Result<&'a SessionHandle> {
        self.handle.ok_or_else(|| {
            Error::Internal(format!("session {} changed without its actor", self.id))
        })
    }
}

/// How the node serves an operation.
pub trait Serve: Operation {
    /// Checks the request's values (sizes, formats, ranges) before it goes
    /// anywhere. Runs on every transport, and again on the node a request is
    /// forwarded to.
    fn check(&self, _limits: &Limits) -> Result<()> {
        Ok(())
    }

    /// Makes repeating the request harmless before it is forwarded (its answer may
    /// be lost and the request sent on to the next holder): a send gets an
    /// idempotency key.
    fn before_forward(&mut self) {}

    /// The errors it may answer beyond those every session operation may (see
    /// `api::openapi`), each with when: its route in the OpenAPI document lists
    /// them, so they are kept here, beside what the operation checks and does.
    const ERRORS: &'static [(ErrorCode, &'static str)] = &[];

    /// Runs it here: on the session's actor (`here.handle()`) for an operation that
    /// changes the session, from the store for a read.
    fn serve(self, here: Here<'_>) -> impl Future<Output = Result<Self::Reply>> + Send;
}

/// How long the node gives an operation of `deadline` before answering `timeout`.
pub(crate) fn deadline(config: &Config, deadline: Deadline) -> Duration {
    let s = &config.session;
    match deadline {
        Deadline::Call => s.call_timeout,
        Deadline::RunEnd => s.call_timeout + s.steer_deadline,
        Deadline::Abort => s.call_timeout + s.abort_grace,
    }
}

/// An operation without its type: what the WebSocket and a node's inbox look up
/// by name, and what the router asks for its route.
pub(crate) trait AnyOperation: Send + Sync {
    /// The operation's name.
    fn name(&self) -> &'static str;
    /// Adds its HTTP route.
    fn route(&self, router: axum::Router<AppState>) -> axum::Router<AppState>;
    /// Decodes a WebSocket frame's fields into the operation, ready to run.
    fn decode_frame(&self, args: Map<String, Value>) -> Result<Box<dyn Decoded>>;
    /// Runs a request forwarded by another node on this node's actor of the
    /// session (`args` and the reply are JSON).
    fn run_forwarded<'a>(&self, here: Here<'a>, args: &'a str) -> BoxFuture<'a, Result<String>>;
    /// Adds its route to the OpenAPI document: path, parameters, body, replies and
    /// errors, all read from the operation's type.
    fn openapi(&self, doc: &mut utoipa::openapi::OpenApi);
}

/// An operation decoded from a WebSocket frame, its type erased until it runs.
pub(crate) trait Decoded: Send + std::fmt::Debug {
    /// Runs it on the one path; the reply as JSON.
    fn run<'a>(
        self: Box<Self>,
        node: &'a Node,
        tenant: &'a TenantId,
        id: SessionId,
    ) -> BoxFuture<'a, Result<Value>>;
    /// The operation itself (tests look at what a frame decoded to).
    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<O: Serve> Decoded for O {
    fn run<'a>(
        self: Box<Self>,
        node: &'a Node,
        tenant: &'a TenantId,
        id: SessionId,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move { to_json(&node.execute(tenant, id, *self).await?) })
    }

    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The [`AnyOperation`] of `O`.
struct Entry<O>(PhantomData<fn() -> O>);

impl<O> Entry<O> {
    const NEW: Self = Entry(PhantomData);
}

/// Decodes an operation from its fields; the error names the operation.
pub(crate) fn decode<O: Operation>(fields: Map<String, Value>) -> Result<O> {
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| Error::InvalidRequest(format!("invalid arguments of '{}': {e}", O::NAME)))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Internal(format!("unserializable answer: {e}")))
}

impl<O> AnyOperation for Entry<O>
where
    O: Serve + utoipa::ToSchema,
    O::Reply: utoipa::ToSchema,
{
    fn name(&self) -> &'static str {
        O::NAME
    }

    fn route(&self, router: axum::Router<AppState>) -> axum::Router<AppState> {
        crate::api::operation::route::<O>(router)
    }

    fn decode_frame(&self, args: Map<String, Value>) -> Result<Box<dyn Decoded>> {
        Ok(Box::new(decode::<O>(args)?))
    }

    fn run_forwarded<'a>(&self, here: Here<'a>, args: &'a str) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let op: O = serde_json::from_str(args).map_err(|e| {
                Error::InvalidRequest(format!("invalid forwarded '{}': {e}", O::NAME))
            })?;
            op.check(&here.node.config().limits)?;
            let reply = op.serve(here).await?;
            serde_json::to_string(&reply)
                .map_err(|e| Error::Internal(format!("unserializable answer: {e}")))
        })
    }

    fn openapi(&self, doc: &mut utoipa::openapi::OpenApi) {
        crate::api::openapi::operation::<O>(doc)
    }
}

/// Every session operation, in the order the docs list them: the one list that
/// gives each its HTTP route, its WebSocket frame and its forwarded form.
pub(crate) static OPERATIONS: [&dyn AnyOperation; 14] = [
    &Entry::<ops::GetSession>::NEW,
    &Entry::<ops::SendPrompt>::NEW,
    &Entry::<ops::SteerPrompt>::NEW,
    &Entry::<ops::Abort>::NEW,
    &Entry::<ops::Pause>::NEW,
    &Entry::<ops::Resume>::NEW,
    &Entry::<ops::PatchSession>::NEW,
    &Entry::<ops::Reset>::NEW,
    &Entry::<ops::Compact>::NEW,
    &Entry::<ops::DeleteSession>::NEW,
    &Entry::<ops::History>::NEW,
    &Entry::<ops::Archive>::NEW,
    &Entry::<ops::Children>::NEW,
    &Entry::<ops::AnswerPermission>::NEW,
];

/// The operation named `name`.
pub(crate) fn by_name(name: &str) -> Option<&'static dyn AnyOperation> {
    OPERATIONS.iter().copied().find(|op| op.name() == name)
}

/// Gives a send or steer an idempotency key if it has none, so that repeating it
/// (a forward whose answer was lost, then sent on to the next holder) cannot
/// append the prompt twice. A key already there (the client's) is kept.
pub(crate) fn ensure_key(key: &mut Option<String>) {
    if key.is_none() {
        *key = Some(format!("fwd:{}", uuid::Uuid::now_v7().simple()));
    }
}

#[cfg(test)]
mod decoding_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_holds_every_operation_of_the_client_once() {
        let names: Vec<_> = OPERATIONS.iter().map(|op| op.name()).collect();
        assert_eq!(names, ops::ALL.to_vec());
    }

    #[test]
    fn a_forwarded_send_gets_a_key_once_and_keeps_the_clients() {
        let mut key = None;
        ensure_key(&mut key);
        let first = key.clone();
        ensure_key(&mut key);
        assert_eq!(key, first, "the same key on every hop");
        assert!(sessiond_store::valid_idempotency_key(
            key.as_deref().unwrap()
        ));
        let mut client = Some("mine".to_string());
        ensure_key(&mut client);
        assert_eq!(client.as_deref(), Some("mine"));
    }
}
