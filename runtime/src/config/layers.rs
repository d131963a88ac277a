//! Where the configuration comes from: figment layers, each over the one before.
//!
//! 1. Defaults: every key of [`FileConfig`] has one (`#[serde(default)]`).
//! 2. The file: `--config FILE`, or `./sessiond.toml` when it exists.
//! 3. The environment: `SESSIOND_<SECTION>__<KEY>` sets `<section>.<key>`
//!    (`SESSIOND_SESSION__LEASE_TTL_MS=2000` is `[session] lease_ttl_ms = 2000`).
//!    Only names with `__` are keys: the flags' own variables (`SESSIOND_LISTEN`,
//!    `SESSIOND_CONFIG`, ...) are read by the argument parser as the flag itself,
//!    and other `SESSIOND_` names (the client's `SESSIOND_SERVER`, API keys named
//!    by driver profiles) are no configuration keys.
//! 4. The flags ([`Overrides`]).
//!
//! A store flag names the store outright: `--data-dir` means SQLite even when the
//! file names a Redis server, `--redis` and `--data-dir` undo the file's `memory`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;

use super::file::FileConfig;
use super::{ConfigError, DEFAULT_CONFIG_FILE};

/// The prefix of the variables that set keys.
pub const ENV_PREFIX: &str = "SESSIOND_";

/// What the command line sets (`sessiond serve` flags, or the variables standing
/// for them); `None` and `false` leave the key to the layers below.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`: SQLite in this directory.
    pub data_dir: Option<PathBuf>,
    /// `--redis`: Redis at this URL.
    pub redis: Option<String>,
    /// `--memory`: everything in memory.
    pub memory: bool,
    /// `--node-id`.
    pub node_id: Option<String>,
    /// `--advertise`.
    pub advertise: Option<String>,
}

/// The keys the overrides set, in the tree's shape. A missing key is left to the
/// layers below; `Some(None)` clears the key.
#[derive(Debug, Serialize)]
struct OverrideLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    advertise: Option<String>,
}

impl Overrides {
    fn layer(&self) -> OverrideLayer {
        // A store flag names the store: it clears what the layers below say of the
        // others (`memory` wins over `redis`, which wins over `data_dir`).
        let (memory, redis) = if self.memory {
            (Some(true), None)
        } else if let Some(url) = &self.redis {
            (Some(false), Some(Some(url.clone())))
        } else if self.data_dir.is_some() {
            (Some(false), Some(None))
        } else {
            (None, None)
        };
        OverrideLayer {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            redis,
            memory,
            node_id: self.node_id.clone(),
            advertise: self.advertise.clone(),
        }
    }
}

/// The file read when `explicit` (`--config`) is `None`: `./sessiond.toml` when it
/// exists.
pub fn config_file(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let default = Path::new(DEFAULT_CONFIG_FILE);
            default.is_file().then(|| default.to_path_buf())
        }
    }
}

/// The layers, lowest first: `file`, the environment, the overrides. The defaults
/// are the tree's own.
pub fn figment(file: Option<&Path>, overrides: &Overrides) -> Figment {
    let mut figment = Figment::new();
    if let Some(path) = file {
        // `file_exact`: `Toml::file` would also look in parent directories.
        figment = figment.merge(Named::new(
            Toml::file_exact(path),
            path.display().to_string(),
            |keys| keys.join("."),
        ));
    }
    figment
        .merge(Named::new(env(), "the environment", |keys| {
            format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase())
        }))
        .merge(Named::new(
            Serialized::defaults(overrides.layer()),
            "the command line",
            |keys| keys.join("."),
        ))
}

/// The variables that set keys: `SESSIOND_SECTION__KEY` (names without `__` are
/// left alone, see the module docs).
fn env() -> Env {
    Env::prefixed(ENV_PREFIX)
        .split("__")
        .filter(|key| key.as_str().contains('.'))
}

/// A layer under the name its errors give: `for key "session.lease_ttl_ms" in
/// ./sessiond.toml`, `for key "SESSIOND_SESSION__LEASE_TTL_MS" in the environment`
/// (figment's own would say `default.session.lease_ttl_ms` and
/// `SESSION.LEASE_TTL_MS`).
struct Named<P> {
    provider: P,
    metadata: Metadata,
}

impl<P: Provider> Named<P> {
    fn new(
        provider: P,
        name: impl Into<String>,
        key: impl Fn(&[&str]) -> String + Clone + Send + Sync + 'static,
    ) -> Self {
        let metadata =
            Metadata::named(name.into()).interpolater(move |_: &Profile, keys: &[&str]| key(keys));
        Self { provider, metadata }
    }
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.provider.data()
    }
}

/// Reads the tree: `explicit` (`--config`) or `./sessiond.toml` when it exists,
/// then the environment, then `overrides`. Errors name the key and where its value
/// came from.
pub fn load(explicit: Option<&Path>, overrides: &Overrides) -> Result<FileConfig, ConfigError> {
    let file = config_file(explicit);
    if let Some(path) = &file {
        // figment would say only "No such file or directory ... in PATH".
        std::fs::File::open(path).map_err(|error| ConfigError::Unreadable {
            path: path.clone(),
            error,
        })?;
    }
    Ok(figment(file.as_deref(), overrides).extract()?)
}

#[cfg(test)]
mod tests;
