//! `sessiond projects events|retention` and `sessiond node`.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use sessiond_client::Client;
use sessiond_client::events::ProjectEvent;
use sessiond_client::model::RetentionRequest;

use super::client::ServerArgs;
use super::sessions::print_json;

/// `sessiond projects ...`.
#[derive(Debug, Args)]
pub(crate) struct ProjectsArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: ProjectsCommand,
}

#[derive(Debug, Subcommand)]
enum ProjectsCommand {
    /// Follows a project's events live, one JSON object per line:
    /// `{"event": "sessions.changed" | "status", "data": {...}}`.
    Events {
        /// Project slug.
        project: String,
        /// Exit after this many events (scripts).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Shows a project's retention policy; with a flag, sets it (a flag not given
    /// takes the server's default).
    Retention {
        /// Project slug.
        project: String,
        /// Finished sessions kept (1..=50).
        #[arg(long)]
        max_sessions: Option<u32>,
        /// Days a finished session is kept after its last activity (1..=365).
        #[arg(long)]
        max_age_days: Option<u32>,
    },
}

/// `sessiond node`.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs one project verb and prints its answer.
pub(crate) async fn run(args: ProjectsArgs) -> anyhow::Result<()> {
    let api = args.server.client()?;
    match args.command {
        ProjectsCommand::Events { project, count } => events(&api, &project, count).await,
        ProjectsCommand::Retention {
            project,
            max_sessions,
            max_age_days,
        } => {
            let policy = if max_sessions.is_none() && max_age_days.is_none() {
                api.retention(&project).await?
            } else {
                let req = RetentionRequest {
                    max_sessions,
                    max_age_days,
                };
                api.set_retention(&project, &req).await?
            };
            print_json(&policy)
        }
    }
}

/// `sessiond node`: what the node holds.
pub(crate) async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let api = args.server.client()?;
    print_json(&api.node().await?)
}

/// Prints the project's events as JSON lines. Project notices cannot be replayed,
/// so this does not reconnect: a stream that ends is an error the caller sees
/// (list the project again, then follow anew).
async fn events(api: &Client, project: &str, count: Option<u64>) -> anyhow::Result<()> {
    let mut stream = api.project_events(project).await?;
    // The subscription is live from here: say so, so a script can act after it.
    eprintln!("following events of project {project}");
    if count == Some(0) {
        return Ok(());
    }
    let mut seen = 0u64;
    while let Some(ev) = stream.next().await {
        let line = match ev? {
            ProjectEvent::Changed(c) => serde_json::json!({"event": "sessions.changed", "data": c}),
            ProjectEvent::Status(s) => serde_json::json!({"event": "status", "data": s}),
            ProjectEvent::Error(body) => {
                return Err(anyhow!(
                    "{}: {}; list the project again and reconnect",
                    body.error.code,
                    body.error.message
                ));
            }
        };
        println!("{line}");
        seen += 1;
        if count.is_some_and(|c| seen >= c) {
            return Ok(());
        }
    }
    Err(anyhow!(
        "the server ended the event stream; list the project again and reconnect"
    ))
}
