//! sessiond-actors: sessions as actors.
//!
//! A session actor owns its transcript tail, its prompt queue, its current run and
//! the run's cancellation; a project supervisor spawns the sessions of one project
//! and restarts a crashed one from the store. Drivers turn a prompt into transcript
//! messages. Actors bind the narrowest store traits they need; nothing here knows
//! HTTP or the node.
//!
//! # Layout
//! - [`session`]: `Session` actor, `SessionState` decisions, run task, `SessionHandle`
//! - [`project`]: `Project` supervisor and `ProjectHandle`
//! - [`writer`]: the node's group-commit writer every session writes through
//! - [`context`]: what session actors share (stores, writer, drivers, lease book)
//! - [`registry`]: the node's live session actors and project supervisors
//! - [`notices`]: the node's publisher of project and stall notices
//! - [`driver`]: the `AgentDriver` trait and the registry
//! - [`scripted`]: the deterministic scripted driver
//! - [`error`]: `SessionError` and `Result`

pub mod context;
pub mod driver;
pub mod error;
pub mod notices;
pub mod project;
pub mod registry;
pub mod scripted;
pub mod session;
pub mod writer;

pub use context::{LeaseBook, SessionContext, SessionSettings};
pub use driver::{
    AgentDriver, AnswerError, DriverEvent, DriverEvents, DriverOutcome, DriverRegistry, RunRequest,
};
pub use error::{Result, SessionError};
pub use notices::Notices;
pub use project::ProjectHandle;
pub use registry::{Residents, Supervisors};
pub use session::{AbortReply, CompactReport, SendReceipt, SessionHandle, SessionPatch};
pub use writer::{Writer, WriterConfig};
