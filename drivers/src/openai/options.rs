//! The session's driver options: request parameters a session may set.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Parsed driver options; every field is optional and passed through to the request
/// as is (`max_tokens`, not `max_completion_tokens`: the name every compatible server
/// knows).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunOptions {
    /// Overrides the session's model and the profile's.
    pub(super) model: Option<String>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    seed: Option<i64>,
    stop: Option<Stop>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    reasoning_effort: Option<String>,
}

/// `stop`: one sequence or a list.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

impl RunOptions {
    /// Parses and checks a session's options; the error is for people.
    pub(super) fn parse(options: &Map<String, Value>) -> Result<Self, String> {
        // Input validation of a user-facing object: unknown keys are typos, say so.
        let o: RunOptions = serde_json::from_value(Value::Object(options.clone()))
            .map_err(|e| format!("invalid openai driver options: {e}"))?;
        let within = |v: Option<f64>, lo: f64, hi: f64, name: &str| match v {
            Some(x) if !(lo..=hi).contains(&x) => {
                Err(format!("{name} must be between {lo} and {hi}"))
            }
            _ => Ok(()),
        };
        within(o.temperature, 0.0, 2.0, "temperature")?;
        within(o.top_p, 0.0, 1.0, "top_p")?;
        within(o.presence_penalty, -2.0, 2.0, "presence_penalty")?;
        within(o.frequency_penalty, -2.0, 2.0, "frequency_penalty")?;
        if o.max_tokens == Some(0) {
            return Err("max_tokens must be at least 1".into());
        }
        if o.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err("model must not be empty".into());
        }
        if o.reasoning_effort.as_deref().is_some_and(str::is_empty) {
            return Err("reasoning_effort must not be empty".into());
        }
        if let Some(Stop::Many(list)) = &o.stop
            && list.len() > 4
        {
            return Err("stop takes at most 4 sequences".into());
        }
        Ok(o)
    }

    /// Adds the set parameters to a request body.
    pub(super) fn apply(&self, body: &mut Map<String, Value>) {
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                body.insert(k.into(), v);
            }
        };
        put("temperature", self.temperature.map(Value::from));
        put("top_p", self.top_p.map(Value::from));
        put("max_tokens", self.max_tokens.map(Value::from));
        put("seed", self.seed.map(Value::from));
        put("stop", self.stop.as_ref().map(|s| serde_json::json!(s)));
        put("presence_penalty", self.presence_penalty.map(Value::from));
        put("frequency_penalty", self.frequency_penalty.map(Value::from));
        put(
            "reasoning_effort",
            self.reasoning_effort.clone().map(Value::from),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<RunOptions, String> {
        RunOptions::parse(v.as_object().unwrap())
    }

    #[test]
    fn known_options_pass_through() {
        let o = parse(
            json!({"temperature": 0.2, "max_tokens": 64, "stop": ["a", "b"],
                             "model": "m2", "reasoning_effort": "low"}),
        )
        .unwrap();
        assert_eq!(o.model.as_deref(), Some("m2"));
        let mut body = Map::new();
        o.apply(&mut body);
        assert_eq!(
            Value::Object(body),
            json!({"temperature": 0.2, "max_tokens": 64, "stop": ["a", "b"],
                   "reasoning_effort": "low"})
        );
    }

    #[test]
    fn unknown_and_out_of_range_options_are_rejected() {
        let e = parse(json!({"temprature": 1})).unwrap_err();
        assert!(e.contains("unknown field `temprature`"), "{e}");
        assert!(parse(json!({"temperature": 3})).is_err());
        assert!(parse(json!({"max_tokens": 0})).is_err());
        assert!(parse(json!({"max_tokens": -1})).is_err());
        assert!(parse(json!({"stop": ["1", "2", "3", "4", "5"]})).is_err());
        assert!(parse(json!({"model": " "})).is_err());
        assert_eq!(parse(json!({})).unwrap(), RunOptions::default());
    }
}
