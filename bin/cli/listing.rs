//! `sessiond sessions list|resolve|children|preview`: views over many sessions.

use clap::Subcommand;
use sessiond_client::model::*;
use sessiond_client::{Client, ops};

use super::sessions::print_json;

/// Verbs flattened into `sessiond sessions`.
#[derive(Debug, Subcommand)]
pub(crate) enum ListingCommand {
    /// Lists a project's sessions, newest activity first (one page).
    List {
        /// Project slug.
        project: String,
        /// Only this status: idle, running, paused, error, interrupted.
        #[arg(long)]
        status: Option<String>,
        /// Only this exact label.
        #[arg(long)]
        label: Option<String>,
        /// Page size (server default 20, at most 100).
        #[arg(long)]
        limit: Option<usize>,
        /// `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Shows the session holding a key in a project.
    Resolve {
        /// Project slug.
        project: String,
        /// The session key.
        key: String,
    },
    /// Lists a session's children (one page).
    Children {
        /// Parent session id.
        id: String,
        /// Page size (server default 20, at most 100).
        #[arg(long)]
        limit: Option<usize>,
        /// `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Shows the last messages of up to 64 sessions.
    Preview {
        /// Session ids, answered in this order.
        #[arg(required = true)]
        ids: Vec<uuid::Uuid>,
        /// Last messages per session (server default 5).
        #[arg(long)]
        limit: Option<usize>,
        /// Characters kept of each message (server default 2000).
        #[arg(long)]
        max_chars: Option<usize>,
    },
}

/// Runs one listing verb and prints its answer.
pub(crate) async fn run(api: &Client, cmd: ListingCommand) -> anyhow::Result<()> {
    match cmd {
        ListingCommand::List {
            project,
            status,
            label,
            limit,
            cursor,
        } => {
            let query = ListSessionsQuery {
                status,
                label,
                limit,
                cursor,
            };
            print_json(&api.list_sessions(&project, &query).await?)
        }
        ListingCommand::Resolve { project, key } => {
            print_json(&api.session_by_key(&project, &key).await?)
        }
        ListingCommand::Children { id, limit, cursor } => {
            print_json(&api.children(&id, &ops::Children { limit, cursor }).await?)
        }
        ListingCommand::Preview {
            ids,
            limit,
            max_chars,
        } => {
            let req = PreviewRequest {
                ids,
                limit,
                max_chars,
            };
            print_json(&api.preview(&req).await?)
        }
    }
}
