//! The node's configuration: one typed tree with defaults that are safe to run.
//!
//! # Layout
//! - this file: `Config`, the tree a node runs with, its defaults, and
//!   [`ConfigError`]
//! - [`file`]: [`file::FileConfig`], the same tree in the shape a user writes it in
//!   `sessiond.toml` (milliseconds, ranges, field docs that are the user docs), and
//!   its conversion into `Config`
//! - [`layers`]: where its values come from, each over the one before: defaults,
//!   `sessiond.toml`, `SESSIOND_SECTION__KEY` variables, command-line flags (figment)
//! - [`drivers`]: driver profiles (`[drivers.NAME] kind = ...`) and the registry
//!   built from them

pub mod drivers;
pub mod file;
pub mod layers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sessiond_actors::{SessionSettings, WriterConfig};
use sessiond_store::{NodeId, TenantId};

/// Where the node keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Embedded SQLite file `sessiond.db` in this directory (single node).
    Sqlite {
        /// The data directory (created if missing).
        data_dir: PathBuf,
    },
    /// A Redis server (or cluster) shared by every node.
    Redis {
        /// `redis://host:port[/db]`.
        url: String,
    },
    /// In memory, lost at exit (tests).
    Memory,
}

/// Request size limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest prompt.
    pub max_prompt_bytes: usize,
    /// Largest `limit` of a history page.
    pub max_history_page: usize,
    /// Longest label, in characters.
    pub max_label_chars: usize,
    /// Largest system prompt.
    pub max_system_prompt_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            max_prompt_bytes: 1024 * 1024,
            max_history_page: 1000,
            max_label_chars: 256,
            max_system_prompt_bytes: 256 * 1024,
        }
    }
}

/// Everything a node runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// The store.
    pub store: StoreConfig,
    /// This node's id; generated when `None`.
    pub node_id: Option<NodeId>,
    /// The tenant requests act for (bearer-token tenants come with auth).
    pub tenant: TenantId,
    /// Request limits.
    pub limits: Limits,
    /// Session actor timing.
    pub session: SessionSettings,
    /// The group-commit writer.
    pub writer: WriterConfig,
    /// How long a graceful stop waits for the writer to flush.
    pub shutdown_flush_timeout: Duration,
    /// How often every project's retention is enforced (besides after each run).
    pub retention_sweep: Duration,
    /// Where peers and clients reach this node's API (`--advertise`), shown in
    /// `GET /v1/node` and in the node registry.
    pub advertise: Option<String>,
    /// On SIGTERM, how long active runs may go on before the node stops them.
    pub drain_timeout: Duration,
    /// How often the node looks for dead nodes whose sessions it should take over.
    pub recovery_interval: Duration,
    /// Most requests forwarded by other nodes that this node serves at once; past
    /// it, a forwarded request is answered `unavailable` at once (its caller
    /// retries) rather than queued.
    pub max_served_forwards: usize,
}

/// The default of [`Config::max_served_forwards`].
pub const DEFAULT_MAX_SERVED_FORWARDS: usize = 256;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7411";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./sessiond-data";
/// The configuration file read when present and no other is named.
pub const DEFAULT_CONFIG_FILE: &str = "sessiond.toml";

/// Why a configuration was refused; each message names the key (and, for a value
/// read from a file or a variable, where it came from).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why (in the message, not a source: it would be printed twice).
        error: std::io::Error,
    },
    /// A file that cannot be read or parsed, an unknown key, a value of the wrong
    /// type.
    #[error(transparent)]
    Layers(#[from] Box<figment::Error>),
    /// A value outside its range.
    #[error("{key} must be between {min} and {max}")]
    OutOfRange {
        /// The key, `section.name`.
        key: &'static str,
        /// The smallest value allowed.
        min: String,
        /// The largest value allowed.
        max: String,
    },
    /// A value that breaks another rule.
    #[error("{key} {rule}")]
    Invalid {
        /// The key, `section.name`.
        key: &'static str,
        /// What the value must be.
        rule: String,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        Self::Layers(Box::new(e))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            store: StoreConfig::Sqlite {
                data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            },
            node_id: None,
            tenant: TenantId::new("default").expect("valid tenant"),
            limits: Limits::default(),
            session: SessionSettings::default(),
            writer: WriterConfig::default(),
            shutdown_flush_timeout: Duration::from_secs(10),
            retention_sweep: Duration::from_secs(600),
            advertise: None,
            drain_timeout: Duration::from_secs(10),
            recovery_interval: Duration::from_secs(2),
            max_served_forwards: DEFAULT_MAX_SERVED_FORWARDS,
        }
    }
}

impl Config {
    /// In memory, on a free port, with short deadlines.
    pub fn for_tests() -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            store: StoreConfig::Memory,
            session: SessionSettings {
                abort_grace: Duration::from_millis(500),
                call_timeout: Duration::from_secs(10),
                ..SessionSettings::default()
            },
            ..Self::default()
        }
    }
}
