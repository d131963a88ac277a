//! End-to-end tests of the `sessiond` binary: real processes, real sockets, real
//! redis-server, kill -9 for crashes.
//!
//! # Layout
//! - [`harness`]: starting and killing servers, an HTTP/SSE client, deadlines
//! - [`lifecycle`]: create, send, history, usage, restart after kill -9 (sqlite and redis)
//! - [`streaming`]: SSE replay, live events, resume with Last-Event-ID
//! - [`abort`]: aborting a hanging run, the queue moving on
//! - [`faults`]: the store killed and restarted under a running node
//! - [`errors`]: bad input answers 4xx in the error shape
//! - [`observability`]: health, readiness and Prometheus metrics
//! - [`cli`]: the client verbs of the binary
//! - [`drivers`]: the `openai` (against a fake server) and `acp` (the Node.js test
//!   agent) drivers from `sessiond.toml` profiles: transcripts, usage, failures,
//!   permission answers, abort, session env

// A test crate has no public API: `pub` here means "shared between test modules".
#![allow(unreachable_pub)]

mod abort;
mod cli;
mod drivers;
mod errors;
mod faults;
mod harness;
mod lifecycle;
mod observability;
mod streaming;
