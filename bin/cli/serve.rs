//! `sessiond serve`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use sessiond_runtime::config::Config;
use sessiond_runtime::config::drivers::registry;
use sessiond_runtime::config::file::FileConfig;
use sessiond_runtime::config::layers::{self, Overrides};
use sessiond_runtime::node::Node;

/// The flags of `sessiond serve`. Each names a key of the configuration tree (see
/// `sessiond_runtime::config::layers`): a flag beats the variables and the file.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Configuration file (default: ./sessiond.toml when it exists). Flags override
    /// it, and so do SESSIOND_SECTION__KEY variables (SESSIOND_SESSION__LEASE_TTL_MS).
    #[arg(long, env = "SESSIOND_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7411]; port 0 picks a free one (the
    /// chosen address is printed).
    #[arg(long, env = "SESSIOND_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory of the embedded SQLite store [default: ./sessiond-data]; used unless
    /// a Redis URL is given (a --data-dir means SQLite even when the file names Redis).
    #[arg(long, env = "SESSIOND_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Use Redis at this URL instead of the embedded store
    /// (`redis+cluster://h1:p1,h2:p2` for a Redis Cluster).
    #[arg(long, env = "SESSIOND_REDIS")]
    redis: Option<String>,
    /// Keep everything in memory (lost at exit; for demos and tests).
    #[arg(long, conflicts_with = "redis")]
    memory: bool,
    /// This node's id (generated when omitted; kept in the data dir for SQLite).
    #[arg(long, env = "SESSIOND_NODE_ID")]
    node_id: Option<String>,
    /// Where peers and clients reach this node's API (`host:port` or a URL), shown
    /// in `GET /v1/node`; the listen address when omitted.
    #[arg(long, env = "SESSIOND_ADVERTISE")]
    advertise: Option<String>,
}

impl ServeArgs {
    /// The flags as the top layer of the configuration.
    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            redis: self.redis.clone(),
            memory: self.memory,
            node_id: self.node_id.clone(),
            advertise: self.advertise.clone(),
        }
    }

    /// The configuration tree from defaults, file, environment and these flags, and
    /// the node's configuration checked from it.
    fn configure(&self) -> anyhow::Result<(FileConfig, Config)> {
        let tree = layers::load(self.config.as_deref(), &self.overrides())?;
        let config = tree.to_config()?;
        Ok((tree, config))
    }
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let (tree, mut config) = args.configure()?;
    let drivers = registry(&tree.drivers).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    if config.advertise.is_none() {
        config.advertise = Some(format!("http://{addr}"));
    }
    let node = Node::start(config, drivers)
        .await
        .context("cannot open the store")?;
    // Scripts and tests read this line to learn the address.
    println!(
        "sessiond listening on http://{addr} (node {}, store {}, drivers {})",
        node.id(),
        node.backend().kind,
        node.drivers().names().join(",")
    );
    std::io::stdout().flush()?;
    sessiond_runtime::server::serve(listener, node, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
// Jail's closures return figment's `Result`, whose error type is large; only tests
// make one.
#[allow(clippy::result_large_err)]
mod tests {
    use clap::Parser;
    use figment::Jail;
    use sessiond_runtime::config::StoreConfig;

    use super::*;

    #[derive(Debug, Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    /// The configuration `sessiond serve ARGS` runs with, in the jail's directory
    /// and environment.
    fn configure(args: &[&str]) -> figment::error::Result<Config> {
        let argv = std::iter::once("serve").chain(args.iter().copied());
        let serve = Serve::try_parse_from(argv).map_err(|e| e.to_string())?;
        let (_, config) = serve.args.configure().map_err(|e| format!("{e:#}"))?;
        Ok(config)
    }

    #[test]
    fn flags_beat_their_variables_which_beat_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "sessiond.toml",
                "listen = \"127.0.0.1:9000\"\nredis = \"redis://file:6379\"\n\
                 [session]\nlease_ttl_ms = 2000\n",
            )?;
            let c = configure(&[])?;
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(
                c.store,
                StoreConfig::Redis {
                    url: "redis://file:6379".into()
                }
            );
            assert_eq!(c.session.lease_ttl.as_millis(), 2000);

            jail.set_env("SESSIOND_LISTEN", "127.0.0.1:9100");
            jail.set_env("SESSIOND_DATA_DIR", "/env/dir");
            jail.set_env("SESSIOND_SESSION__LEASE_TTL_MS", 3000);
            let c = configure(&[])?;
            assert_eq!(c.listen.port(), 9100);
            assert_eq!(
                c.store,
                StoreConfig::Sqlite {
                    data_dir: "/env/dir".into()
                },
                "a data dir given outside the file means SQLite"
            );
            assert_eq!(c.session.lease_ttl.as_millis(), 3000);

            let c = configure(&["--listen", "127.0.0.1:9200", "--memory"])?;
            assert_eq!(c.listen.port(), 9200);
            assert_eq!(c.store, StoreConfig::Memory);
            assert_eq!(c.session.lease_ttl.as_millis(), 3000);
            Ok(())
        });
    }

    #[test]
    fn a_bad_file_stops_the_start_naming_the_key() {
        Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[session]\nlease_ttl_ms = 10\n")?;
            let err = configure(&["--config", "bad.toml"])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("session.lease_ttl_ms must be between 1000 and 600000"),
                "{err}"
            );
            jail.create_file("typo.toml", "[node]\ndrain_timeout = 10\n")?;
            let err = configure(&["--config", "typo.toml"])
                .unwrap_err()
                .to_string();
            assert!(err.contains("drain_timeout"), "{err}");
            Ok(())
        });
    }
}
