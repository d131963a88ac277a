//! `sessiond.toml`: the configuration file. Command-line flags override it.
//!
//! ```toml
//! listen = "127.0.0.1:7411"
//! data_dir = "./sessiond-data"      # embedded SQLite, unless `redis` is set
//! # redis = "redis://127.0.0.1:6379"
//! # node_id = "node-a"
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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::drivers::DriverProfile;

/// The file's contents; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// HTTP listen address.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Directory of the embedded SQLite store.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Redis URL; when set, Redis is the store.
    #[serde(default)]
    pub redis: Option<String>,
    /// This node's id.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Where peers and clients reach this node (`--advertise`).
    #[serde(default)]
    pub advertise: Option<String>,
    /// `[node]`.
    #[serde(default)]
    pub node: NodeSection,
    /// Driver profiles by name.
    #[serde(default)]
    pub drivers: BTreeMap<String, DriverProfile>,
    /// Session timing.
    #[serde(default)]
    pub session: SessionTiming,
    /// The group-commit writer.
    #[serde(default)]
    pub writer: WriterTiming,
    /// `[retention]`.
    #[serde(default)]
    pub retention: RetentionSection,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
}

/// `[limits]`: input bounds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest prompt in bytes.
    #[serde(default)]
    pub max_prompt_bytes: Option<usize>,
    /// Largest request body in bytes (keep it above the prompt limit).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

/// `[node]`: many-node behaviour.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// On SIGTERM, how long runs may finish before the node stops them.
    #[serde(default)]
    pub drain_timeout_ms: Option<u64>,
    /// How often dead nodes' sessions are looked for.
    #[serde(default)]
    pub recovery_interval_ms: Option<u64>,
}

/// `[retention]`: the default policy and the sweep.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Finished sessions kept per project (1..=50).
    #[serde(default)]
    pub max_sessions: Option<u32>,
    /// Days a finished session is kept (1..=365).
    #[serde(default)]
    pub max_age_days: Option<u32>,
    /// How often every project is swept.
    #[serde(default)]
    pub sweep_interval_ms: Option<u64>,
}

/// `[session]`: timing of session actors, in milliseconds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionTiming {
    /// Lease time to live (default 10000; at least 1000). A node renews every third
    /// of it; another node takes a dead node's sessions over after it.
    #[serde(default)]
    pub lease_ttl_ms: Option<u64>,
    /// How long a cancelled run may take to end before it is force-ended
    /// (default 5000).
    #[serde(default)]
    pub abort_grace_ms: Option<u64>,
    /// Deadline of a call to a session (send, get, ...; default 30000).
    #[serde(default)]
    pub call_timeout_ms: Option<u64>,
    /// How long a steer waits for the active run to end.
    #[serde(default)]
    pub steer_deadline_ms: Option<u64>,
    /// Passivate sessions idle this long.
    #[serde(default)]
    pub idle_after_ms: Option<u64>,
    /// Emit `stalled` after this long without driver activity.
    #[serde(default)]
    pub stall_after_ms: Option<u64>,
    /// Abort a run after this long without driver activity.
    #[serde(default)]
    pub stall_abort_after_ms: Option<u64>,
    /// Days archived messages are kept.
    #[serde(default)]
    pub archive_ttl_days: Option<u64>,
    /// Prompts waiting behind a run, per session.
    #[serde(default)]
    pub max_queued: Option<usize>,
    /// Honour test hooks (the scripted driver's `crash_actor`); for test servers only.
    #[serde(default)]
    pub test_hooks: Option<bool>,
}

/// `[writer]`: the group-commit writer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterTiming {
    /// How long a failing commit is retried before its writes fail and their
    /// sessions stop (default 20000).
    #[serde(default)]
    pub persist_deadline_ms: Option<u64>,
}

impl FileConfig {
    /// Applies the file's timing to a configuration; errors name the key.
    pub fn apply_timing(&self, config: &mut super::Config) -> Result<(), String> {
        use std::time::Duration;
        let ms = |key: &str, v: u64, min: u64, max: u64| {
            if (min..=max).contains(&v) {
                Ok(Duration::from_millis(v))
            } else {
                Err(format!("{key} must be between {min} and {max}"))
            }
        };
        let s = &self.session;
        if let Some(v) = s.lease_ttl_ms {
            config.session.lease_ttl = ms("session.lease_ttl_ms", v, 1_000, 600_000)?;
        }
        if let Some(v) = s.abort_grace_ms {
            config.session.abort_grace = ms("session.abort_grace_ms", v, 10, 600_000)?;
        }
        if let Some(v) = s.call_timeout_ms {
            config.session.call_timeout = ms("session.call_timeout_ms", v, 100, 3_600_000)?;
        }
        if let Some(v) = s.steer_deadline_ms {
            config.session.steer_deadline = ms("session.steer_deadline_ms", v, 10, 600_000)?;
        }
        if let Some(v) = s.idle_after_ms {
            config.session.idle_after = ms("session.idle_after_ms", v, 10, 30 * 24 * 3_600_000)?;
        }
        if let Some(v) = s.stall_after_ms {
            config.session.stall_after = ms("session.stall_after_ms", v, 10, 30 * 24 * 3_600_000)?;
        }
        if let Some(v) = s.stall_abort_after_ms {
            config.session.stall_abort_after = Some(ms(
                "session.stall_abort_after_ms",
                v,
                10,
                30 * 24 * 3_600_000,
            )?);
        }
        if let Some(v) = s.archive_ttl_days {
            if !(1..=3650).contains(&v) {
                return Err("session.archive_ttl_days must be between 1 and 3650".into());
            }
            config.session.archive_ttl = Duration::from_secs(v * 24 * 3600);
        }
        if let Some(v) = s.max_queued {
            if !(1..=100_000).contains(&v) {
                return Err("session.max_queued must be between 1 and 100000".into());
            }
            config.session.max_queued = v;
        }
        if let Some(v) = s.test_hooks {
            config.session.test_hooks = v;
        }
        if let Some(v) = self.node.drain_timeout_ms {
            config.drain_timeout = ms("node.drain_timeout_ms", v, 0, 3_600_000)?;
        }
        if let Some(v) = self.node.recovery_interval_ms {
            config.recovery_interval = ms("node.recovery_interval_ms", v, 50, 600_000)?;
        }
        let r = &self.retention;
        if let Some(v) = r.max_sessions {
            if !sessiond_store::RetentionPolicy::MAX_SESSIONS.contains(&v) {
                return Err("retention.max_sessions must be between 1 and 50".into());
            }
            config.session.default_retention.max_sessions = v;
        }
        if let Some(v) = r.max_age_days {
            if !sessiond_store::RetentionPolicy::MAX_AGE_DAYS.contains(&v) {
                return Err("retention.max_age_days must be between 1 and 365".into());
            }
            config.session.default_retention.max_age_days = v;
        }
        if let Some(v) = r.sweep_interval_ms {
            config.retention_sweep =
                ms("retention.sweep_interval_ms", v, 100, 30 * 24 * 3_600_000)?;
        }
        let l = &self.limits;
        if let Some(v) = l.max_prompt_bytes {
            if !(1..=64 * 1024 * 1024).contains(&v) {
                return Err("limits.max_prompt_bytes must be between 1 and 67108864".into());
            }
            config.limits.max_prompt_bytes = v;
            // The body must fit the prompt and its JSON around it.
            config.limits.max_body_bytes = config.limits.max_body_bytes.max(v + 64 * 1024);
        }
        if let Some(v) = l.max_body_bytes {
            if v < config.limits.max_prompt_bytes || v > 128 * 1024 * 1024 {
                return Err(
                    "limits.max_body_bytes must be at least max_prompt_bytes and at most 134217728"
                        .into(),
                );
            }
            config.limits.max_body_bytes = v;
        }
        if let Some(v) = self.writer.persist_deadline_ms {
            config.writer.persist_deadline = ms("writer.persist_deadline_ms", v, 100, 3_600_000)?;
        }
        Ok(())
    }
}

impl FileConfig {
    /// Reads and parses a file; errors name the file and the line.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the TOML text of a configuration file.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file_and_refuses_typos() {
        let c = FileConfig::parse(
            r#"
            listen = "127.0.0.1:9000"
            data_dir = "/var/lib/sessiond"
            node_id = "node-a"
            [drivers.local]
            kind = "openai"
            base_url = "http://127.0.0.1:11434/v1"
            "#,
        )
        .unwrap();
        assert_eq!(c.listen, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(c.node_id.as_deref(), Some("node-a"));
        assert!(c.drivers.contains_key("local"));
        let mut config = super::super::Config::default();
        let timed = FileConfig::parse(
            "[session]\nlease_ttl_ms = 2000\n[writer]\npersist_deadline_ms = 500\n",
        )
        .unwrap();
        timed.apply_timing(&mut config).unwrap();
        assert_eq!(config.session.lease_ttl.as_millis(), 2000);
        assert_eq!(config.writer.persist_deadline.as_millis(), 500);
        let short = FileConfig::parse("[session]\nlease_ttl_ms = 10\n").unwrap();
        assert!(
            short
                .apply_timing(&mut config)
                .unwrap_err()
                .contains("lease_ttl_ms")
        );
        let tuned = FileConfig::parse(
            "[session]\nidle_after_ms = 300\nstall_abort_after_ms = 900\n\
             [retention]\nmax_sessions = 7\n[limits]\nmax_prompt_bytes = 4096\n",
        )
        .unwrap();
        tuned.apply_timing(&mut config).unwrap();
        assert_eq!(config.session.idle_after.as_millis(), 300);
        assert_eq!(
            config.session.stall_abort_after.map(|d| d.as_millis()),
            Some(900)
        );
        assert_eq!(config.session.default_retention.max_sessions, 7);
        assert_eq!(config.limits.max_prompt_bytes, 4096);
        let too_many = FileConfig::parse("[retention]\nmax_sessions = 51\n").unwrap();
        assert!(
            too_many
                .apply_timing(&mut config)
                .unwrap_err()
                .contains("max_sessions")
        );
        let typo = FileConfig::parse("listn = \"127.0.0.1:9000\"").unwrap_err();
        assert!(typo.contains("listn"), "{typo}");
        assert!(FileConfig::parse("").is_ok());
    }
}
