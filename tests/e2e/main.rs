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
//! - [`session_ops`]: compact, reset, delete, idempotency, supervision, retention and
//!   passivation (sqlite and redis)
//! - [`project_views`]: list, children, by-key, preview, the project stream; steer,
//!   pause and stall over HTTP
//! - [`many_nodes`]: three nodes on one Redis (and a cluster): forwarding, events
//!   anywhere, takeover after kill -9, fencing after SIGSTOP, handover on SIGTERM
//! - [`node_restarts`]: a node restarted with its old id, a session actor restarted
//!   after a crash, as the other nodes see them
//! - [`operations`]: every session operation answers the same over HTTP, the
//!   WebSocket and a forward between two nodes
//! - [`paging_and_protection`]: history paged backwards and by tail, protected
//!   sessions (sqlite and redis)
//! - [`cli`]: the client verbs of the binary
//! - [`cli_lifecycle`]: the lifecycle, listing, project and node verbs
//! - [`errors_lifecycle`]: bad input to the lifecycle, listing and project routes
//! - [`routes_lifecycle`]: raw wire shapes of those routes and the project stream
//! - [`websocket`]: the session WebSocket: commands and replies, events with resume,
//!   bad frames, abort, refusals before the upgrade, close on stop
//! - [`drivers`]: the `openai` (against a fake server) and `acp` (the Node.js test
//!   agent) drivers from `sessiond.toml` profiles: transcripts, usage, failures,
//!   permission answers, abort, session env

// A test crate has no public API: `pub` here means "shared between test modules".
#![allow(unreachable_pub)]

mod abort;
mod cli;
mod cli_lifecycle;
mod drivers;
mod errors;
mod errors_lifecycle;
mod faults;
mod harness;
mod lifecycle;
mod many_nodes;
mod node_restarts;
mod observability;
mod operations;
mod paging_and_protection;
mod project_views;
mod routes_lifecycle;
mod session_ops;
mod streaming;
mod websocket;
