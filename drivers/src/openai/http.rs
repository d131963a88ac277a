//! Sending the request: authentication, retries with backoff, server error messages.
//!
//! A request is retried only while nothing of its answer reached the transcript: on
//! connect errors and timeouts, on 408/429/5xx, and on a stream that fails before its
//! first event. Any other 4xx fails at once with the server's message.

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
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
    /// The backoff between attempts: doubling from `base`, at most [`MAX_BACKOFF`],
    /// with "equal jitter" (half fixed, half random) so that sessions throttled
    /// together do not come back together. backon's jitter adds up to the delay once
    /// more (`d..2d`), so the schedule runs on half delays: `base/2 .. base`, then
    /// `base .. 2*base`, ..., capped at `MAX_BACKOFF/2 .. MAX_BACKOFF`.
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.base / 2)
            .with_max_delay(MAX_BACKOFF / 2)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.max_retries as usize)
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

impl AttemptError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry(..))
    }

    /// The server's `Retry-After`, which wins over the backoff.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retry(_, after) => *after,
            Self::Fatal(_) => None,
        }
    }

    fn why(&self) -> &str {
        match self {
            Self::Retry(why, _) | Self::Fatal(why) => why,
        }
    }

    /// The same error with the API key masked in its text.
    fn redacted(self, key: Option<&ApiKey>) -> Self {
        let Some(key) = key else { return self };
        match self {
            Self::Retry(why, after) => Self::Retry(key.redact(why), after),
            Self::Fatal(why) => Self::Fatal(key.redact(why)),
        }
    }
}

/// POSTs `body` to `endpoint` until the server starts streaming, retrying per
/// `policy` (through backon: [`RetryPolicy::backoff`], or the server's `Retry-After`
/// while retries are left). Cancellation drops the request or the wait in flight at
/// once; the session hears `Activity` before each wait, so the run does not look
/// stalled.
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
    let attempts = AtomicU32::new(0);
    let send = || {
        attempts.fetch_add(1, Ordering::Relaxed);
        attempt(client, endpoint, body.clone(), key, policy)
    };
    // Fired by the sleeper when the session stopped listening: the run is over.
    let closed = CancellationToken::new();
    let sleeper = {
        let (events, closed) = (events.clone(), closed.clone());
        move |delay: Duration| {
            let (events, closed) = (events.clone(), closed.clone());
            async move {
                if events.send(DriverEvent::Activity).await.is_err() {
                    closed.cancel();
                    // No next attempt: the select below ends the run first.
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(delay).await;
            }
        }
    };
    let retried = send
        .retry(policy.backoff())
        .sleep(sleeper)
        .when(AttemptError::is_retryable)
        // A backoff of `None` means no retry is left; `Retry-After` does not add one.
        .adjust(|error: &AttemptError, delay| delay.map(|d| error.retry_after().unwrap_or(d)))
        .notify(|error: &AttemptError, delay: Duration| {
            tracing::warn!(
                attempt = attempts.load(Ordering::Relaxed),
                delay_ms = delay.as_millis() as u64,
                error = %error.why(),
                "openai request failed, retrying"
            );
        });
    let result = tokio::select! {
        biased;
        () = cancel.cancelled() => return Opened::Cancelled,
        () = closed.cancelled() => return Opened::Cancelled,
        r = retried => r,
    };
    match result {
        Ok(sse) => Opened::Stream(Box::new(sse)),
        Err(AttemptError::Fatal(why)) => Opened::Failed(why),
        Err(AttemptError::Retry(why, _)) => Opened::Failed(match attempts.into_inner() {
            0 | 1 => why,
            n => format!("{why} (gave up after {n} attempts)"),
        }),
    }
}

/// One request, up to the first event of its stream; the error never holds the key.
async fn attempt(
    client: &reqwest::Client,
    endpoint: &reqwest::Url,
    body: Bytes,
    key: Option<&ApiKey>,
    policy: &RetryPolicy,
) -> Result<Sse, AttemptError> {
    send_once(client, endpoint, body, key, policy)
        .await
        .map_err(|e| e.redacted(key))
}

/// One request, up to the first event of its stream.
async fn send_once(
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
    use backon::BackoffBuilder;

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
        let delays: Vec<Duration> = p.backoff().build().collect();
        assert_eq!(delays.len(), 3, "one delay per retry");
        for (retry, d) in (0..3).zip(&delays) {
            let full = 100 * 2u64.pow(retry);
            let d = d.as_millis() as u64;
            assert!((full / 2..=full).contains(&d), "retry {retry}: {d}");
        }
        let many = RetryPolicy {
            max_retries: 41,
            ..p
        };
        assert!(many.backoff().build().all(|d| d <= MAX_BACKOFF));
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
