//! `sessiond.toml`: the configuration file. Command-line flags override it.
//!
//! ```toml
//! listen = "127.0.0.1:7411"
//! data_dir = "./sessiond-data"      # embedded SQLite, unless `redis` is set
//! # redis = "redis://127.0.0.1:6379"
//! # node_id = "node-a"
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
        let typo = FileConfig::parse("listn = \"127.0.0.1:9000\"").unwrap_err();
        assert!(typo.contains("listn"), "{typo}");
        assert!(FileConfig::parse("").is_ok());
    }
}
