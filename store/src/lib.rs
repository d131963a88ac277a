//! sessiond-store: the durable side of sessiond.
//!
//! Records (session meta, transcript messages) in a versioned MessagePack envelope,
//! the store traits split by concern, and their backends: memory (tests), sqlite
//! (the embedded single-node default) and redis (many nodes, Redis or Redis Cluster).
//! This crate knows nothing of actors.
//!
//! # Layout
//! - [`ids`]: tenant/project slugs, session keys, UUID v7 ids, node ids
//! - [`records`]: `SessionMeta`, `Message`, statuses, usage, bus events
//! - [`codec`]: the versioned envelope every persisted record goes through
//! - [`session_store`], [`lease_store`], [`node_registry`], [`event_bus`]: one trait
//!   per concern
//! - [`fanout`]: per-channel fan-out the bus backends share
//! - [`backend`]: `Backend` (the bundle a node runs on) and memory, sqlite, redis
//! - `testing` (feature `testing`): redis-server harness and the conformance suites

pub mod backend;
pub mod codec;
pub mod error;
pub mod event_bus;
pub mod fanout;
pub mod ids;
pub mod lease_store;
pub mod node_registry;
pub mod records;
pub mod session_store;
#[cfg(feature = "testing")]
pub mod testing;

pub use backend::Backend;
pub use error::{Result, StoreError};
pub use event_bus::{BusSignal, BusSubscription, Channel, EventBus};
pub use ids::{IdError, MessageId, NodeId, ProjectId, RunId, SessionId, SessionKey, TenantId};
pub use lease_store::{LeaseGrant, LeaseRef, LeaseStore};
pub use node_registry::{NodeRecord, NodeRegistry};
pub use records::*;
pub use session_store::{
    ArchiveUpTo, CommitOutcome, CreateOutcome, DeleteOutcome, IdempotencyRecord, IdempotencyScope,
    SessionStore, SessionWrite, valid_idempotency_key,
};
