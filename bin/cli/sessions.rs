//! `sessiond sessions ...`: the client verbs on sessions. Create, get, send,
//! history, tail and abort are here; the lifecycle verbs (steer, pause, patch, ...)
//! are in `lifecycle`, the listing verbs (list, resolve, children, preview) in
//! `listing`.

use std::collections::BTreeMap;

use anyhow::Context;
use clap::{Args, Subcommand};
use sessiond_client::model::*;
use sessiond_client::{Client, ops};

use super::client::ServerArgs;
use super::{lifecycle, listing, tail};

#[derive(Debug, Args)]
pub(crate) struct SessionsArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// Creates a session in a project.
    Create(CreateArgs),
    /// Shows a session.
    Get {
        /// Session id.
        id: String,
    },
    /// Sends a prompt (queued if a run is active).
    Send {
        /// Session id.
        id: String,
        /// The prompt.
        prompt: String,
        /// Makes a retried send safe.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Prints the transcript (all of it, or a page backwards with --before-seq,
    /// or the last messages with --tail).
    History(HistoryArgs),
    /// Prints the session's archive: what compact, reset and `delete --archive`
    /// moved out of the transcript (kept 30 days by default; readable after a delete).
    Archive(PageArgs),
    /// Follows the session's events live (reconnects and resumes on its own).
    Tail {
        /// Session id.
        id: String,
        /// Replay only messages after this seq (default: the whole transcript).
        #[arg(long)]
        after_seq: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Exit once the session is idle after at least this seq (scripts).
        #[arg(long)]
        until_idle_after: Option<u64>,
    },
    /// Aborts the active run.
    Abort {
        /// Session id.
        id: String,
        /// Only this run.
        #[arg(long)]
        run_id: Option<uuid::Uuid>,
    },
    #[command(flatten)]
    Lifecycle(lifecycle::LifecycleCommand),
    #[command(flatten)]
    Listing(listing::ListingCommand),
}

/// The arguments of `sessions create`.
#[derive(Debug, Args)]
struct CreateArgs {
    /// Project slug.
    #[arg(long, short)]
    project: String,
    /// Human key, unique in the project.
    #[arg(long)]
    key: Option<String>,
    /// Label.
    #[arg(long)]
    label: Option<String>,
    /// Driver name (default scripted; a child inherits its parent's).
    #[arg(long)]
    driver: Option<String>,
    /// Driver options as a JSON object, e.g. '{"reply":"hello","delay_ms":100}'.
    #[arg(long)]
    options: Option<String>,
    /// Model.
    #[arg(long)]
    model: Option<String>,
    /// System prompt.
    #[arg(long)]
    system_prompt: Option<String>,
    /// A first prompt to send right away.
    #[arg(long)]
    prompt: Option<String>,
    /// Environment for the driver's process, KEY=VALUE (repeatable).
    #[arg(long)]
    env: Vec<String>,
    /// Working directory for the driver's process (absolute).
    #[arg(long)]
    cwd: Option<String>,
    /// Parent session: the new one is its child and inherits its settings.
    #[arg(long)]
    parent: Option<uuid::Uuid>,
    /// Makes a retried create safe: a repeat answers the first session.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Ask the model for reasoning output (true or false).
    #[arg(long)]
    thinking: Option<bool>,
    /// Most driver turns per run.
    #[arg(long)]
    max_turns: Option<u32>,
    /// Compact automatically at this many context tokens (0: off).
    #[arg(long)]
    auto_compact_tokens: Option<u64>,
    /// Messages an automatic compaction keeps.
    #[arg(long)]
    auto_compact_keep: Option<u64>,
    /// Refuse delete and reset until a patch lifts it (default: true for the
    /// key `main`).
    #[arg(long)]
    protected: Option<bool>,
}

impl CreateArgs {
    fn request(self) -> anyhow::Result<(String, CreateSessionRequest)> {
        let req = CreateSessionRequest {
            key: self.key,
            label: self.label,
            driver: self.driver,
            driver_options: self
                .options
                .as_deref()
                .map(|o| json_object(o, "--options"))
                .transpose()?,
            model: self.model,
            system_prompt: self.system_prompt,
            prompt: self.prompt,
            env: env_map(&self.env)?,
            cwd: self.cwd,
            parent_id: self.parent,
            idempotency_key: self.idempotency_key,
            thinking: self.thinking,
            max_turns: self.max_turns,
            auto_compact_tokens: self.auto_compact_tokens,
            auto_compact_keep: self.auto_compact_keep,
            protected: self.protected,
        };
        Ok((self.project, req))
    }
}

/// Prints an answer as pretty JSON, the output of every verb but history and tail.
pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Parses a JSON object given to `flag`.
pub(crate) fn json_object(
    text: &str,
    flag: &str,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(text).with_context(|| format!("{flag} must be a JSON object"))
}

/// `--env KEY=VALUE` pairs (split at the first `=`); `None` when none are given, so
/// the field stays absent.
pub(crate) fn env_map(pairs: &[String]) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut map = BTreeMap::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--env '{pair}' must be KEY=VALUE"))?;
        map.insert(k.to_string(), v.to_string());
    }
    Ok(Some(map))
}

/// Prints a transcript message: `#seq role [tool]: content`, or one JSON line.
pub(crate) fn print_message(m: &MessageView, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(m)?);
    } else {
        let tool = m
            .tool_name
            .as_deref()
            .map(|t| format!(" [{t}]"))
            .unwrap_or_default();
        println!("#{} {}{}: {}", m.seq, m.role, tool, m.content);
    }
    Ok(())
}

/// Runs one `sessions` verb and prints its answer.
pub(crate) async fn run(args: SessionsArgs) -> anyhow::Result<()> {
    let api = args.server.client()?;
    match args.command {
        SessionsCommand::Create(create) => {
            let (project, req) = create.request()?;
            print_json(&api.create_session(&project, &req).await?)
        }
        SessionsCommand::Get { id } => print_json(&api.get_session(&id).await?),
        SessionsCommand::Send {
            id,
            prompt,
            idempotency_key,
        } => {
            let op = ops::SendPrompt {
                prompt,
                idempotency_key,
            };
            print_json(&api.call(&id, &op).await?)
        }
        SessionsCommand::History(args) => print_history(&api, args).await,
        SessionsCommand::Archive(page) => print_archive(&api, page).await,
        SessionsCommand::Tail {
            id,
            after_seq,
            json,
            until_idle_after,
        } => tail::tail(&api, &id, after_seq, json, until_idle_after).await,
        SessionsCommand::Abort { id, run_id } => print_json(&api.abort(&id, run_id).await?),
        SessionsCommand::Lifecycle(cmd) => lifecycle::run(&api, cmd).await,
        SessionsCommand::Listing(cmd) => listing::run(&api, cmd).await,
    }
}

/// Which pages of a transcript read to print, and how.
#[derive(Debug, Args)]
pub(crate) struct PageArgs {
    /// Session id.
    id: String,
    /// Only messages after this seq.
    #[arg(long, default_value_t = 0)]
    after_seq: u64,
    /// Most messages per page; all pages are printed.
    #[arg(long, default_value_t = 500)]
    limit: usize,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// `sessions history`: every page forwards (the default), one page backwards
/// (`--before-seq`), or the last messages (`--tail`).
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    page: PageArgs,
    /// One page of `--limit` messages just before this seq.
    #[arg(long, conflicts_with_all = ["tail"])]
    before_seq: Option<u64>,
    /// Only the last this many messages.
    #[arg(long)]
    tail: Option<usize>,
}

async fn print_history(api: &Client, args: HistoryArgs) -> anyhow::Result<()> {
    let HistoryArgs {
        page,
        before_seq,
        tail,
    } = args;
    let one_page = match (before_seq, tail) {
        (Some(before), _) => Some(ops::History {
            before_seq: Some(before),
            limit: Some(page.limit),
            ..ops::History::default()
        }),
        (None, Some(tail)) => Some(ops::History {
            tail: Some(tail),
            ..ops::History::default()
        }),
        (None, None) => None,
    };
    if let Some(q) = one_page {
        for m in &api.history(&page.id, &q).await?.messages {
            print_message(m, page.json)?;
        }
        return Ok(());
    }
    let id = page.id.as_str();
    print_pages(&page, |after, limit| {
        let q = ops::History {
            after_seq: Some(after),
            limit: Some(limit),
            ..ops::History::default()
        };
        async move { api.history(id, &q).await }
    })
    .await
}

async fn print_archive(api: &Client, page: PageArgs) -> anyhow::Result<()> {
    let id = page.id.as_str();
    print_pages(&page, |after, limit| {
        let q = ops::Archive {
            after_seq: Some(after),
            limit: Some(limit),
        };
        async move { api.archive(id, &q).await }
    })
    .await
}

/// Prints every page that `read(after_seq, limit)` answers, from `--after-seq` on.
async fn print_pages<F, Fut>(page: &PageArgs, read: F) -> anyhow::Result<()>
where
    F: Fn(u64, usize) -> Fut,
    Fut: std::future::Future<Output = sessiond_client::Result<HistoryResponse>>,
{
    let mut after = page.after_seq;
    loop {
        let answer = read(after, page.limit).await?;
        for m in &answer.messages {
            print_message(m, page.json)?;
        }
        match answer.messages.last() {
            Some(last) if answer.messages.len() == page.limit => after = last.seq,
            _ => return Ok(()),
        }
    }
}
