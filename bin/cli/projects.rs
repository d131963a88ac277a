//! `sessiond projects events|retention` and `sessiond node`.

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use sessiond_runtime::api::model::*;

use super::client::{ApiClient, ServerArgs, check};
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
            let path = format!("/v1/projects/{project}/retention");
            let policy: RetentionView = if max_sessions.is_none() && max_age_days.is_none() {
                api.get(&path).await?
            } else {
                let req = RetentionRequest {
                    max_sessions,
                    max_age_days,
                };
                api.put(&path, &req).await?
            };
            print_json(&policy)
        }
    }
}

/// `sessiond node`: what the node holds.
pub(crate) async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let api = args.server.client()?;
    print_json(&api.get::<NodeView>("/v1/node").await?)
}

/// Prints the project's events as JSON lines. Project notices cannot be replayed,
/// so this does not reconnect: a stream that ends is an error the caller sees
/// (list the project again, then follow anew).
async fn events(api: &ApiClient, project: &str, count: Option<u64>) -> anyhow::Result<()> {
    let req = api
        .request(
            reqwest::Method::GET,
            &format!("/v1/projects/{project}/events"),
        )
        .header("accept", "text/event-stream");
    let resp = check(req.send().await.context("cannot reach the server")?).await?;
    // The subscription is live from here: say so, so a script can act after it.
    eprintln!("following events of project {project}");
    if count == Some(0) {
        return Ok(());
    }
    let mut seen = 0u64;
    let mut stream = resp.bytes_stream().eventsource();
    while let Some(ev) = stream.next().await {
        let ev = ev.context("event stream broken")?;
        let data = match ev.event.as_str() {
            "sessions.changed" => {
                serde_json::to_value(serde_json::from_str::<SessionChangedView>(&ev.data)?)?
            }
            "status" => serde_json::to_value(serde_json::from_str::<StatusView>(&ev.data)?)?,
            "error" => {
                let body: ErrorBody = serde_json::from_str(&ev.data)?;
                return Err(anyhow!(
                    "{}: {}; list the project again and reconnect",
                    body.error.code,
                    body.error.message
                ));
            }
            // A kind of a newer server: shown as it came.
            _ => serde_json::from_str(&ev.data).unwrap_or(serde_json::Value::String(ev.data)),
        };
        println!("{}", serde_json::json!({"event": ev.event, "data": data}));
        seen += 1;
        if count.is_some_and(|c| seen >= c) {
            return Ok(());
        }
    }
    Err(anyhow!(
        "the server ended the event stream; list the project again and reconnect"
    ))
}
