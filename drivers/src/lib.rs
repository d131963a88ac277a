//! sessiond-drivers: drivers that talk to real agents.
//!
//! Each driver implements sessiond-actors' [`AgentDriver`](sessiond_actors::AgentDriver):
//! it turns a prompt and a session's history into transcript events. The scripted
//! driver (deterministic, for tests and demos) lives in sessiond-actors; the runtime
//! builds a node's driver registry from these drivers' profiles. Nothing here knows
//! the node, HTTP or a store backend.
//!
//! # Layout
//! - [`openai`]: any OpenAI-compatible chat-completions endpoint, streamed
//! - [`acp`]: an Agent Client Protocol agent run as a subprocess over stdio
//! - [`error`]: the crate's error type

pub mod acp;
pub mod error;
pub mod openai;

pub use error::{Error, Result};
