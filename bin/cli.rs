//! Command-line arguments and dispatch.

mod bench;
mod client;
mod lifecycle;
mod listing;
mod openapi;
mod projects;
mod serve;
mod sessions;
mod tail;

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
    Sessions(Box<sessions::SessionsArgs>),
    /// Project commands against a running server: events, retention.
    Projects(projects::ProjectsArgs),
    /// Shows the server's node: id, store, session counts.
    Node(projects::NodeArgs),
    /// Measures a node end to end (HTTP + SSE) on one or more stores.
    Bench(bench::BenchArgs),
    /// Prints the API's OpenAPI 3.1 document (docs/openapi.json is its output).
    Openapi,
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Sessions(args) => sessions::run(*args).await,
        Command::Projects(args) => projects::run(args).await,
        Command::Node(args) => projects::node(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Openapi => openapi::run(),
    }
}
