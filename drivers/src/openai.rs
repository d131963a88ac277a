//! The OpenAI-compatible driver: one streamed `POST {base_url}/chat/completions` per
//! run, against OpenAI or anything that speaks its chat-completions API (Ollama, vLLM,
//! llama.cpp server, OpenRouter, ...).
//!
//! A node configures one [`OpenAiProfile`] per `[drivers.NAME] kind = "openai"` table;
//! sessions pick the driver by `NAME` and may tune a run with driver options (see
//! `options`: `model`, `temperature`, `top_p`, `max_tokens`, `seed`, `stop`,
//! `presence_penalty`, `frequency_penalty`, `reasoning_effort`). The model is the
//! `model` option, else the session's model, else the profile's.
//!
//! What a run writes to the transcript:
//! - the reasoning (`delta.reasoning_content` or `delta.reasoning`, see
//!   [`ReasoningField`]) as one `thinking` message, as soon as the answer starts (or at
//!   the end when there is no answer);
//! - the answer as one `assistant` message at the end. One message, not pieces: a
//!   piece boundary could split a code block or a table, and clients render each
//!   message on its own. `Activity` events (at most every 2 s while data streams) keep
//!   the session's stall timer quiet meanwhile;
//! - the usage (`stream_options.include_usage`), priced by [`OpenAiProfile::prices`].
//!
//! A stream cut before `data: [DONE]` fails the run, and the partial answer is kept
//! with a last line `[stream interrupted]`; a cancelled run keeps it with a last line
//! `[aborted]`. A stream that ends without `[DONE]` after a `finish_reason` counts as
//! complete (some servers forget the terminator).
//!
//! The API key is read from the environment at run time ([`OpenAiProfile::api_key_env`])
//! so it is never stored with a session; it is never logged nor put in an error.
//!
//! # Layout
//! - `profile`: [`OpenAiProfile`], the configuration
//! - `options`: the session's driver options
//! - `chat`: the request body (history replay)
//! - `http`: sending with retries, server errors
//! - `stream`: reading the SSE stream into transcript events

mod chat;
mod http;
mod options;
mod profile;
mod stream;

use std::time::Duration;

use async_trait::async_trait;
use sessiond_actors::{AgentDriver, DriverEvent, DriverEvents, DriverOutcome, RunRequest};
use sessiond_store::{Role, Usage};
use tokio_util::sync::CancellationToken;

use self::http::{ApiKey, Opened, RetryPolicy};
use self::options::RunOptions;
pub use self::profile::{InvalidProfile, ModelPrice, OpenAiProfile, ReasoningField};
use self::stream::{End, Reply};

/// How long a cancelled run may spend handing over its partial answer.
const ABORT_FLUSH: Duration = Duration::from_millis(500);

/// The OpenAI-compatible driver of one profile.
#[derive(Clone)]
pub struct OpenAiDriver {
    profile: OpenAiProfile,
    endpoint: reqwest::Url,
    client: reqwest::Client,
}

impl std::fmt::Debug for OpenAiDriver {
    // Not derived: the client's default headers may hold secrets (extra_headers).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiDriver")
            .field("endpoint", &self.endpoint.as_str())
            .field("model", &self.profile.model)
            .finish_non_exhaustive()
    }
}

impl OpenAiDriver {
    /// Checks the profile and builds the HTTP client.
    pub fn new(profile: OpenAiProfile) -> Result<Self, InvalidProfile> {
        let checked = profile.check()?;
        let client = reqwest::Client::builder()
            .connect_timeout(profile.request_timeout())
            .default_headers(checked.headers)
            .user_agent(concat!("sessiond/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| InvalidProfile::new(format!("cannot build the http client: {e}")))?;
        Ok(Self {
            profile,
            endpoint: checked.endpoint,
            client,
        })
    }

    /// The profile the driver runs with.
    pub fn profile(&self) -> &OpenAiProfile {
        &self.profile
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.profile.max_retries,
            base: Duration::from_millis(self.profile.retry_base_ms),
            first_data_timeout: self.profile.request_timeout(),
        }
    }

    /// The usage event of a finished (or cut) request.
    fn usage(&self, model: &str, prompt_tokens: u64, completion_tokens: u64) -> Usage {
        let cost_usd = match self.profile.prices.get(model) {
            Some(p) => p.cost(prompt_tokens, completion_tokens),
            None => 0.0,
        };
        Usage {
            input_tokens: prompt_tokens,
            output_tokens: completion_tokens,
            context_tokens: prompt_tokens + completion_tokens,
            cost_usd,
        }
    }

    /// Hands over what a stream produced and turns its end into the run's outcome.
    async fn finish(
        &self,
        end: End,
        mut reply: Reply,
        model: &str,
        events: &DriverEvents,
        cancel: &CancellationToken,
    ) -> DriverOutcome {
        let mut out = Vec::new();
        if let Some(thinking) = reply.take_thinking() {
            out.push(message(Role::Thinking, thinking));
        }
        let text = std::mem::take(&mut reply.text);
        let (marker, outcome) = match end {
            End::Done => (None, DriverOutcome::Completed),
            End::Interrupted(why) => (
                Some("[stream interrupted]"),
                DriverOutcome::Failed(format!("stream interrupted: {why}")),
            ),
            End::Cancelled => (Some("[aborted]"), DriverOutcome::Cancelled),
            End::Closed => return DriverOutcome::Cancelled,
        };
        if !text.trim().is_empty() {
            out.push(message(
                Role::Assistant,
                match marker {
                    Some(m) => format!("{text}\n{m}"),
                    None => text,
                },
            ));
        }
        if let Some((p, c)) = reply.usage {
            out.push(DriverEvent::Usage(self.usage(model, p, c)));
        }
        let flush = async {
            for ev in out {
                events.send(ev).await?;
            }
            Ok::<_, sessiond_actors::driver::RunClosed>(())
        };
        tokio::pin!(flush);
        if outcome != DriverOutcome::Cancelled {
            tokio::select! {
                biased;
                r = &mut flush => return match r {
                    Ok(()) => outcome,
                    Err(_) => DriverOutcome::Cancelled,
                },
                () = cancel.cancelled() => {}
            }
        }
        // Best effort: the session still listens during its abort grace, but a
        // cancelled run must end promptly whatever happens.
        let _ = tokio::time::timeout(ABORT_FLUSH, flush).await;
        DriverOutcome::Cancelled
    }
}

fn message(role: Role, content: String) -> DriverEvent {
    DriverEvent::Message {
        role,
        content,
        tool: None,
    }
}

#[async_trait]
impl AgentDriver for OpenAiDriver {
    fn validate_options(
        &self,
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String> {
        RunOptions::parse(options).map(|_| ())
    }

    async fn run(
        &self,
        request: RunRequest,
        events: DriverEvents,
        cancel: CancellationToken,
    ) -> DriverOutcome {
        let options = match RunOptions::parse(&request.options) {
            Ok(o) => o,
            Err(e) => return DriverOutcome::Failed(e),
        };
        let Some(model) = options
            .model
            .clone()
            .or_else(|| request.model.clone())
            .or_else(|| self.profile.model.clone())
        else {
            return DriverOutcome::Failed(
                "no model: set the session's model or the openai driver profile's model".into(),
            );
        };
        let key = match ApiKey::from_env(self.profile.api_key_env.as_deref()) {
            Ok(k) => k,
            Err(e) => return DriverOutcome::Failed(e),
        };
        let body = chat::body(&model, &request, &options);
        tracing::debug!(
            session_id = %request.session_id,
            run_id = %request.run_id,
            %model,
            "openai request"
        );
        let opened = http::open(
            &self.client,
            &self.endpoint,
            &body,
            key.as_ref(),
            &self.retry_policy(),
            &events,
            &cancel,
        )
        .await;
        let mut sse = match opened {
            Opened::Stream(s) => s,
            Opened::Failed(e) => return DriverOutcome::Failed(e),
            Opened::Cancelled => return DriverOutcome::Cancelled,
        };
        let mut reply = Reply::new(self.profile.reasoning_field.clone());
        let end = stream::pump(&mut sse, &mut reply, &events, &cancel).await;
        // Dropping the response closes the connection now, not when the run ends: a
        // server generating for nobody should stop at once.
        drop(sse);
        if let End::Interrupted(why) = &end {
            tracing::warn!(run_id = %request.run_id, error = %why, "openai stream interrupted");
        }
        self.finish(end, reply, &model, &events, &cancel).await
    }
}
