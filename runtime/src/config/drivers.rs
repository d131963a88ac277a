//! Driver profiles: the `[drivers.NAME]` tables of `sessiond.toml`. A session picks a
//! profile by its name; secrets are named by environment variable, never written.
//!
//! ```toml
//! [drivers.local]
//! kind = "openai"
//! base_url = "http://127.0.0.1:11434/v1"
//! model = "llama3.1"
//!
//! [drivers.gpt]
//! kind = "openai"
//! base_url = "https://api.openai.com/v1"
//! api_key_env = "SESSIOND_OPENAI_KEY"
//!
//! [drivers.claude]
//! kind = "acp"
//! command = "npx"
//! args = ["-y", "@zed-industries/claude-code-acp"]
//! permission_policy = "ask"
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use sessiond_actors::DriverRegistry;
use sessiond_actors::scripted::ScriptedDriver;

use sessiond_drivers::acp::{AcpDriver, AcpProfile};
use sessiond_drivers::openai::{OpenAiDriver, OpenAiProfile};

/// One `[drivers.NAME]` table, by its `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DriverProfile {
    /// The deterministic scripted driver (no settings).
    Scripted {},
    /// Any OpenAI-compatible chat-completions endpoint.
    Openai(OpenAiProfile),
    /// An Agent Client Protocol agent run as a subprocess.
    Acp(AcpProfile),
}

/// The drivers of a node: `scripted` always, then every profile (a profile may
/// replace `scripted` under that name).
pub fn registry(profiles: &BTreeMap<String, DriverProfile>) -> Result<DriverRegistry, String> {
    let mut r = DriverRegistry::with_scripted();
    for (name, profile) in profiles {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "driver name '{name}' may hold only letters, digits, '-', '_' and '.'"
            ));
        }
        match profile {
            DriverProfile::Scripted {} => r.insert(name.clone(), Arc::new(ScriptedDriver)),
            DriverProfile::Acp(p) => r.insert(name.clone(), Arc::new(AcpDriver::new(p.clone()))),
            DriverProfile::Openai(p) => {
                let driver =
                    OpenAiDriver::new(p.clone()).map_err(|e| format!("drivers.{name}: {e}"))?;
                r.insert(name.clone(), Arc::new(driver));
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_build_a_registry() {
        let profiles: BTreeMap<String, DriverProfile> = toml::from_str(
            r#"
            [local]
            kind = "openai"
            base_url = "http://127.0.0.1:11434/v1"
            model = "llama3.1"

            [demo]
            kind = "scripted"

            [agent]
            kind = "acp"
            command = "node"
            args = ["agent.mjs"]
            permission_policy = "ask"
            "#,
        )
        .unwrap();
        let r = registry(&profiles).unwrap();
        assert_eq!(r.names(), vec!["agent", "demo", "local", "scripted"]);
    }

    #[test]
    fn bad_profiles_are_refused_with_their_name() {
        let unknown_kind =
            toml::from_str::<BTreeMap<String, DriverProfile>>("[x]\nkind = \"telepathy\"\n");
        assert!(unknown_kind.is_err());
        let bad: BTreeMap<String, DriverProfile> =
            toml::from_str("[remote]\nkind = \"openai\"\nbase_url = \"ftp://x\"\n").unwrap();
        assert!(registry(&bad).unwrap_err().contains("drivers.remote"));
        let bad_name: BTreeMap<String, DriverProfile> =
            toml::from_str("[\"a b\"]\nkind = \"scripted\"\n").unwrap();
        assert!(registry(&bad_name).is_err());
    }
}
