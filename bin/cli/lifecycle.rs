//! `sessiond sessions steer|pause|resume|patch|reset|delete|compact`: the
//! lifecycle verbs of one session.

use clap::Subcommand;
use sessiond_client::{Client, ops};

use super::sessions::{env_map, json_object, print_json};

/// Verbs flattened into `sessiond sessions`.
#[derive(Debug, Subcommand)]
pub(crate) enum LifecycleCommand {
    /// Aborts the active run, then runs this prompt before any queued one.
    Steer {
        /// Session id.
        id: String,
        /// The prompt.
        prompt: String,
        /// Makes a retried steer safe.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Pauses: no new run starts; prompts queue until resume.
    Pause {
        /// Session id.
        id: String,
    },
    /// Resumes a paused session; queued prompts run.
    Resume {
        /// Session id.
        id: String,
    },
    /// Changes settings; flags not given stay as they are.
    Patch(PatchArgs),
    /// Starts a fresh transcript (the old one is archived); same id and key.
    Reset {
        /// Session id.
        id: String,
    },
    /// Deletes the session, cancelling any run.
    Delete {
        /// Session id.
        id: String,
        /// Keep the transcript in the archive for the archive TTL.
        #[arg(long)]
        archive: bool,
    },
    /// Archives all but the last messages.
    Compact {
        /// Session id.
        id: String,
        /// Messages to keep in the live log.
        #[arg(long)]
        keep_last: u64,
    },
}

/// The arguments of `sessions patch`. An empty string clears label, model,
/// system prompt and cwd.
#[derive(Debug, clap::Args)]
pub(crate) struct PatchArgs {
    /// Session id.
    id: String,
    /// New label.
    #[arg(long)]
    label: Option<String>,
    /// New model.
    #[arg(long)]
    model: Option<String>,
    /// New system prompt.
    #[arg(long)]
    system_prompt: Option<String>,
    /// Another driver.
    #[arg(long)]
    driver: Option<String>,
    /// New driver options as a JSON object (replace the old ones).
    #[arg(long)]
    driver_options: Option<String>,
    /// Ask the model for reasoning output (true or false).
    #[arg(long)]
    thinking: Option<bool>,
    /// New environment, KEY=VALUE (repeatable; replaces the old one as a whole).
    #[arg(long)]
    env: Vec<String>,
    /// New working directory (absolute).
    #[arg(long)]
    cwd: Option<String>,
    /// Most driver turns per run.
    #[arg(long)]
    max_turns: Option<u32>,
    /// Auto-compact threshold in context tokens (0: off).
    #[arg(long)]
    auto_compact_tokens: Option<u64>,
    /// Messages an automatic compaction keeps.
    #[arg(long)]
    auto_compact_keep: Option<u64>,
    /// Protect the session (refuse delete and reset) or lift it.
    #[arg(long)]
    protected: Option<bool>,
}

impl PatchArgs {
    fn request(&self) -> anyhow::Result<ops::PatchSession> {
        Ok(ops::PatchSession {
            label: self.label.clone(),
            model: self.model.clone(),
            system_prompt: self.system_prompt.clone(),
            driver: self.driver.clone(),
            driver_options: self
                .driver_options
                .as_deref()
                .map(|o| json_object(o, "--driver-options"))
                .transpose()?,
            thinking: self.thinking,
            env: env_map(&self.env)?,
            cwd: self.cwd.clone(),
            max_turns: self.max_turns,
            auto_compact_tokens: self.auto_compact_tokens,
            auto_compact_keep: self.auto_compact_keep,
            protected: self.protected,
        })
    }
}

/// What `sessions delete` prints: the route answers 204 with no body, and a
/// script still wants one JSON document per verb.
#[derive(Debug, serde::Serialize)]
struct Deleted<'a> {
    id: &'a str,
    deleted: bool,
    archived: bool,
}

/// Runs one lifecycle verb and prints its answer.
pub(crate) async fn run(api: &Client, cmd: LifecycleCommand) -> anyhow::Result<()> {
    match cmd {
        LifecycleCommand::Steer {
            id,
            prompt,
            idempotency_key,
        } => {
            let op = ops::SteerPrompt {
                prompt,
                idempotency_key,
            };
            print_json(&api.call(&id, &op).await?)
        }
        LifecycleCommand::Pause { id } => print_json(&api.pause(&id).await?),
        LifecycleCommand::Resume { id } => print_json(&api.resume(&id).await?),
        LifecycleCommand::Patch(args) => print_json(&api.patch(&args.id, &args.request()?).await?),
        LifecycleCommand::Reset { id } => print_json(&api.reset(&id).await?),
        LifecycleCommand::Delete { id, archive } => {
            api.delete(&id, archive).await?;
            print_json(&Deleted {
                id: &id,
                deleted: true,
                archived: archive,
            })
        }
        LifecycleCommand::Compact { id, keep_last } => {
            print_json(&api.compact(&id, keep_last).await?)
        }
    }
}
