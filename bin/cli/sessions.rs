//! `sessiond sessions ...`: the client verbs.

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use sessiond_runtime::api::model::*;

use super::client::{ApiClient, check};

#[derive(Debug, Args)]
pub(crate) struct SessionsArgs {
    /// The server.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:7411",
        env = "SESSIOND_SERVER"
    )]
    server: String,
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// Creates a session in a project.
    Create {
        /// Project slug.
        #[arg(long, short)]
        project: String,
        /// Human key, unique in the project.
        #[arg(long)]
        key: Option<String>,
        /// Label.
        #[arg(long)]
        label: Option<String>,
        /// Driver name (default scripted).
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
    },
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
    /// Prints the transcript.
    History {
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
    },
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
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_message(m: &MessageView, json: bool) -> anyhow::Result<()> {
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

pub(crate) async fn run(args: SessionsArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(&args.server)?;
    match args.command {
        SessionsCommand::Create {
            project,
            key,
            label,
            driver,
            options,
            model,
            system_prompt,
            prompt,
            env,
            cwd,
        } => {
            let driver_options = options
                .map(|o| serde_json::from_str(&o).context("--options must be a JSON object"))
                .transpose()?;
            let env = if env.is_empty() {
                None
            } else {
                let mut map = std::collections::BTreeMap::new();
                for pair in env {
                    let (k, v) = pair
                        .split_once('=')
                        .with_context(|| format!("--env '{pair}' must be KEY=VALUE"))?;
                    map.insert(k.to_string(), v.to_string());
                }
                Some(map)
            };
            let req = CreateSessionRequest {
                key,
                label,
                driver,
                driver_options,
                model,
                system_prompt,
                prompt,
                env,
                cwd,
            };
            let env: SessionEnvelope = api
                .post(&format!("/v1/projects/{project}/sessions"), &req)
                .await?;
            print_json(&env)
        }
        SessionsCommand::Get { id } => print_json(
            &api.get::<SessionEnvelope>(&format!("/v1/sessions/{id}"))
                .await?,
        ),
        SessionsCommand::Send {
            id,
            prompt,
            idempotency_key,
        } => {
            let req = SendRequest {
                prompt,
                idempotency_key,
            };
            print_json(
                &api.post::<_, SendResponse>(&format!("/v1/sessions/{id}/messages"), &req)
                    .await?,
            )
        }
        SessionsCommand::History {
            id,
            after_seq,
            limit,
            json,
        } => {
            let mut after = after_seq;
            loop {
                let page: HistoryResponse = api
                    .get(&format!(
                        "/v1/sessions/{id}/messages?after_seq={after}&limit={limit}"
                    ))
                    .await?;
                for m in &page.messages {
                    print_message(m, json)?;
                }
                match page.messages.last() {
                    Some(last) if page.messages.len() == limit => after = last.seq,
                    _ => return Ok(()),
                }
            }
        }
        SessionsCommand::Tail {
            id,
            after_seq,
            json,
            until_idle_after,
        } => tail(&api, &id, after_seq, json, until_idle_after).await,
        SessionsCommand::Abort { id, run_id } => {
            let req = AbortRequest { run_id };
            print_json(
                &api.post::<_, AbortResponse>(&format!("/v1/sessions/{id}/abort"), &req)
                    .await?,
            )
        }
    }
}

/// Follows the SSE stream; on a dropped connection, resumes from the last seq seen.
async fn tail(
    api: &ApiClient,
    id: &str,
    after_seq: Option<u64>,
    json: bool,
    until_idle_after: Option<u64>,
) -> anyhow::Result<()> {
    let mut last_seq = after_seq;
    let mut failures = 0u32;
    loop {
        let mut req = api
            .request(reqwest::Method::GET, &format!("/v1/sessions/{id}/events"))
            .header("accept", "text/event-stream");
        if let Some(seq) = last_seq {
            req = req.header("last-event-id", seq.to_string());
        }
        let resp = match req.send().await {
            Ok(r) => check(r).await?,
            Err(e) if failures < 30 => {
                failures += 1;
                eprintln!("connection failed ({e}); retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(anyhow!("cannot reach the server: {e}")),
        };
        failures = 0;
        let mut events = resp.bytes_stream().eventsource();
        // Seq at which the session was last reported not running.
        let mut settled_at: Option<u64> = None;
        let done = |seen: Option<u64>, settled: Option<u64>| match (until_idle_after, settled) {
            (Some(min), Some(at)) => at >= min && seen.unwrap_or(0) >= at,
            _ => false,
        };
        while let Some(ev) = events.next().await {
            let Ok(ev) = ev else { break };
            match ev.event.as_str() {
                "message" => {
                    let m: MessageView = serde_json::from_str(&ev.data)?;
                    last_seq = Some(m.seq);
                    print_message(&m, json)?;
                    if done(last_seq, settled_at) {
                        return Ok(());
                    }
                }
                "status" => {
                    let s: StatusView = serde_json::from_str(&ev.data)?;
                    if json {
                        println!("{}", serde_json::json!({"event": "status", "data": s}));
                    } else {
                        println!("-- status: {} (last seq {})", s.status, s.last_seq);
                    }
                    settled_at = (s.status != "running").then_some(s.last_seq);
                    if done(last_seq, settled_at) {
                        return Ok(());
                    }
                }
                "error" => eprintln!("server error: {}", ev.data),
                _ => {}
            }
        }
        eprintln!("stream ended; resuming after seq {}", last_seq.unwrap_or(0));
    }
}
