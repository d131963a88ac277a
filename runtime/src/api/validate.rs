//! Input rules of the API: sizes, formats, and the driver environment's blocked
//! prefixes. Each rule answers with an error that names the field.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::RangeInclusive;

use crate::config::Limits;
use crate::error::Error;

/// Environment keys a session may not set for its driver's process: provider
/// credentials and settings belong to the operator's driver profile, not to a
/// session (a tenant must not point an agent at another account). The first five
/// are DESIGN.md's; GEMINI_ and GOOGLE_ are the same kind of credential for the
/// Gemini CLI, and LD_/DYLD_ would let a tenant inject code into the agent.
pub const BLOCKED_ENV_PREFIXES: [&str; 9] = [
    "CLAUDE",
    "CODEX",
    "OLLAMA",
    "ANTHROPIC_",
    "OPENAI_",
    "GEMINI_",
    "GOOGLE_",
    "LD_",
    "DYLD_",
];

/// Whole names refused for the same reason (code injection into Node.js agents).
pub const BLOCKED_ENV_NAMES: [&str; 1] = ["NODE_OPTIONS"];

/// Most variables in a session's `env`.
pub const MAX_ENV_VARS: usize = 64;
/// Longest value of one variable.
pub const MAX_ENV_VALUE_BYTES: usize = 8 * 1024;
/// Longest `cwd`.
pub const MAX_CWD_BYTES: usize = 4096;

/// A prompt: not blank, at most `max_prompt_bytes`.
pub fn prompt(limits: &Limits, prompt: &str) -> Result<(), Error> {
    if prompt.trim().is_empty() {
        return Err(Error::InvalidRequest("prompt must not be empty".into()));
    }
    if prompt.len() > limits.max_prompt_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "prompt is {} bytes; the limit is {}",
            prompt.len(),
            limits.max_prompt_bytes
        )));
    }
    Ok(())
}

/// A prompt and its optional idempotency key (send and steer).
pub fn prompt_and_key(limits: &Limits, text: &str, key: Option<&str>) -> Result<(), Error> {
    prompt(limits, text)?;
    idempotency_key(key)
}

/// A label: at most `max_label_chars` characters.
pub fn label(limits: &Limits, label: &str) -> Result<(), Error> {
    if label.chars().count() > limits.max_label_chars {
        return Err(Error::InvalidRequest(format!(
            "label is longer than {} characters",
            limits.max_label_chars
        )));
    }
    Ok(())
}

/// A system prompt: at most `max_system_prompt_bytes`.
pub fn system_prompt(limits: &Limits, text: &str) -> Result<(), Error> {
    if text.len() > limits.max_system_prompt_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "system_prompt is {} bytes; the limit is {}",
            text.len(),
            limits.max_system_prompt_bytes
        )));
    }
    Ok(())
}

/// The environment for a driver's process: POSIX names, bounded sizes, no blocked
/// prefix (compared without regard to case).
pub fn env(env: &BTreeMap<String, String>) -> Result<(), Error> {
    if env.len() > MAX_ENV_VARS {
        return Err(Error::InvalidRequest(format!(
            "env has more than {MAX_ENV_VARS} variables"
        )));
    }
    for (key, value) in env {
        let valid_name = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && key.len() <= 256;
        if !valid_name {
            return Err(Error::InvalidRequest(format!(
                "env key '{key}' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"
            )));
        }
        let upper = key.to_ascii_uppercase();
        if BLOCKED_ENV_NAMES.contains(&upper.as_str()) {
            return Err(Error::InvalidRequest(format!(
                "env key '{key}' is not allowed: it would change how the agent's runtime loads code"
            )));
        }
        if let Some(prefix) = BLOCKED_ENV_PREFIXES.iter().find(|p| upper.starts_with(*p)) {
            return Err(Error::InvalidRequest(format!(
                "env key '{key}' is not allowed: keys starting with {prefix} are provider \
                 credentials or settings, which belong in the driver profile"
            )));
        }
        if value.len() > MAX_ENV_VALUE_BYTES || value.contains('\0') {
            return Err(Error::InvalidRequest(format!(
                "env value of '{key}' must be at most {MAX_ENV_VALUE_BYTES} bytes with no NUL"
            )));
        }
    }
    Ok(())
}

/// A working directory for a driver's process: absolute, bounded, no NUL.
pub fn cwd(cwd: &str) -> Result<(), Error> {
    if !cwd.starts_with('/') || cwd.len() > MAX_CWD_BYTES || cwd.contains('\0') {
        return Err(Error::InvalidRequest(format!(
            "cwd must be an absolute path of at most {MAX_CWD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// An optional idempotency key: 1 to 128 of `A-Za-z0-9._:-` (it becomes part of
/// store keys, so its alphabet is closed).
pub fn idempotency_key(key: Option<&str>) -> Result<(), Error> {
    match key {
        Some(k) if !sessiond_store::valid_idempotency_key(k) => {
            Err(Error::InvalidRequest(format!(
                "idempotency_key must be 1 to {} characters of A-Za-z0-9._:-",
                sessiond_store::session_store::MAX_IDEMPOTENCY_KEY_LEN
            )))
        }
        _ => Ok(()),
    }
}

/// A number inside `range`; the error names `field`.
pub fn within<T>(field: &str, value: T, range: RangeInclusive<T>) -> Result<T, Error>
where
    T: PartialOrd + Display + Copy,
{
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(Error::InvalidRequest(format!(
            "{field} must be between {} and {}",
            range.start(),
            range.end()
        )))
    }
}

/// Most messages a compaction (manual or automatic) may keep.
pub const MAX_KEEP_LAST: u64 = 1_000_000;

/// `max_turns`: at least 1 (zero turns would make every run a no-op).
pub fn max_turns(turns: Option<u32>) -> Result<(), Error> {
    if turns == Some(0) {
        return Err(Error::InvalidRequest("max_turns must be at least 1".into()));
    }
    Ok(())
}

/// `auto_compact_keep`: at most [`MAX_KEEP_LAST`], like a manual compaction.
pub fn auto_compact_keep(keep: Option<u64>) -> Result<(), Error> {
    if let Some(k) = keep {
        within("auto_compact_keep", k, 0..=MAX_KEEP_LAST)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_rejects_provider_prefixes_in_any_case() {
        assert!(env(&env_of(&[("RUST_LOG", "debug"), ("_X1", "")])).is_ok());
        for key in [
            "CLAUDE_CODE_KEY",
            "claude",
            "CODEX_HOME",
            "OLLAMA_HOST",
            "ANTHROPIC_API_KEY",
            "openai_api_key",
            "GEMINI_API_KEY",
            "GOOGLE_API_KEY",
            "LD_PRELOAD",
            "NODE_OPTIONS",
        ] {
            let err = env(&env_of(&[(key, "x")])).unwrap_err();
            assert!(err.to_string().contains("not allowed"), "{key}: {err}");
        }
        // A prefix ends where the rule says: ANTHROPICS is not ANTHROPIC_.
        assert!(env(&env_of(&[("ANTHROPICS", "x")])).is_ok());
    }

    #[test]
    fn env_names_and_sizes_are_bounded() {
        assert!(env(&env_of(&[("1X", "x")])).is_err());
        assert!(env(&env_of(&[("A-B", "x")])).is_err());
        assert!(env(&env_of(&[("", "x")])).is_err());
        assert!(env(&env_of(&[("A", "\0")])).is_err());
        let big = "x".repeat(MAX_ENV_VALUE_BYTES + 1);
        assert!(env(&env_of(&[("A", &big)])).is_err());
        let many: BTreeMap<_, _> = (0..=MAX_ENV_VARS)
            .map(|i| (format!("V{i}"), String::new()))
            .collect();
        assert!(env(&many).is_err());
    }

    #[test]
    fn idempotency_keys_and_ranges() {
        assert!(idempotency_key(None).is_ok());
        assert!(idempotency_key(Some("retry-1:a.b_c")).is_ok());
        assert!(idempotency_key(Some("")).is_err());
        assert!(idempotency_key(Some("has space")).is_err());
        assert!(idempotency_key(Some(&"k".repeat(129))).is_err());
        assert_eq!(within("limit", 5, 1..=100).unwrap(), 5);
        let err = within("limit", 0, 1..=100).unwrap_err();
        assert_eq!(err.to_string(), "limit must be between 1 and 100");
        assert!(max_turns(Some(0)).is_err());
        assert!(max_turns(Some(1)).is_ok());
        assert!(auto_compact_keep(Some(MAX_KEEP_LAST + 1)).is_err());
    }

    #[test]
    fn cwd_must_be_absolute() {
        assert!(cwd("/srv/work").is_ok());
        assert!(cwd("relative").is_err());
        assert!(cwd("/a\0b").is_err());
    }
}
