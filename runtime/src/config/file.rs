//! `sessiond.toml`: the configuration tree in the shape a user writes it. Every key
//! has a default (the node's, [`Config::default`]); [`layers`](super::layers) reads
//! the tree from the file, `SESSIOND_SECTION__KEY` variables and flags, and
//! [`FileConfig::to_config`] checks it and turns it into the [`Config`] a node runs
//! with. Unknown keys are refused, naming the key; so are values out of range,
//! naming the key and the range.
//!
//! ```toml
//! listen = "127.0.0.1:7411"
//! data_dir = "./sessiond-data"      # embedded SQLite, unless `redis` or `memory` is set
//! # redis = "redis://127.0.0.1:6379"
//! # memory = false
//! # node_id = "node-a"
//! # advertise = "http://host:7411"
//!
//! [session]                          # milliseconds
//! lease_ttl_ms = 10000
//! abort_grace_ms = 5000
//! call_timeout_ms = 30000
//! steer_deadline_ms = 15000
//! idle_after_ms = 600000             # passivate sessions idle this long
//! stall_after_ms = 900000            # `stalled` after this long without driver activity
//! # stall_abort_after_ms = 1800000   # abort a run this quiet (off by default)
//! archive_ttl_days = 30              # compacted, reset and archived-on-delete messages
//! max_queued = 1000                  # prompts waiting behind a run, per session
//!
//! [node]
//! drain_timeout_ms = 10000
//! recovery_interval_ms = 2000
//! max_served_forwards = 256          # forwarded requests served at once
//! project_idle_after_ms = 60000      # stop a project supervisor idle this long
//!
//! [retention]                        # default for projects that set none
//! max_sessions = 5
//! max_age_days = 30
//! sweep_interval_ms = 600000
//!
//! [limits]
//! max_prompt_bytes = 1048576
//! max_body_bytes = 2097152
//!
//! [writer]
//! persist_deadline_ms = 20000
//!
//! [drivers.local]
//! kind = "openai"
//! base_url = "http://127.0.0.1:11434/v1"
//! ```
//!
//! # Layout
//! - this file: the top-level keys and the small sections (`[node]`, `[retention]`,
//!   `[limits]`, `[writer]`)
//! - [`session`]: `[session]`, the timing of session actors

mod session;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sessiond_actors::WriterConfig;
use sessiond_store::{NodeId, RetentionPolicy};

pub use session::SessionSection;

use super::drivers::DriverProfile;
use super::{Config, ConfigError, DEFAULT_DATA_DIR, DEFAULT_LISTEN, Limits, StoreConfig};

/// The whole tree; a key left out keeps its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// HTTP listen address (`--listen`; default `127.0.0.1:7411`); port 0 picks a
    /// free one.
    pub listen: SocketAddr,
    /// Directory of the embedded SQLite store (`--data-dir`; default
    /// `./sessiond-data`), the store unless `redis` or `memory` is set.
    pub data_dir: PathBuf,
    /// Redis URL (`--redis`): Redis instead of SQLite
    /// (`redis+cluster://h1:p1,h2:p2` for a Redis Cluster).
    pub redis: Option<String>,
    /// Keep everything in memory, lost at exit (`--memory`; demos and tests).
    pub memory: bool,
    /// This node's id (`--node-id`): 1 to 64 of `A-Z a-z 0-9 . _ -`, unique among
    /// running nodes; generated when omitted (and kept in the data dir for SQLite).
    pub node_id: Option<String>,
    /// Where clients and operators reach this node (`--advertise`; host:port or a
    /// URL), shown in `GET /v1/node` and the node registry; default: the bound
    /// listen address as `http://ADDR`.
    pub advertise: Option<String>,
    /// `[session]`: timing of session actors.
    pub session: SessionSection,
    /// `[node]`: many-node behaviour.
    pub node: NodeSection,
    /// `[retention]`: the default policy and the sweep.
    pub retention: RetentionSection,
    /// `[limits]`: input bounds.
    pub limits: LimitsSection,
    /// `[writer]`: the group-commit writer.
    pub writer: WriterSection,
    /// `[drivers.NAME]`: driver profiles by name (see `drivers.md`).
    pub drivers: BTreeMap<String, DriverProfile>,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            redis: None,
            memory: false,
            node_id: None,
            advertise: None,
            session: SessionSection::default(),
            node: NodeSection::default(),
            retention: RetentionSection::default(),
            limits: LimitsSection::default(),
            writer: WriterSection::default(),
            drivers: BTreeMap::new(),
        }
    }
}

impl FileConfig {
    /// Checks every value and builds the configuration a node runs with (driver
    /// profiles stay here: [`registry`](super::drivers::registry) builds them).
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        let store = if self.memory {
            StoreConfig::Memory
        } else if let Some(url) = &self.redis {
            StoreConfig::Redis { url: url.clone() }
        } else {
            StoreConfig::Sqlite {
                data_dir: self.data_dir.clone(),
            }
        };
        let node_id = self
            .node_id
            .clone()
            .map(NodeId::new)
            .transpose()
            .map_err(|e| ConfigError::Invalid {
                key: "node_id",
                rule: format!("is not valid: {e}"),
            })?;
        let mut session = self.session.to_settings()?;
        session.default_retention = self.retention.policy()?;
        session.project_idle_after = millis(
            "node.project_idle_after_ms",
            self.node.project_idle_after_ms,
            100..=DAY_MS,
        )?;
        Ok(Config {
            listen: self.listen,
            store,
            node_id,
            limits: self.limits.to_limits()?,
            session,
            writer: self.writer.to_writer()?,
            retention_sweep: millis(
                "retention.sweep_interval_ms",
                self.retention.sweep_interval_ms,
                100..=30 * DAY_MS,
            )?,
            advertise: self.advertise.clone(),
            drain_timeout: millis(
                "node.drain_timeout_ms",
                self.node.drain_timeout_ms,
                0..=3_600_000,
            )?,
            recovery_interval: millis(
                "node.recovery_interval_ms",
                self.node.recovery_interval_ms,
                50..=600_000,
            )?,
            max_served_forwards: within(
                "node.max_served_forwards",
                self.node.max_served_forwards,
                1..=100_000,
            )?,
            ..Config::default()
        })
    }
}

/// `[node]`: many-node behaviour (operations.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// On SIGTERM, how long runs may go on before the node stops them (0..=3600000,
    /// default 10000).
    pub drain_timeout_ms: u64,
    /// How often the node looks for dead nodes whose sessions it should take over
    /// (50..=600000, default 2000).
    pub recovery_interval_ms: u64,
    /// Most requests forwarded by other nodes served at once (1..=100000, default
    /// 256); past it, a forwarded request is answered 503 `unavailable` at once
    /// ("node busy"), and its caller retries, rather than queued.
    pub max_served_forwards: usize,
    /// A project supervisor with no resident session and no retention pass
    /// pending stops after this long; the next request for the project starts
    /// another (100..=86400000, default 60000).
    pub project_idle_after_ms: u64,
}

impl Default for NodeSection {
    fn default() -> Self {
        let node = Config::default();
        Self {
            drain_timeout_ms: as_millis(node.drain_timeout),
            recovery_interval_ms: as_millis(node.recovery_interval),
            max_served_forwards: node.max_served_forwards,
            project_idle_after_ms: as_millis(node.session.project_idle_after),
        }
    }
}

/// `[retention]`: the policy of projects that set none, and the sweep.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSection {
    /// Finished sessions kept per project, newest first (1..=50, default 5).
    pub max_sessions: u32,
    /// Days a finished session is kept (1..=365, default 30).
    pub max_age_days: u32,
    /// How often every project is swept, besides after each finished run of the
    /// project (100..=2592000000, default 600000).
    pub sweep_interval_ms: u64,
}

impl Default for RetentionSection {
    fn default() -> Self {
        let policy = RetentionPolicy::default();
        Self {
            max_sessions: policy.max_sessions,
            max_age_days: policy.max_age_days,
            sweep_interval_ms: as_millis(Config::default().retention_sweep),
        }
    }
}

impl RetentionSection {
    fn policy(&self) -> Result<RetentionPolicy, ConfigError> {
        Ok(RetentionPolicy {
            max_sessions: within(
                "retention.max_sessions",
                self.max_sessions,
                RetentionPolicy::MAX_SESSIONS,
            )?,
            max_age_days: within(
                "retention.max_age_days",
                self.max_age_days,
                RetentionPolicy::MAX_AGE_DAYS,
            )?,
        })
    }
}

/// `[limits]`: input bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest prompt in bytes; a larger one answers 413 `payload_too_large`
    /// (1..=67108864, default 1048576).
    pub max_prompt_bytes: usize,
    /// Largest request body in bytes, at least `max_prompt_bytes` and at most
    /// 134217728; default 2097152, or `max_prompt_bytes` + 65536 when that is more
    /// (a body holds the prompt and the JSON around it).
    pub max_body_bytes: Option<usize>,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_prompt_bytes: Limits::default().max_prompt_bytes,
            max_body_bytes: None,
        }
    }
}

impl LimitsSection {
    fn to_limits(&self) -> Result<Limits, ConfigError> {
        const MAX_BODY: usize = 128 * 1024 * 1024;
        let defaults = Limits::default();
        let max_prompt_bytes = within(
            "limits.max_prompt_bytes",
            self.max_prompt_bytes,
            1..=64 * 1024 * 1024,
        )?;
        let max_body_bytes = match self.max_body_bytes {
            None => defaults.max_body_bytes.max(max_prompt_bytes + 64 * 1024),
            Some(v) if (max_prompt_bytes..=MAX_BODY).contains(&v) => v,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    key: "limits.max_body_bytes",
                    rule: format!("must be at least max_prompt_bytes and at most {MAX_BODY}"),
                });
            }
        };
        Ok(Limits {
            max_body_bytes,
            max_prompt_bytes,
            ..defaults
        })
    }
}

/// `[writer]`: the group-commit writer.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriterSection {
    /// How long a failing commit is retried before its writes fail (503) and their
    /// sessions stop (100..=3600000, default 20000).
    pub persist_deadline_ms: u64,
}

impl Default for WriterSection {
    fn default() -> Self {
        Self {
            persist_deadline_ms: as_millis(WriterConfig::default().persist_deadline),
        }
    }
}

impl WriterSection {
    fn to_writer(&self) -> Result<WriterConfig, ConfigError> {
        Ok(WriterConfig {
            persist_deadline: millis(
                "writer.persist_deadline_ms",
                self.persist_deadline_ms,
                100..=3_600_000,
            )?,
            ..WriterConfig::default()
        })
    }
}

/// A day in milliseconds, the unit of the longest ranges.
const DAY_MS: u64 = 24 * 3_600_000;

/// `v` when it lies in `range`; otherwise an error naming `key` and the range.
fn within<T: PartialOrd + Display>(
    key: &'static str,
    v: T,
    range: RangeInclusive<T>,
) -> Result<T, ConfigError> {
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::OutOfRange {
            key,
            min: range.start().to_string(),
            max: range.end().to_string(),
        })
    }
}

/// `v` milliseconds, when they lie in `range`.
fn millis(key: &'static str, v: u64, range: RangeInclusive<u64>) -> Result<Duration, ConfigError> {
    within(key, v, range).map(Duration::from_millis)
}

/// A default duration as the milliseconds a key holds.
fn as_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
