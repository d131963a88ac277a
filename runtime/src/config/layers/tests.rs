//! figment's `Jail` sets variables and the working directory for one test at a time
//! and restores them after it.

// Jail's closures return figment's `Result`, whose error type is large; only tests
// make one.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use figment::Jail;

use super::*;
use crate::config::drivers::DriverProfile;
use crate::config::{Config, StoreConfig};

/// The configuration the layers give, or the error's text (as a figment error, so
/// `?` works inside a jail).
fn config(explicit: Option<&Path>, overrides: &Overrides) -> figment::error::Result<Config> {
    load(explicit, overrides)
        .and_then(|tree| tree.to_config())
        .map_err(|e| e.to_string().into())
}

#[test]
fn file_then_env_then_flags() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "sessiond.toml",
            r#"
            listen = "127.0.0.1:9000"
            node_id = "file-node"
            [session]
            lease_ttl_ms = 2000
            call_timeout_ms = 4000
            [writer]
            persist_deadline_ms = 500
            [drivers.local]
            kind = "openai"
            base_url = "http://127.0.0.1:11434/v1"
            "#,
        )?;
        jail.set_env("SESSIOND_SESSION__LEASE_TTL_MS", 3000);
        jail.set_env("SESSIOND_DRIVERS__LOCAL__MODEL", "llama3.1");
        jail.set_env("SESSIOND_NODE__DRAIN_TIMEOUT_MS", 700);
        let flags = Overrides {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Overrides::default()
        };
        // ./sessiond.toml is read without --config.
        let c = config(None, &flags)?;
        assert_eq!(
            c.listen,
            "127.0.0.1:9100".parse().unwrap(),
            "flag over file"
        );
        assert_eq!(c.session.lease_ttl, Duration::from_secs(3), "env over file");
        assert_eq!(
            c.drain_timeout,
            Duration::from_millis(700),
            "env over default"
        );
        assert_eq!(c.session.call_timeout, Duration::from_secs(4), "file");
        assert_eq!(
            c.writer.persist_deadline,
            Duration::from_millis(500),
            "file"
        );
        assert_eq!(c.node_id.unwrap().as_str(), "file-node");
        assert_eq!(
            c.recovery_interval,
            Config::default().recovery_interval,
            "default"
        );
        // A variable sets one key of a table the file gives.
        let tree = load(None, &flags).map_err(|e| e.to_string())?;
        let Some(DriverProfile::Openai(local)) = tree.drivers.get("local") else {
            panic!("{:?}", tree.drivers);
        };
        assert_eq!(local.model.as_deref(), Some("llama3.1"));
        assert_eq!(local.base_url, "http://127.0.0.1:11434/v1");
        Ok(())
    });
}

#[test]
fn a_store_flag_names_the_store() {
    Jail::expect_with(|jail| {
        jail.create_file("redis.toml", "redis = \"redis://file:6379\"")?;
        jail.create_file("memory.toml", "memory = true")?;
        let redis = Some(Path::new("redis.toml"));
        assert_eq!(
            config(redis, &Overrides::default())?.store,
            StoreConfig::Redis {
                url: "redis://file:6379".into()
            }
        );
        let data_dir = Overrides {
            data_dir: Some("/flag/dir".into()),
            ..Overrides::default()
        };
        assert_eq!(
            config(redis, &data_dir)?.store,
            StoreConfig::Sqlite {
                data_dir: "/flag/dir".into()
            },
            "--data-dir means SQLite even when the file names a Redis server"
        );
        let memory = Overrides {
            memory: true,
            ..Overrides::default()
        };
        assert_eq!(config(redis, &memory)?.store, StoreConfig::Memory);
        let url = Overrides {
            redis: Some("redis://flag:6379".into()),
            data_dir: Some("/flag/dir".into()),
            ..Overrides::default()
        };
        let flag_redis = StoreConfig::Redis {
            url: "redis://flag:6379".into(),
        };
        assert_eq!(config(redis, &url)?.store, flag_redis);
        assert_eq!(
            config(Some(Path::new("memory.toml")), &url)?.store,
            flag_redis
        );
        Ok(())
    });
}

#[test]
fn variables_without_a_section_are_not_keys() {
    Jail::expect_with(|jail| {
        // The flags' variables (read by the argument parser, not here) and others.
        jail.set_env("SESSIOND_CONFIG", "/no/such/file.toml");
        jail.set_env("SESSIOND_LISTEN", "not an address");
        jail.set_env("SESSIOND_SERVER", "http://127.0.0.1:7411");
        jail.set_env("SESSIOND_OPENAI_KEY", "sk-test");
        let c = config(None, &Overrides::default())?;
        assert_eq!(c.listen, Config::default().listen);
        // A misspelt key of a section is refused, naming it.
        jail.set_env("SESSIOND_SESSION__LEASE_TTL", 3000);
        let err = config(None, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("lease_ttl"), "{err}");
        Ok(())
    });
}

#[test]
fn a_value_from_the_environment_is_checked_like_one_from_the_file() {
    Jail::expect_with(|jail| {
        jail.set_env("SESSIOND_RETENTION__MAX_SESSIONS", 51);
        let err = config(None, &Overrides::default()).unwrap_err().to_string();
        assert!(
            err.contains("retention.max_sessions must be between 1 and 50"),
            "{err}"
        );
        jail.set_env("SESSIOND_RETENTION__MAX_SESSIONS", "many");
        let err = config(None, &Overrides::default()).unwrap_err().to_string();
        assert!(
            err.contains("\"SESSIOND_RETENTION__MAX_SESSIONS\" in the environment"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn a_named_file_must_exist_and_only_the_working_directory_is_searched() {
    Jail::expect_with(|jail| {
        let missing = config(Some(Path::new("missing.toml")), &Overrides::default());
        let err = missing.unwrap_err().to_string();
        assert!(err.starts_with("cannot read missing.toml: "), "{err}");
        jail.create_file("sessiond.toml", "listn = 1")?;
        assert!(config(None, &Overrides::default()).is_err(), "typo in ./");
        jail.create_dir("below")?;
        jail.change_dir("below")?;
        assert!(
            config(None, &Overrides::default()).is_ok(),
            "a parent directory's sessiond.toml is not read"
        );
        Ok(())
    });
}
