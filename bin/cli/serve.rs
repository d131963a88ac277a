//! `sessiond serve`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use sessiond_runtime::config::{Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN, StoreConfig};
use sessiond_runtime::node::Node;
use sessiond_store::NodeId;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the chosen address is printed).
    #[arg(long, default_value = DEFAULT_LISTEN, env = "SESSIOND_LISTEN")]
    listen: SocketAddr,
    /// Directory of the embedded SQLite store (used unless --redis is given).
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "SESSIOND_DATA_DIR")]
    data_dir: PathBuf,
    /// Use Redis at this URL instead of the embedded store.
    #[arg(long, env = "SESSIOND_REDIS")]
    redis: Option<String>,
    /// Keep everything in memory (lost at exit; for demos and tests).
    #[arg(long, conflicts_with = "redis")]
    memory: bool,
    /// This node's id (generated when omitted).
    #[arg(long, env = "SESSIOND_NODE_ID")]
    node_id: Option<String>,
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let store = match (args.redis, args.memory) {
        (Some(url), _) => StoreConfig::Redis { url },
        (None, true) => StoreConfig::Memory,
        (None, false) => StoreConfig::Sqlite {
            data_dir: args.data_dir,
        },
    };
    let node_id = args.node_id.map(NodeId::new).transpose()?;
    let config = Config {
        listen: args.listen,
        store,
        node_id,
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let node = Node::start(config, sessiond_actors_drivers())
        .await
        .context("cannot open the store")?;
    // Scripts and tests read this line to learn the address.
    println!(
        "sessiond listening on http://{addr} (node {}, store {})",
        node.id(),
        node.backend().kind
    );
    std::io::stdout().flush()?;
    sessiond_runtime::server::serve(listener, node, shutdown_signal()).await?;
    Ok(())
}

fn sessiond_actors_drivers() -> sessiond_runtime::node::Drivers {
    sessiond_runtime::node::Drivers::with_scripted()
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
