use figment::Figment;
use figment::providers::{Format, Toml};

use super::*;

/// The tree a file gives on its own (no environment, no flags).
fn parse(text: &str) -> Result<FileConfig, String> {
    Figment::from(Toml::string(text))
        .extract::<FileConfig>()
        .map_err(|e| e.to_string())
}

/// The configuration a file gives, or the error naming the bad key.
fn config(text: &str) -> Result<Config, String> {
    parse(text)?.to_config().map_err(|e| e.to_string())
}

#[test]
fn parses_a_full_file_and_refuses_typos() {
    let c = parse(
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
    assert_eq!(c.listen, "127.0.0.1:9000".parse::<SocketAddr>().unwrap());
    assert_eq!(c.node_id.as_deref(), Some("node-a"));
    assert!(c.drivers.contains_key("local"));
    assert_eq!(
        c.to_config().unwrap().store,
        StoreConfig::Sqlite {
            data_dir: "/var/lib/sessiond".into()
        }
    );
    let timed =
        config("[session]\nlease_ttl_ms = 2000\n[writer]\npersist_deadline_ms = 500\n").unwrap();
    assert_eq!(timed.session.lease_ttl.as_millis(), 2000);
    assert_eq!(timed.writer.persist_deadline.as_millis(), 500);
    let short = config("[session]\nlease_ttl_ms = 10\n").unwrap_err();
    assert!(short.contains("lease_ttl_ms"), "{short}");
    let tuned = config(
        "[session]\nidle_after_ms = 300\nstall_abort_after_ms = 900\n\
         [retention]\nmax_sessions = 7\n[limits]\nmax_prompt_bytes = 4096\n",
    )
    .unwrap();
    assert_eq!(tuned.session.idle_after.as_millis(), 300);
    assert_eq!(
        tuned.session.stall_abort_after.map(|d| d.as_millis()),
        Some(900)
    );
    assert_eq!(tuned.session.default_retention.max_sessions, 7);
    assert_eq!(tuned.limits.max_prompt_bytes, 4096);
    let too_many = config("[retention]\nmax_sessions = 51\n").unwrap_err();
    assert!(too_many.contains("max_sessions"), "{too_many}");
    let typo = parse("listn = \"127.0.0.1:9000\"").unwrap_err();
    assert!(typo.contains("listn"), "{typo}");
    assert!(parse("").is_ok());
}

#[test]
fn the_defaults_are_the_nodes() {
    let from_tree = FileConfig::default().to_config().unwrap();
    assert_eq!(format!("{from_tree:?}"), format!("{:?}", Config::default()));
    let from_empty_file = config("").unwrap();
    assert_eq!(format!("{from_empty_file:?}"), format!("{from_tree:?}"));
}

#[test]
fn out_of_range_values_name_the_key_and_the_range() {
    for (text, message) in [
        (
            "[session]\nlease_ttl_ms = 999",
            "session.lease_ttl_ms must be between 1000 and 600000",
        ),
        (
            "[session]\nabort_grace_ms = 9",
            "session.abort_grace_ms must be between 10 and 600000",
        ),
        (
            "[session]\ncall_timeout_ms = 3600001",
            "session.call_timeout_ms must be between 100 and 3600000",
        ),
        (
            "[session]\nsteer_deadline_ms = 0",
            "session.steer_deadline_ms must be between 10 and 600000",
        ),
        (
            "[session]\nidle_after_ms = 2592000001",
            "session.idle_after_ms must be between 10 and 2592000000",
        ),
        (
            "[session]\nstall_after_ms = 1",
            "session.stall_after_ms must be between 10 and 2592000000",
        ),
        (
            "[session]\nstall_abort_after_ms = 1",
            "session.stall_abort_after_ms must be between 10 and 2592000000",
        ),
        (
            "[session]\narchive_ttl_days = 0",
            "session.archive_ttl_days must be between 1 and 3650",
        ),
        (
            "[session]\nmax_queued = 100001",
            "session.max_queued must be between 1 and 100000",
        ),
        (
            "[node]\ndrain_timeout_ms = 3600001",
            "node.drain_timeout_ms must be between 0 and 3600000",
        ),
        (
            "[node]\nrecovery_interval_ms = 49",
            "node.recovery_interval_ms must be between 50 and 600000",
        ),
        (
            "[node]\nmax_served_forwards = 0",
            "node.max_served_forwards must be between 1 and 100000",
        ),
        (
            "[node]\nproject_idle_after_ms = 99",
            "node.project_idle_after_ms must be between 100 and 86400000",
        ),
        (
            "[retention]\nmax_age_days = 366",
            "retention.max_age_days must be between 1 and 365",
        ),
        (
            "[retention]\nsweep_interval_ms = 99",
            "retention.sweep_interval_ms must be between 100 and 2592000000",
        ),
        (
            "[limits]\nmax_prompt_bytes = 0",
            "limits.max_prompt_bytes must be between 1 and 67108864",
        ),
        (
            "[limits]\nmax_prompt_bytes = 4096\nmax_body_bytes = 4095",
            "limits.max_body_bytes must be at least max_prompt_bytes and at most 134217728",
        ),
        (
            "[writer]\npersist_deadline_ms = 99",
            "writer.persist_deadline_ms must be between 100 and 3600000",
        ),
        ("node_id = \"a b\"", "node_id is not valid"),
    ] {
        let err = config(text).unwrap_err();
        assert!(err.starts_with(message), "{text}: {err}");
    }
    let typo = parse("[session]\nlease_ttl = 2000").unwrap_err();
    assert!(typo.contains("lease_ttl"), "{typo}");
}

#[test]
fn the_body_limit_fits_the_prompt_limit_unless_set() {
    let big = config("[limits]\nmax_prompt_bytes = 4194304").unwrap();
    assert_eq!(big.limits.max_body_bytes, 4194304 + 65536);
    let set = config("[limits]\nmax_prompt_bytes = 4096\nmax_body_bytes = 8192").unwrap();
    assert_eq!(set.limits.max_body_bytes, 8192);
    assert_eq!(config("").unwrap().limits.max_body_bytes, 2 * 1024 * 1024);
}

#[test]
fn the_store_is_memory_then_redis_then_sqlite() {
    let redis = config("redis = \"redis://h:1\"\ndata_dir = \"/d\"").unwrap();
    assert_eq!(
        redis.store,
        StoreConfig::Redis {
            url: "redis://h:1".into()
        }
    );
    let memory = config("redis = \"redis://h:1\"\nmemory = true").unwrap();
    assert_eq!(memory.store, StoreConfig::Memory);
    assert_eq!(
        config("").unwrap().store,
        StoreConfig::Sqlite {
            data_dir: DEFAULT_DATA_DIR.into()
        }
    );
}

#[test]
fn the_node_bounds_are_read() {
    let c = config("[node]\nmax_served_forwards = 8\nproject_idle_after_ms = 5000\n").unwrap();
    assert_eq!(c.max_served_forwards, 8);
    assert_eq!(c.session.project_idle_after.as_millis(), 5000);
    let d = Config::default();
    assert_eq!(d.max_served_forwards, 256);
    assert_eq!(d.session.project_idle_after.as_secs(), 60);
}
