//! The driver's configuration: one profile per `[drivers.NAME] kind = "openai"` table.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

/// One `[drivers.NAME] kind = "openai"` table of `sessiond.toml`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiProfile {
    /// The API root, `/chat/completions` is appended: `http://127.0.0.1:11434/v1`
    /// (Ollama), `http://127.0.0.1:8000/v1` (vLLM), `https://api.openai.com/v1`.
    pub base_url: String,
    /// Name of the environment variable holding the API key, sent as
    /// `Authorization: Bearer <key>`. Read at each run; when set and the variable is
    /// missing, runs fail. Unset: no `Authorization` header (local servers).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Model used when neither the session nor its driver options name one.
    #[serde(default)]
    pub model: Option<String>,
    /// Prices by model name, to turn token usage into `cost_usd`; a model not listed
    /// costs nothing.
    #[serde(default)]
    pub prices: BTreeMap<String, ModelPrice>,
    /// Retries of a request answered 408, 429 or 5xx, or failing before any data
    /// arrives (connection refused, timeout), with exponential backoff.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First backoff delay in milliseconds; doubles on each retry (with jitter, at
    /// most 30 s). A `Retry-After: <seconds>` answer wins (at most 60 s).
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Deadline in seconds for connecting and receiving the first data of the stream.
    /// The stream itself has no deadline: the session's stall timer watches it.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Headers added to every request (`OpenAI-Organization`, `HTTP-Referer`, ...).
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Which delta field carries reasoning: `"auto"` (default), `"none"` or a field name.
    #[serde(default)]
    pub reasoning_field: ReasoningField,
}

fn default_max_retries() -> u32 {
    3
}

fn default_retry_base_ms() -> u64 {
    500
}

fn default_request_timeout_secs() -> u64 {
    60
}

impl OpenAiProfile {
    /// A profile for `base_url` with every other field at its default.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key_env: None,
            model: None,
            prices: BTreeMap::new(),
            max_retries: default_max_retries(),
            retry_base_ms: default_retry_base_ms(),
            request_timeout_secs: default_request_timeout_secs(),
            extra_headers: BTreeMap::new(),
            reasoning_field: ReasoningField::Auto,
        }
    }
}

/// Prices of one model in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Dollars per million prompt tokens.
    #[serde(default)]
    pub input_per_mtok: f64,
    /// Dollars per million completion tokens (reasoning tokens included).
    #[serde(default)]
    pub output_per_mtok: f64,
}

impl ModelPrice {
    /// The cost of a request in US dollars.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_per_mtok + output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// Where a server puts the model's reasoning in a streamed delta.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(from = "String")]
pub enum ReasoningField {
    /// `reasoning_content` (DeepSeek, vLLM, llama.cpp) or else `reasoning` (Ollama,
    /// OpenRouter). Written `"auto"`.
    #[default]
    Auto,
    /// Reasoning is dropped (still keeps the run alive). Written `"none"`.
    Ignore,
    /// Only this delta field carries reasoning.
    Field(String),
}

impl From<String> for ReasoningField {
    fn from(s: String) -> Self {
        match s.as_str() {
            "auto" => Self::Auto,
            "none" => Self::Ignore,
            _ => Self::Field(s),
        }
    }
}

/// A profile the driver cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid openai driver profile: {0}")]
pub struct InvalidProfile(String);

impl InvalidProfile {
    pub(super) fn new(message: String) -> Self {
        Self(message)
    }
}

impl std::fmt::Debug for OpenAiProfile {
    // Not derived: extra header values may be credentials (`api-key: ...`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiProfile")
            .field("base_url", &self.base_url)
            .field("api_key_env", &self.api_key_env)
            .field("model", &self.model)
            .field("prices", &self.prices)
            .field("max_retries", &self.max_retries)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field(
                "extra_headers",
                &self.extra_headers.keys().collect::<Vec<_>>(),
            )
            .field("reasoning_field", &self.reasoning_field)
            .finish()
    }
}

/// What a checked profile gives the driver.
pub(super) struct Checked {
    /// `{base_url}/chat/completions`.
    pub(super) endpoint: reqwest::Url,
    /// The extra headers, marked sensitive.
    pub(super) headers: HeaderMap,
}

impl OpenAiProfile {
    /// Checks every field; errors name the field, never a header value.
    pub(super) fn check(&self) -> Result<Checked, InvalidProfile> {
        let bad = |m: String| Err(InvalidProfile(m));
        let base = self.base_url.trim_end_matches('/');
        let endpoint = match reqwest::Url::parse(&format!("{base}/chat/completions")) {
            Ok(u) => u,
            Err(e) => return bad(format!("base_url '{}': {e}", self.base_url)),
        };
        match endpoint.scheme() {
            "http" | "https" => {}
            other => return bad(format!("base_url scheme '{other}' is not http or https")),
        }
        if self.request_timeout_secs == 0 {
            return bad("request_timeout_secs must be at least 1".into());
        }
        if self.max_retries > 20 {
            return bad("max_retries must be at most 20".into());
        }
        // std::env::var panics on such names.
        if let Some(var) = &self.api_key_env
            && (var.is_empty() || var.contains(['=', '\0']))
        {
            return bad(format!("api_key_env '{var}' is not a variable name"));
        }
        if self.reasoning_field == ReasoningField::Field(String::new()) {
            return bad("reasoning_field is empty".into());
        }
        for (model, p) in &self.prices {
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            if !ok(p.input_per_mtok) || !ok(p.output_per_mtok) {
                return bad(format!("prices of '{model}' must be numbers >= 0"));
            }
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.extra_headers {
            let Ok(n) = HeaderName::from_bytes(name.as_bytes()) else {
                return bad(format!("extra_headers: invalid header name '{name}'"));
            };
            let Ok(mut v) = HeaderValue::from_str(value) else {
                return bad(format!("extra_headers: invalid value for '{name}'"));
            };
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        Ok(Checked { endpoint, headers })
    }

    /// The deadline of connecting and of the first data.
    pub(super) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum DriverTable {
        Openai(OpenAiProfile),
    }

    #[test]
    fn profile_reads_from_a_tagged_table_with_defaults() {
        let t: DriverTable = serde_json::from_value(serde_json::json!({
            "kind": "openai",
            "base_url": "http://127.0.0.1:11434/v1/",
            "prices": { "m": { "input_per_mtok": 1.5 } },
            "reasoning_field": "reasoning",
        }))
        .unwrap();
        let DriverTable::Openai(p) = t;
        assert_eq!(p.max_retries, 3);
        assert_eq!(p.retry_base_ms, 500);
        assert_eq!(p.request_timeout_secs, 60);
        assert_eq!(p.reasoning_field, ReasoningField::Field("reasoning".into()));
        assert_eq!(p.prices["m"].cost(2_000_000, 5), 3.0);
        let checked = p.check().unwrap();
        assert_eq!(
            checked.endpoint.as_str(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
    }

    #[test]
    fn profile_typos_and_bad_values_are_rejected() {
        let typo = serde_json::from_value::<OpenAiProfile>(serde_json::json!({
            "base_url": "http://x", "max_retry": 2
        }));
        assert!(typo.unwrap_err().to_string().contains("max_retry"));
        let mut p = OpenAiProfile::new("ftp://x");
        assert!(p.check().is_err());
        p.base_url = "http://x".into();
        p.api_key_env = Some("A=B".into());
        assert!(p.check().is_err());
        p.api_key_env = None;
        p.extra_headers.insert("bad header".into(), "v".into());
        let e = p.check().err().unwrap().to_string();
        assert!(e.contains("bad header"), "{e}");
    }

    #[test]
    fn debug_output_hides_header_values() {
        let mut p = OpenAiProfile::new("http://x");
        p.extra_headers
            .insert("api-key".into(), "secret-value".into());
        let shown = format!("{p:?}");
        assert!(
            shown.contains("api-key") && !shown.contains("secret-value"),
            "{shown}"
        );
    }
}
