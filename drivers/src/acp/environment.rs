//! What an agent process starts with: which of the node's environment variables
//! it inherits, the variables the profile and the session add, and where its
//! program is found.
//!
//! The node's environment holds the node's secrets (the `api_key_env` variables of
//! the openai profiles, Redis credentials in a URL, cloud tokens). An agent, and
//! under the `allow` policy any command it runs, can read whatever it inherits, so
//! a profile can narrow that down to nothing or to a list of names.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which of the node's environment variables an agent inherits: `true` (all, the
/// default), `false` (none) or a list of names (those of them the node has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InheritEnv {
    /// `true`: the node's whole environment; `false`: none of it.
    Whole(bool),
    /// Only these variables, such as `["PATH", "HOME"]`.
    Only(Vec<String>),
}

impl Default for InheritEnv {
    fn default() -> Self {
        Self::Whole(true)
    }
}

/// The environment an agent process is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AgentEnv {
    /// Start from an empty environment rather than the node's.
    pub(super) clear: bool,
    /// Set on top: what is passed through from the node when `clear`, then the
    /// profile's variables, then the session's.
    pub(super) vars: BTreeMap<String, OsString>,
}

impl AgentEnv {
    /// The environment for `inherit`, with `profile` and then `session` on top;
    /// `node` reads one of the node's variables.
    pub(super) fn build<'a>(
        inherit: &InheritEnv,
        profile: &'a BTreeMap<String, String>,
        session: &'a BTreeMap<String, String>,
        node: impl Fn(&str) -> Option<OsString>,
    ) -> Self {
        let (clear, mut vars) = match inherit {
            InheritEnv::Whole(true) => (false, BTreeMap::new()),
            InheritEnv::Whole(false) => (true, BTreeMap::new()),
            InheritEnv::Only(names) => (
                true,
                names
                    .iter()
                    .filter_map(|name| Some((name.clone(), node(name)?)))
                    .collect(),
            ),
        };
        for (k, v) in profile.iter().chain(session) {
            vars.insert(k.clone(), OsString::from(v));
        }
        Self { clear, vars }
    }

    /// The program to spawn for `command`. A bare name is looked up in the agent's
    /// `PATH` by the spawn itself; an agent that has no `PATH` (it inherits none)
    /// would only find programs in the C library's default directories, so the
    /// name is looked up in the node's `PATH` (`node_path`) instead.
    pub(super) fn program(&self, command: &str, node_path: Option<OsString>) -> PathBuf {
        let has_path = !self.clear || self.vars.contains_key("PATH");
        if has_path || command.contains('/') {
            return PathBuf::from(command);
        }
        node_path
            .iter()
            .flat_map(std::env::split_paths)
            // A relative entry (`.`, `bin`) would be resolved against the session's
            // working directory at spawn: never run a program from a workspace.
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(command))
            .find(|candidate| is_executable(candidate))
            .unwrap_or_else(|| PathBuf::from(command))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn node(name: &str) -> Option<OsString> {
        match name {
            "PATH" => Some("/node/bin".into()),
            "SECRET" => Some("s3cret".into()),
            _ => None,
        }
    }

    #[test]
    fn inherit_parses_from_a_bool_or_a_list() {
        #[derive(Deserialize)]
        struct P {
            inherit_env: InheritEnv,
        }
        let p = |s: &str| toml::from_str::<P>(s).map(|p| p.inherit_env);
        assert_eq!(p("inherit_env = true").unwrap(), InheritEnv::Whole(true));
        assert_eq!(p("inherit_env = false").unwrap(), InheritEnv::Whole(false));
        assert_eq!(
            p(r#"inherit_env = ["PATH", "HOME"]"#).unwrap(),
            InheritEnv::Only(vec!["PATH".into(), "HOME".into()])
        );
        assert!(p(r#"inherit_env = "PATH""#).is_err());
    }

    #[test]
    fn the_session_wins_over_the_profile_which_wins_over_the_node() {
        let env = AgentEnv::build(
            &InheritEnv::Only(vec!["PATH".into(), "SECRET".into(), "ABSENT".into()]),
            &vars(&[("A", "profile"), ("B", "profile")]),
            &vars(&[("B", "session"), ("SECRET", "session")]),
            node,
        );
        assert!(env.clear);
        let got: Vec<_> = env
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("A", "profile"),
                ("B", "session"),
                ("PATH", "/node/bin"),
                ("SECRET", "session")
            ]
        );
    }

    #[test]
    fn whole_inherits_by_not_clearing_and_false_passes_nothing() {
        let whole = AgentEnv::build(&InheritEnv::default(), &vars(&[]), &vars(&[]), node);
        assert!(!whole.clear && whole.vars.is_empty());
        let none = AgentEnv::build(&InheritEnv::Whole(false), &vars(&[]), &vars(&[]), node);
        assert!(none.clear && none.vars.is_empty());
    }

    #[test]
    fn without_a_path_of_its_own_the_program_is_found_in_the_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("agent-tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let not_executable = dir.path().join("plain-file");
        std::fs::write(&not_executable, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let node_path =
            Some(std::env::join_paths(["/nonexistent", dir.path().to_str().unwrap()]).unwrap());

        let none = AgentEnv::build(&InheritEnv::Whole(false), &vars(&[]), &vars(&[]), node);
        assert_eq!(none.program("agent-tool", node_path.clone()), tool);
        // Not found, or not executable: left to the spawn, which reports it.
        assert_eq!(
            none.program("missing", node_path.clone()),
            PathBuf::from("missing")
        );
        assert_eq!(
            none.program("plain-file", node_path.clone()),
            PathBuf::from("plain-file")
        );
        // Relative entries of the node's PATH are skipped, even when they lead to
        // the program from the node's working directory.
        let cwd = std::env::current_dir().unwrap();
        let up = "../".repeat(cwd.components().count());
        let relative_dir = format!(
            "{up}{}",
            dir.path().display().to_string().trim_start_matches('/')
        );
        assert!(Path::new(&relative_dir).join("agent-tool").is_file());
        let relative = Some(std::env::join_paths([relative_dir]).unwrap());
        assert_eq!(
            none.program("agent-tool", relative),
            PathBuf::from("agent-tool")
        );
        // A path is taken as it is.
        assert_eq!(
            none.program("./x/agent-tool", node_path.clone()),
            PathBuf::from("./x/agent-tool")
        );
        // An agent with a PATH (inherited or given) finds its program itself.
        let whole = AgentEnv::build(&InheritEnv::default(), &vars(&[]), &vars(&[]), node);
        assert_eq!(
            whole.program("agent-tool", node_path.clone()),
            PathBuf::from("agent-tool")
        );
        let given = AgentEnv::build(
            &InheritEnv::Only(vec!["PATH".into()]),
            &vars(&[]),
            &vars(&[]),
            node,
        );
        assert_eq!(
            given.program("agent-tool", node_path),
            PathBuf::from("agent-tool")
        );
    }
}
