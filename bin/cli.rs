//! Command-line arguments and dispatch.

mod bench;
mod client;
mod serve;
mod sessions;

use clap::{Parser, Subcommand};

/// Hosts AI-agent sessions: run the server, or talk to one.
#[derive(Debug, Parser)]
#[command(name = "sessiond", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a node (embedded SQLite by default; `--redis URL` for Redis).
    Serve(serve::ServeArgs),
    /// Session commands against a running server.
    Sessions(sessions::SessionsArgs),
    /// Measures a node end to end (HTTP + SSE) on one or more stores.
    Bench(bench::BenchArgs),
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Sessions(args) => sessions::run(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}
