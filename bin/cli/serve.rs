//! `sessiond serve`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use sessiond_runtime::config::drivers::registry;
use sessiond_runtime::config::file::FileConfig;
use sessiond_runtime::config::{Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN, StoreConfig};
use sessiond_runtime::node::Node;
use sessiond_store::NodeId;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Configuration file (default: ./sessiond.toml when it exists). Flags override it.
    #[arg(long, env = "SESSIOND_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7411]; port 0 picks a free one (the
    /// chosen address is printed).
    #[arg(long, env = "SESSIOND_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory of the embedded SQLite store [default: ./sessiond-data]; used unless
    /// a Redis URL is given.
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

/// The default configuration file, read when present and no `--config` is given.
const DEFAULT_CONFIG_FILE: &str = "sessiond.toml";

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let file = match &args.config {
        Some(path) => FileConfig::load(path).map_err(anyhow::Error::msg)?,
        None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
            FileConfig::load(Path::new(DEFAULT_CONFIG_FILE)).map_err(anyhow::Error::msg)?
        }
        None => FileConfig::default(),
    };
    let drivers = registry(&file.drivers).map_err(anyhow::Error::msg)?;
    // A flag beats the file: an explicit --data-dir means SQLite even when the file
    // names a Redis server.
    let store = if args.memory {
        StoreConfig::Memory
    } else if let Some(url) = args.redis {
        StoreConfig::Redis { url }
    } else if let Some(data_dir) = args.data_dir {
        StoreConfig::Sqlite { data_dir }
    } else if let Some(url) = file.redis.clone() {
        StoreConfig::Redis { url }
    } else {
        StoreConfig::Sqlite {
            data_dir: file
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        }
    };
    let node_id = args
        .node_id
        .or(file.node_id.clone())
        .map(NodeId::new)
        .transpose()?;
    let mut config = Config {
        listen: match args.listen.or(file.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse()?,
        },
        store,
        node_id,
        ..Config::default()
    };
    file.apply_timing(&mut config).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    config.advertise = Some(
        args.advertise
            .or(file.advertise.clone())
            .unwrap_or_else(|| format!("http://{addr}")),
    );
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
