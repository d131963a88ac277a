//! Sending the request: authentication, retries with backoff, server error messages.
//!
//! A request is retried only while nothing of its answer reached the transcript: on
//! connect errors and timeouts, on 408/429/5xx, and on a stream that fails before its
//! first event. Any other 4xx fails at once with the server's message.

use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{EventStream, Eventsource};
use futures::StreamExt;
use futures::stream::{BoxStream, Peekable};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use sessiond_actors::{DriverEvent, DriverEvents};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The server's SSE stream, its first event already awaited.
pub(super) type Sse = Peekable<EventStream<BoxStream<'static, reqwest::Result<Bytes>>>>;

/// Longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Most characters of a server's error body put in an error.
const MAX_ERROR_CHARS: usize = 500;

/// The API key of a run, read from the environment; never printed.
pub(super) struct ApiKey {
    key: String,
    header: HeaderValue,
}

impl ApiKey {
    /// Reads the key from `var`; `None` when the profile names no variable. The error
    /// names the variable, never a value.
    pub(super) fn from_env(var: Option<&str>) -> Result<Option<Self>, String> {
        let Some(var) = var else { return Ok(None) };
        let key = match std::env::var(var) {
            Ok(k) if !k.trim().is_empty() => k.trim().to_owned(),
            Ok(_) => return Err(format!("api key env var {var} is empty")),
            Err(std::env::VarError::NotPresent) => {
                return Err(format!("api key env var {var} is not set"));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("api key env var {var} is not valid unicode"));
            }
        };
        let mut header = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| format!("api key in env var {var} is not a valid header value"))?;
        header.set_sensitive(true);
        Ok(Some(Self { key, header }))
    }

    /// `text` with any occurrence of the key masked (servers may echo it in errors).
    fn redact(&self, text: String) -> String {
        match text.contains(&self.key) {
            true => text.replace(&self.key, "***"),
            false => text,
        }
    }
}

/// When and how often to retry.
#[derive(Debug, Clone)]
pub(super) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(super) max_retries: u32,
    /// First backoff delay.
    pub(super) base: Duration,
    /// Deadline of one attempt, from sending to the first event of the stream.
    pub(super) first_data_timeout: Duration,
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (0-based): doubling, at most
    /// [`MAX_BACKOFF`], with "equal jitter" (half fixed, half random) so that sessions
    /// throttled together do not come back together.
    fn backoff(&self, retry: u32) -> Duration {
        let full = self
            .base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(MAX_BACKOFF);
        let half = full.as_millis() as u64 / 2;
        // A random number without a rand dependency: std's per-instance hasher keys.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Duration::from_millis(half + random % (half + 1))
    }
}

/// How opening the stream ended.
pub(super) enum Opened {
    /// The server streams (boxed: the stream state is large).
    Stream(Box<Sse>),
    /// Every attempt failed, or one failed for good; the error is for people.
    Failed(String),
    /// The run was cancelled.
    Cancelled,
}

/// Why one attempt failed.
enum AttemptError {
    /// Worth another try, after the server's `Retry-After` if it sent one.
    Retry(String, Option<Duration>),
    /// Final.
    Fatal(String),
}

/// POSTs `body` to `endpoint` until the server starts streaming, retrying per
/// `policy`. Cancellation drops the request in flight at once.
pub(super) async fn open(
    client: &reqwest::Client,
    endpoint: &reqwest::Url,
    body: &serde_json::Value,
    key: Option<&ApiKey>,
    policy: &RetryPolicy,
    events: &DriverEvents,
    cancel: &CancellationToken,
) -> Opened {
    let body = Bytes::from(body.to_string());
    let mut retry = 0;
    loop {
        let attempt = attempt(client, endpoint, body.clone(), key, policy);
        let error = tokio::select! {
            biased;
            () = cancel.cancelled() => return Opened::Cancelled,
            r = attempt => match r {
                Ok(sse) => return Opened::Stream(Box::new(sse)),
                Err(e) => e,
            },
        };
        let redact = |s: String| match key {
            Some(k) => k.redact(s),
            None => s,
        };
        let (why, retry_after) = match error {
            AttemptError::Fatal(why) => return Opened::Failed(redact(why)),
            AttemptError::Retry(why, after) => (redact(why), after),
        };
        if retry >= policy.max_retries {
            let attempts = retry + 1;
            return Opened::Failed(match attempts {
                1 => why,
                n => format!("{why} (gave up after {n} attempts)"),
            });
        }
        let delay = retry_after.unwrap_or_else(|| policy.backoff(retry));
        tracing::warn!(
            attempt = retry + 1,
            delay_ms = delay.as_millis() as u64,
            error = %why,
            "openai request failed, retrying"
        );
        // Tell the session the run is alive while it waits.
        let alive = events.send(DriverEvent::Activity);
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Opened::Cancelled,
            r = alive => if r.is_err() { return Opened::Cancelled },
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Opened::Cancelled,
            () = tokio::time::sleep(delay) => {}
        }
        retry += 1;
    }
}

/// One request, up to the first event of its stream.
async fn attempt(
    client: &reqwest::Client,
    endpoint: &reqwest::Url,
    body: Bytes,
    key: Option<&ApiKey>,
    policy: &RetryPolicy,
) -> Result<Sse, AttemptError> {
    let deadline = Instant::now() + policy.first_data_timeout;
    let secs = policy.first_data_timeout.as_secs();
    let mut request = client
        .post(endpoint.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(k) = key {
        request = request.header(AUTHORIZATION, k.header.clone());
    }
    let response = match tokio::time::timeout_at(deadline, request.send()).await {
        Err(_) => {
            let why = format!("no answer from the server within {secs}s");
            return Err(AttemptError::Retry(why, None));
        }
        Ok(Err(e)) if e.is_builder() => {
            return Err(AttemptError::Fatal(format!("bad request: {}", chain(e))));
        }
        Ok(Err(e)) => {
            let why = format!("cannot reach the server: {}", chain(e));
            return Err(AttemptError::Retry(why, None));
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        // The body is read under the same deadline: a server may stall there too.
        let text = tokio::time::timeout_at(deadline, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let why = format!("server answered {status}: {}", error_message(&text));
        let retryable = status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error();
        return Err(match retryable {
            true => AttemptError::Retry(why, retry_after),
            false => AttemptError::Fatal(why),
        });
    }
    let mut sse = response.bytes_stream().boxed().eventsource().peekable();
    match tokio::time::timeout_at(deadline, Pin::new(&mut sse).peek()).await {
        Err(_) => {
            let why = format!("no data from the server within {secs}s");
            Err(AttemptError::Retry(why, None))
        }
        Ok(Some(Err(e))) => {
            let why = format!("stream failed before any data: {e}");
            Err(AttemptError::Retry(why, None))
        }
        Ok(_) => Ok(sse),
    }
}

/// The message of an OpenAI error body (`{"error":{"message":...}}`, or Ollama's
/// `{"error":"..."}`), else the body itself, cut to [`MAX_ERROR_CHARS`].
fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(e) => error_text(e),
        None => cut(body.trim().to_owned()),
    }
}

/// The text of an OpenAI `error` value: its `message`, or the value itself.
pub(super) fn error_text(error: &serde_json::Value) -> String {
    cut(match error {
        serde_json::Value::String(s) => s.clone(),
        e => match e.get("message").and_then(|m| m.as_str()) {
            Some(m) => m.to_owned(),
            None => e.to_string(),
        },
    })
}

/// `text` cut to [`MAX_ERROR_CHARS`].
fn cut(text: String) -> String {
    match text.is_empty() {
        true => "(no message)".to_owned(),
        false if text.chars().count() > MAX_ERROR_CHARS => {
            let cut: String = text.chars().take(MAX_ERROR_CHARS).collect();
            format!("{cut}...")
        }
        false => text,
    }
}

/// An error with its causes, `outer: inner: root` (reqwest's own text is vague), and
/// without the URL: the endpoint is in the configuration (and a URL may hold
/// credentials).
pub(super) fn chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_extracted() {
        let openai = r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#;
        assert_eq!(error_message(openai), "Rate limit reached");
        assert_eq!(
            error_message(r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(error_message("  bad gateway \n"), "bad gateway");
        assert_eq!(error_message(""), "(no message)");
        assert_eq!(error_message(&"x".repeat(600)).len(), MAX_ERROR_CHARS + 3);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(100),
            first_data_timeout: Duration::from_secs(1),
        };
        for retry in 0..3 {
            let full = 100 * 2u64.pow(retry);
            let d = p.backoff(retry).as_millis() as u64;
            assert!((full / 2..=full).contains(&d), "retry {retry}: {d}");
        }
        assert!(p.backoff(40) <= MAX_BACKOFF);
    }

    #[test]
    fn keys_are_redacted() {
        let k = ApiKey {
            key: "sk-secret".into(),
            header: HeaderValue::from_static("x"),
        };
        assert_eq!(k.redact("bad key sk-secret".into()), "bad key ***");
    }
}
