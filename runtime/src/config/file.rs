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
    /// Driver profiles by name.
    #[serde(default)]
    pub drivers: BTreeMap<String, DriverProfile>,
    /// Session timing.
    #[serde(default)]
    pub session: SessionTiming,
    /// The group-commit writer.
    #[serde(default)]
    pub writer: WriterTiming,
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
        let typo = FileConfig::parse("listn = \"127.0.0.1:9000\"").unwrap_err();
        assert!(typo.contains("listn"), "{typo}");
        assert!(FileConfig::parse("").is_ok());
    }
}
